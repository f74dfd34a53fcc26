"""Split a document's sections into chunks of bounded size.

Chunks never cross a heading: each keeps its section's heading path and the
document title (both go into the text that is embedded). Paragraphs stay
whole where they fit; a paragraph longer than the limit is split at sentence
ends, and a sentence longer than the limit at word boundaries.
"""

from __future__ import annotations

import re
import uuid

from connectors.index.base import Chunk
from connectors.sources.base import Document

_NS = uuid.UUID("6f1c3f0e-4a55-4d5e-9a53-1b0f8d2c7a11")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
MAX_WORDS = 160


def chunk_id(source: str, doc_id: str, position: int) -> str:
    return str(uuid.uuid5(_NS, f"{source}\x00{doc_id}\x00{position}"))


def _pieces(text: str, max_words: int) -> list[str]:
    out: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        if not para:
            continue
        if len(para.split()) <= max_words:
            out.append(para)
            continue
        for sentence in _SENTENCE_END.split(para):
            words = sentence.split()
            for start in range(0, len(words), max_words):
                out.append(" ".join(words[start:start + max_words]))
    return out


def chunk_document(doc: Document, source: str, max_words: int = MAX_WORDS) -> list[Chunk]:
    chunks: list[Chunk] = []
    for section in doc.sections:
        current: list[str] = []
        count = 0
        for piece in _pieces(section.text, max_words):
            n = len(piece.split())
            if current and count + n > max_words:
                chunks.append(_make(doc, source, section.heading, "\n\n".join(current), len(chunks)))
                current, count = [], 0
            current.append(piece)
            count += n
        if current:
            chunks.append(_make(doc, source, section.heading, "\n\n".join(current), len(chunks)))
    return chunks


def _make(doc: Document, source: str, heading: str, text: str, position: int) -> Chunk:
    return Chunk(id=chunk_id(source, doc.doc_id, position), source=source, doc_id=doc.doc_id,
                 title=doc.title, heading=heading, text=text, position=position, acl=doc.acl,
                 doc_hash=doc.content_hash, url=doc.url)
