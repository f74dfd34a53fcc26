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
from connectors.embeddings.base import Embedder, EmbedderId, WrongEmbedder, refusal, refuse_other_embedder
from connectors.embeddings.local import LocalEmbedder
from connectors.embeddings.onnx_dir import OnnxDirEmbedder
from connectors.embeddings.openai_embeddings import OpenAIEmbedder
from connectors.embeddings.settings import EmbeddingSettings, OnnxDirSettings, OpenAIEmbeddingSettings
from connectors.index.base import Built, IndexBusy, IndexUnavailable, VectorIndex
from connectors.embeddings.switching import Deferred, Pair, SwitchingIndex
from connectors.index.registry import engine_for, generations_for, open_generation, open_index
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
        gens = generations_for(settings)
        active = gens.active()
        refuse_with_hint(gens, active, gens.built(active), ident)
    index = open_index(settings, embedder.dim, embedder=ident.model, provider=ident.provider)
    try:
        gens = generations_for(settings)
        refuse_with_hint(gens, gens.active(), index.built_with(), ident)
    except BaseException:
        index.close()
        raise
    return index


def refuse_index_of_another(settings: Settings) -> None:
    """At a process's start, before any model loads: refuse an index whose active generation was
    built with another embedder than the configured one (and say so when another generation, built
    with the configured one and checked, could be switched to). An embedded index's record is read
    beside its files (even while a worker holds them); where there is none (qdrant-client's local
    mode keeps it inside) and for a server, the index is asked and let go."""
    wanted = configured(settings)
    try:
        gens = generations_for(settings)
        active = gens.active()
    except IndexUnavailable:    # a server not up yet: whoever opens it later checks (open_index_for)
        return
    built = gens.built(active) if engine_for(settings).embedded else None
    if built is None:
        try:
            index = open_index(settings, wanted.dim or 1)
        except (IndexBusy, IndexUnavailable):   # a worker holds it: it refused or accepted the index itself
            return
        try:
            built = index.built_with()
        except IndexUnavailable:    # a server not up yet: whoever opens it later checks (open_index_for)
            return
        finally:
            index.close()
    refuse_with_hint(gens, active, built, wanted)


def refuse_with_hint(gens, active: str, built: Built | None, wanted: EmbedderId) -> None:
    """``refuse_other_embedder``, naming a generation built with ``wanted`` and checked, if there is
    one (``chatops index switch`` makes it active)."""
    why = refusal(built, wanted)
    if why is None:
        return
    for name in gens.names():
        state = gens.state(name) if name != active else None
        if state is not None and state.state == "checked" and refusal(gens.built(name), wanted) is None:
            raise WrongEmbedder(f"{why}; generation {name} was built with the configured embedder and checked: "
                                f"`chatops index switch {name}` makes it the active one")
    raise WrongEmbedder(why)


def settings_for(settings: Settings, provider: str, model: str | None) -> Settings:
    """These settings with another embedder (provider and model); the rest (its URL, key, batches)
    as configured."""
    copy = settings.model_copy()
    plugins = dict(settings._plugins)
    plugins[EmbeddingSettings] = settings.of(EmbeddingSettings).model_copy(
        update={"embedding_provider": provider, "embedding_model": model})
    copy._plugins = plugins
    return copy


def open_generation_pair(settings: Settings, name: str, http: requests.Session | None = None,
                         embedder: Embedder | None = None) -> Pair:
    """One generation, opened with the embedder that built it (its recorded provider and model,
    built from these settings' others); ``embedder`` when given must be that one."""
    gens = generations_for(settings)
    built = gens.built(name)
    if embedder is None:
        if built is None:
            embedder = build_embedder(settings, http)
        else:
            was = EmbedderId.recorded(built)
            embedder = build_embedder(settings_for(settings, was.provider, was.model), http)
    ident = EmbedderId.of(embedder)
    index = open_generation(settings, name, embedder.dim, embedder=ident.model, provider=ident.provider)
    try:
        refuse_other_embedder(index.built_with(), ident)
    except BaseException:
        index.close()
        raise
    return Pair(name, index, embedder)


def open_switching_index(settings: Settings, embedder: Embedder, http: requests.Session | None = None,
                         poll: float | None = None, embedder_of: Callable[[], Embedder] | None = None) -> SwitchingIndex:
    """The index at its active generation with ``embedder`` (the configured one: refused if the
    active generation was built with another), following a later switch (``SwitchingIndex``).
    ``embedder_of``: where the index gets that embedder on each use instead of keeping it (the
    composition root's, which a one-shot ingest releases to hand its memory back)."""
    gens = generations_for(settings)
    first = open_index_for(settings, embedder)
    pair = Pair(gens.active(), first, Deferred(embedder_of) if embedder_of else embedder)
    return SwitchingIndex(pair, open_pair=lambda name: open_generation_pair(settings, name, http),
                          stamp=gens.stamp, active=gens.active,
                          poll=settings.of(IndexSettings).index_switch_poll if poll is None else poll)
