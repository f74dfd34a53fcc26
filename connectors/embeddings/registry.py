"""Embedding providers by name (``CHATOPS_EMBEDDING_PROVIDER``). Adding one: its module (an
``Embedder``, ``base.py``, usually on ``sparse.WithBm25``), its settings model beside it, and one
line in ``PROVIDERS``.

Each provider says what it is before it loads (``declared``: the model and, where known, the
dimension), so a process that opens the index can refuse one built with another embedder at
start-up (``configured``), and builds itself (``build``: the settings and the HTTP session msal
talks through)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import requests

from chatops.errors import ConfigError
from chatops.settings import PluginSettings, Settings
from connectors.embeddings.base import Embedder, EmbedderId, refuse_other_embedder
from connectors.embeddings.local import LocalEmbedder
from connectors.embeddings.onnx_dir import OnnxDirEmbedder
from connectors.embeddings.openai_embeddings import OpenAIEmbedder
from connectors.embeddings.settings import EmbeddingSettings, OnnxDirSettings, OpenAIEmbeddingSettings
from connectors.index.base import IndexBusy, IndexUnavailable, VectorIndex, read_built
from connectors.index.registry import engine_for, open_index
from connectors.index.settings import IndexSettings

SETTINGS: tuple[type[PluginSettings], ...] = (EmbeddingSettings,)   # which provider, the model, batches


@dataclass(frozen=True)
class Provider:
    name: str
    settings: type[PluginSettings] | None          # its own environment settings
    build: Callable[[Settings, requests.Session | None], Embedder]
    declared: Callable[[Settings], tuple[str, int | None]]   # (model, dimension or None), nothing loaded


PROVIDERS: dict[str, Provider] = {p.name: p for p in (
    Provider("local", None, LocalEmbedder.from_settings, LocalEmbedder.declared),        # shipped MiniLM ONNX
    Provider("openai", OpenAIEmbeddingSettings, OpenAIEmbedder.from_settings, OpenAIEmbedder.declared),
    Provider("onnx_dir", OnnxDirSettings, OnnxDirEmbedder.from_settings, OnnxDirEmbedder.declared),
)}


def provider_for(settings: Settings) -> Provider:
    name = settings.of(EmbeddingSettings).embedding_provider
    provider = PROVIDERS.get(name)
    if provider is None:
        raise ConfigError(f"CHATOPS_EMBEDDING_PROVIDER: unknown provider {name!r} (known: {', '.join(PROVIDERS)})")
    return provider


def configured(settings: Settings) -> EmbedderId:
    """The configured embedder's provider, model and (where known before loading) dimension."""
    provider = provider_for(settings)
    model, dim = provider.declared(settings)
    return EmbedderId(provider.name, model, dim)


def build_embedder(settings: Settings, http: requests.Session | None = None) -> Embedder:
    return provider_for(settings).build(settings, http)


def open_index_for(settings: Settings, embedder: Embedder) -> VectorIndex:
    """The index the settings name, for ``embedder``: a collection it creates records the embedder's
    provider, model and dimension; one built with another embedder is refused (``WrongEmbedder``,
    naming both), never queried or written."""
    ident = EmbedderId.of(embedder)
    if engine_for(settings).embedded:   # its record first: an engine refuses vectors of another length itself
        refuse_other_embedder(read_built(settings.of(IndexSettings).path(settings.data_dir)), ident)
    index = open_index(settings, embedder.dim, embedder=ident.model, provider=ident.provider)
    try:
        refuse_other_embedder(index.built_with(), ident)
    except BaseException:
        index.close()
        raise
    return index


def refuse_index_of_another(settings: Settings) -> None:
    """At a process's start, before any model loads: refuse an index built with another embedder
    than the configured one. An embedded index's record is read beside its files (even while a
    worker holds them); where there is none (qdrant-client's local mode keeps it inside) and for a
    server, the index is asked and let go."""
    wanted = configured(settings)
    built = (read_built(settings.of(IndexSettings).path(settings.data_dir))
             if engine_for(settings).embedded else None)
    if built is None:
        try:
            index = open_index(settings, wanted.dim or 1)
        except IndexBusy:       # a worker holds it: it refused or accepted the index itself
            return
        try:
            built = index.built_with()
        except IndexUnavailable:    # a server not up yet: whoever opens it later checks (open_index_for)
            return
        finally:
            index.close()
    refuse_other_embedder(built, wanted)
