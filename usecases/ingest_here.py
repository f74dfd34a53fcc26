"""Writing the index in this process: ``chatops ingest PATH`` and ``chatops sources sync NAME``.

Both write, then build the engine's search structures (``VectorIndex.optimize``) here, in the
one-shot process, never in a worker. The embedding model's memory is handed back first: the
model and the optimisation together are the ingestion's peak.
"""

from __future__ import annotations

from typing import Callable

from connectors.index.base import VectorIndex
from connectors.embeddings.base import Embedder
from connectors.sources.base import DocumentSource
from usecases.ingest import IngestReport, ingest
from usecases.sync import Sync, SyncReport


def ingest_here(source: DocumentSource, index: VectorIndex, embedder: Embedder, *, needs_optimize: bool,
                release_model: Callable[[], None], progress: bool = False) -> IngestReport:
    """The whole source read and written here; the search structures built also when nothing
    changed here, for what ``ingest --via-workers`` wrote (a no-op when nothing needs it)."""
    report = ingest(source, index, embedder, progress=progress)
    optimise(index, needs_optimize=needs_optimize, release_model=release_model)
    return report


def sync_here(sync: Sync, mode: str, index: VectorIndex, *, needs_optimize: bool,
              release_model: Callable[[], None]) -> SyncReport:
    """One sync run to its end here; the search structures built when it completed and wrote."""
    report = sync.run(mode)
    if report.done and (report.added or report.updated):
        optimise(index, needs_optimize=needs_optimize, release_model=release_model)
    return report


def optimise(index: VectorIndex, *, needs_optimize: bool, release_model: Callable[[], None]) -> None:
    """The engine's search structures built, after the model's memory is released (an engine
    that needs none, ``Engine.needs_optimize`` false, is left alone)."""
    if needs_optimize:
        release_model()
        index.optimize()
