"""Rerankers by name (``CHATOPS_RERANK``). Adding one: its module, its settings model beside it
(if it has any of its own), and one line in ``RERANKERS``.

``none`` (the default) reranks nothing; a reranker that cannot be built from the settings stops the
start with one line saying what to set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from chatops.errors import ConfigError
from chatops.settings import PluginSettings, Settings
from connectors.llm.base import LLM
from connectors.rerank.base import Reranker
from connectors.rerank.http import HttpReranker
from connectors.rerank.llm import LlmReranker
from connectors.rerank.settings import HttpRerankSettings, RerankSettings

SETTINGS: tuple[type[PluginSettings], ...] = (RerankSettings,)   # the registry's own: which one, candidates, timeout


def _http(settings: Settings, llm: LLM | None) -> Reranker:
    if not settings.of(HttpRerankSettings).configured:
        raise ConfigError("CHATOPS_RERANK=http needs CHATOPS_RERANK_URL, the rerank endpoint's full URL "
                          "(e.g. http://host:8080/rerank)")
    return HttpReranker.from_settings(settings)


@dataclass(frozen=True)
class Kind:
    name: str
    build: Callable[[Settings, LLM | None], Reranker | None]
    settings: type[PluginSettings] | None = None   # its own environment settings


RERANKERS: dict[str, Kind] = {k.name: k for k in (
    Kind("none", lambda settings, llm: None),                          # first-stage order, no cost
    Kind("http", _http, HttpRerankSettings),                           # Cohere/Jina-style POST /rerank
    Kind("llm", LlmReranker.from_settings),                            # one listwise call to the model
)}


def build_reranker(settings: Settings, llm: LLM | None) -> Reranker | None:
    """The reranker ``CHATOPS_RERANK`` names (None for ``none``); ``llm``: the configured model."""
    name = settings.of(RerankSettings).rerank
    kind = RERANKERS.get(name)
    if kind is None:
        raise ConfigError(f"CHATOPS_RERANK: unknown reranker {name!r} (known: {', '.join(RERANKERS)})")
    return kind.build(settings, llm)
