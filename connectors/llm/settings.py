"""The language-model registry's own settings: which provider, which models, and the limits
every provider's calls keep. A provider's own (its server, its key) are beside it."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from chatops.settings import PluginSettings, env


class LLMSettings(PluginSettings):
    llm_provider: str = Field(default="openai", validation_alias=AliasChoices("CHATOPS_LLM_PROVIDER"))
    llm_model: str = Field(default="gpt-4o-mini", validation_alias=AliasChoices("CHATOPS_LLM_MODEL"))
    # A smaller, cheaper model of the same server for questions one document answers with
    # confidence (CHATOPS_ROUTE_MIN_SIMILARITY, CHATOPS_ROUTE_MARGIN). Unset: every question goes
    # to CHATOPS_LLM_MODEL.
    llm_model_small: str | None = env("CHATOPS_LLM_MODEL_SMALL")
    llm_timeout: float = Field(default=60.0, validation_alias=AliasChoices("CHATOPS_LLM_TIMEOUT"))
    llm_max_tokens: int = Field(default=800, validation_alias=AliasChoices("CHATOPS_LLM_MAX_TOKENS"))
    llm_max_retries: int = Field(default=2, validation_alias=AliasChoices("CHATOPS_LLM_MAX_RETRIES"))
