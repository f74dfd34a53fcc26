"""What a document source hands to ingestion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Iterator, Protocol

from chatops.access import Acl


@dataclass(frozen=True)
class Section:
    heading: str      # "Parent › Child" path of headings above this text ("" at the top)
    text: str


@dataclass(frozen=True)
class Document:
    doc_id: str       # stable id within the source (a relative path for files)
    title: str
    sections: tuple[Section, ...]
    acl: Acl
    content_hash: str  # changes whenever the text, title, link or ACL changes
    url: str | None = None


class DocumentSource(Protocol):
    source_id: str

    def documents(self, only: Collection[str] | None = None) -> Iterator[Document]:
        """Every document the source holds now (deleted ones simply do not appear); with
        ``only``, just the documents with those ids that it still holds (for a batch of an
        ingestion split across workers)."""
        ...
