"""Index engines by name: ``CHATOPS_INDEX_ENGINE`` picks an embedded one; ``QDRANT_URL`` a server.

Each engine declares what the rest of the system must know about it:

* ``embedded``: it lives in the process that opens it, and one process at a time may (the
  worker then runs threads, not processes; a one-shot ingest needs the worker stopped);
* ``needs_optimize``: it builds its search structures (HNSW, the int8 copy) in
  ``optimize()``, which holds the GIL for minutes: a one-shot ``chatops ingest`` runs it,
  never the worker.

The engines' settings are the registry's own (``SETTINGS``): every engine here is Qdrant's, and
all are opened with the same place and collection. Adding an engine: its module, and one line in
``ENGINES`` (and, if it reads variables of its own, its settings model beside it, in ``SETTINGS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from qdrant_client import QdrantClient

from chatops.errors import ConfigError
from chatops.settings import PluginSettings, Settings
from connectors.index.base import VectorIndex
from connectors.index.edge_index import EdgeIndex
from connectors.index.embedding_settings import EmbeddingSettings
from connectors.index.generations import EmbeddedGenerations, ServerGenerations
from connectors.index.qdrant_index import QdrantIndex
from connectors.index.settings import IndexSettings

# the registry's own: which engine, where, the collection; the embedding model every engine is filled by
SETTINGS: tuple[type[PluginSettings], ...] = (IndexSettings, EmbeddingSettings)


@dataclass(frozen=True)
class Engine:
    name: str
    open: Callable[..., VectorIndex]     # open(path=, dim=, url=, api_key=, collection=) -> index
    embedded: bool
    needs_optimize: bool


ENGINES: dict[str, Engine] = {e.name: e for e in (
    Engine("edge", EdgeIndex.at, embedded=True, needs_optimize=True),         # Qdrant's engine, in process
    Engine("local", QdrantIndex.local, embedded=True, needs_optimize=False),  # qdrant-client's local mode
    Engine("server", QdrantIndex.server, embedded=False, needs_optimize=False),  # a Qdrant server (QDRANT_URL)
)}
EMBEDDED = tuple(name for name, e in ENGINES.items() if e.embedded)


def engine_named(name: str) -> Engine:
    engine = ENGINES.get(name)
    if engine is None:
        raise ConfigError(f"CHATOPS_INDEX_ENGINE: unknown engine {name!r} (known: {', '.join(EMBEDDED)}; "
                          "QDRANT_URL selects a server)")
    return engine


def engine_for(settings: Settings) -> Engine:
    index = settings.of(IndexSettings)
    return ENGINES["server"] if index.qdrant_url else engine_named(index.index_engine)


def open_index(settings: Settings, dim: int, embedder: str | None = None, provider: str | None = None) -> VectorIndex:
    """The index the settings name (embedded at ``index_path``, or the server), at its active
    generation (connectors/index/generations.py); a collection it creates records ``embedder``
    (the model), ``dim`` and ``provider`` (``built_with``)."""
    return open_generation(settings, generations_for(settings).active(), dim, embedder=embedder, provider=provider)


def generations_for(settings: Settings) -> EmbeddedGenerations | ServerGenerations:
    """The index's generations (one collection per embedder) and which one is active."""
    index = settings.of(IndexSettings)
    if engine_for(settings).embedded:
        return EmbeddedGenerations(index.path(settings.data_dir), index.collection)
    client = QdrantClient(url=index.qdrant_url, timeout=10,
                          api_key=index.qdrant_api_key.get_secret_value() if index.qdrant_api_key else None)
    return ServerGenerations(client, index.collection, settings.data_dir / "index-generations")


def open_generation(settings: Settings, name: str, dim: int, embedder: str | None = None,
                    provider: str | None = None) -> VectorIndex:
    """One generation of the index, by name (its own folder, or its own collection on a server)."""
    engine, index = engine_for(settings), settings.of(IndexSettings)
    gens = generations_for(settings) if engine.embedded else None
    path = gens.location(name) if gens is not None else index.path(settings.data_dir)
    return engine.open(path=path, dim=dim, url=index.qdrant_url, collection=index.collection if gens else name,
                       api_key=index.qdrant_api_key.get_secret_value() if index.qdrant_api_key else None,
                       embedder=embedder, provider=provider)
