"""Ingest a document source into the index: only what changed, with progress."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

from tqdm import tqdm

from connectors.index.base import VectorIndex
from connectors.index.embeddings import Embedder
from connectors.sources.base import DocumentSource
from connectors.sources.chunking import chunk_document

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    source: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    chunks: int = 0
    no_acl: list[str] = field(default_factory=list)
    skipped: list = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.added} added", f"{self.updated} updated", f"{self.unchanged} unchanged",
                 f"{self.deleted} removed", f"{self.chunks} chunks written"]
        text = "ingested " + self.source + ": " + ", ".join(parts)
        if self.no_acl:
            text += f"; {len(self.no_acl)} file(s) match no .acl.yml rule and stay hidden from everyone"
        if self.skipped:
            text += f"; {len(self.skipped)} file(s) could not be read"
        return text


def ingest(source: DocumentSource, index: VectorIndex, embedder: Embedder, *,
           progress: bool = False, batch_chunks: int = 1024) -> IngestReport:
    """``batch_chunks``: chunks gathered before embedding. The embedder sorts each gathering by
    length, so a larger one wastes less compute on padding (256 measured 0.52–0.85 of the
    model's own throughput, 1024 measured 0.93); memory stays bounded by it."""
    index.ensure_collection()
    report = IngestReport(source=source.source_id)
    existing = index.document_hashes(source.source_id)
    seen: set[str] = set()
    pending_chunks: list = []
    pending_docs: list[str] = []

    def flush():
        if not pending_docs:
            return
        index.delete_documents(source.source_id, list(pending_docs))
        if pending_chunks:
            dense, sparse = embedder.embed_documents([c.embedding_text() for c in pending_chunks])
            index.upsert(pending_chunks, dense, sparse)
        report.chunks += len(pending_chunks)
        pending_chunks.clear()
        pending_docs.clear()

    docs = source.documents()
    bar = tqdm(docs, desc="ingest", unit="doc", file=sys.stderr, disable=not progress)
    for doc in bar:
        if not doc.acl.visible_to_anyone:
            report.no_acl.append(doc.doc_id)
            continue
        seen.add(doc.doc_id)
        if existing.get(doc.doc_id) == doc.content_hash:
            report.unchanged += 1
            continue
        if doc.doc_id in existing:
            report.updated += 1
        else:
            report.added += 1
        pending_docs.append(doc.doc_id)
        pending_chunks.extend(chunk_document(doc, source.source_id))
        if len(pending_chunks) >= batch_chunks:
            flush()
    flush()
    gone = sorted(set(existing) - seen)
    index.delete_documents(source.source_id, gone)
    report.deleted = len(gone)
    report.skipped = list(getattr(source, "skipped", []))
    log.info("ingestion finished", extra={"source": source.source_id, "added": report.added,
                                          "updated": report.updated, "deleted": report.deleted,
                                          "chunks": report.chunks})
    return report
