"""Language model providers by name (``CHATOPS_LLM_PROVIDER``). Adding one: its module, its
settings model beside it, and one line in ``PROVIDERS``.

A provider is used when its settings configure a model (``configured``: for OpenAI,
``OPENAI_API_KEY`` or ``OPENAI_BASE_URL``); without one, answers are extractive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from chatops.errors import ConfigError
from chatops.settings import PluginSettings, Settings
from connectors.llm.base import LLM
from connectors.llm.openai_llm import OpenAILLM
from connectors.llm.openai_settings import OpenAISettings
from connectors.llm.settings import LLMSettings

SETTINGS: tuple[type[PluginSettings], ...] = (LLMSettings,)   # the registry's own: which provider, models, limits


@dataclass(frozen=True)
class Provider:
    name: str
    settings: type[PluginSettings]       # its environment settings; ``configured``: a model is there
    build: Callable[[Settings], LLM]

    def configured(self, settings: Settings) -> bool:
        return settings.of(self.settings).configured


PROVIDERS: dict[str, Provider] = {p.name: p for p in (
    # any OpenAI-compatible server: OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp
    Provider("openai", OpenAISettings, OpenAILLM.from_settings),
)}


def provider_for(settings: Settings) -> Provider | None:
    """The provider ``CHATOPS_LLM_PROVIDER`` names, when its settings configure a model; None when
    none does (answers quote passages)."""
    name = settings.of(LLMSettings).llm_provider
    provider = PROVIDERS.get(name)
    if provider is None:
        if not any(p.configured(settings) for p in PROVIDERS.values()):
            return None
        raise ConfigError(f"CHATOPS_LLM_PROVIDER: unknown provider {name!r} "
                          f"(known: {', '.join(PROVIDERS)})")
    return provider if provider.configured(settings) else None


def build_llm(settings: Settings) -> LLM | None:
    provider = provider_for(settings)
    return provider.build(settings) if provider is not None else None
