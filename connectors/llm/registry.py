"""Language model providers by name (``CHATOPS_LLM_PROVIDER``). Adding one: its module and one line.

A provider is used when the settings configure a model at all (``OPENAI_API_KEY`` or
``OPENAI_BASE_URL``); without one, answers are extractive.
"""

from __future__ import annotations

from typing import Callable

from chatops.errors import ConfigError
from chatops.settings import Settings
from connectors.llm.base import LLM
from connectors.llm.openai_llm import OpenAILLM


PROVIDERS: dict[str, Callable[[Settings], LLM]] = {
    "openai": OpenAILLM.from_settings,   # any OpenAI-compatible server: OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp
}


def build_llm(settings: Settings) -> LLM | None:
    if not settings.llm_configured:
        return None
    factory = PROVIDERS.get(settings.llm_provider)
    if factory is None:
        raise ConfigError(f"CHATOPS_LLM_PROVIDER: unknown provider {settings.llm_provider!r} "
                          f"(known: {', '.join(PROVIDERS)})")
    return factory(settings)
