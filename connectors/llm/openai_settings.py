"""The OpenAI-compatible server's settings (connectors/llm/openai_llm.py)."""

from __future__ import annotations

from pydantic import SecretStr

from chatops.settings import PluginSettings, env


class OpenAISettings(PluginSettings):
    openai_api_key: SecretStr | None = env("OPENAI_API_KEY")
    openai_base_url: str | None = env("OPENAI_BASE_URL")

    @property
    def configured(self) -> bool:
        """A key or a server: answers are generated (else they quote passages)."""
        return bool(self.openai_api_key or self.openai_base_url)
