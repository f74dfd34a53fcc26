"""The plan of an ingestion split across workers: what changed, cut into batches.

The plan reads every document once (as a one-process ingest does) to compare content
hashes and to count the chunks of the changed ones; it writes nothing. Each batch is
then rewritten by :func:`usecases.ingest.write_batch` in some worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from connectors.index.base import VectorIndex
from connectors.sources.base import DocumentSource
from connectors.sources.chunking import chunk_document
from usecases.ingest import IngestReport, Survey


@dataclass(frozen=True)
class IngestPlan:
    report: IngestReport        # added / updated / unchanged / removed / no-ACL / unreadable
    batches: list[list[str]]    # doc ids of the changed documents, batch by batch
    gone: list[str]             # indexed doc ids the source no longer holds


def split_batches(sizes: Sequence[tuple[str, int]], *, max_docs: int, max_chunks: int) -> list[list[str]]:
    """Consecutive (doc id, chunk count) pairs cut into batches of at most ``max_docs``
    documents and ``max_chunks`` chunks; a document larger than ``max_chunks`` goes alone."""
    if max_docs < 1 or max_chunks < 1:
        raise ValueError("batches need at least one document and one chunk")
    batches: list[list[str]] = []
    current: list[str] = []
    chunks = 0
    for doc_id, n in sizes:
        if current and (len(current) >= max_docs or chunks + n > max_chunks):
            batches.append(current)
            current, chunks = [], 0
        current.append(doc_id)
        chunks += n
    if current:
        batches.append(current)
    return batches


def plan_ingest(source: DocumentSource, index: VectorIndex, *, max_docs: int, max_chunks: int) -> IngestPlan:
    index.ensure_collection()
    report = IngestReport(source=source.source_id)
    survey = Survey(report, index.document_hashes(source.source_id))
    sizes = [(doc.doc_id, len(chunk_document(doc, source.source_id)))
             for doc in survey.changed(source.documents())]
    gone = survey.gone()
    report.deleted = len(gone)
    report.skipped = list(getattr(source, "skipped", []))
    batches = split_batches(sizes, max_docs=max_docs, max_chunks=max_chunks)
    report.batches = len(batches)
    return IngestPlan(report=report, batches=batches, gone=gone)
