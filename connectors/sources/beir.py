"""A BEIR-format folder (corpus.jsonl) as a document source, for evaluation and benchmarks.

Each corpus line is one document (``_id``, ``title``, ``text``). Permissions
are assigned by a function of the document id (public by default), so
benchmarks can exercise filtered search with realistic ACL mixes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Collection, Iterator

from pydantic import BaseModel, ConfigDict, Field

from chatops.access import Acl
from connectors.sources.base import Document, Section


class BeirConfig(BaseModel):
    """A ``sources:`` entry of kind ``beir``: public documents, for benchmarks."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1)
    limit: int | None = None


class BeirSource:
    Config = BeirConfig

    @staticmethod
    def id_for(name: str, config: BeirConfig) -> str:
        return f"beir:{Path(config.path).name}"

    @classmethod
    def from_config(cls, config: BeirConfig, context=None) -> "BeirSource":
        return cls(Path(config.path), limit=config.limit)

    def __init__(self, folder: Path, *, acl_for: Callable[[str], Acl] | None = None,
                 limit: int | None = None, source_id: str | None = None):
        self.folder = Path(folder)
        self.corpus = self.folder / "corpus.jsonl"
        if not self.corpus.exists():
            raise FileNotFoundError(f"{self.corpus} not found (is {folder} a BEIR folder?)")
        self.source_id = source_id or f"beir:{self.folder.name}"
        self.acl_for = acl_for or (lambda _doc_id: Acl.of(public=True))
        self.limit = limit

    def documents(self, only: Collection[str] | None = None) -> Iterator[Document]:
        wanted = None if only is None else set(only)
        with self.corpus.open() as fh:
            for n, line in enumerate(fh):
                if (self.limit is not None and n >= self.limit) or wanted == set():  # past the limit, or all found
                    return
                row = json.loads(line)
                doc_id = str(row["_id"])
                if wanted is not None:
                    if doc_id not in wanted:
                        continue
                    wanted.discard(doc_id)
                title = (row.get("title") or "").strip()
                text = (row.get("text") or "").strip()
                acl = self.acl_for(doc_id)
                digest = hashlib.sha256(json.dumps([title, text, acl.to_payload()]).encode()).hexdigest()
                yield Document(doc_id=doc_id, title=title or doc_id, sections=(Section("", text),),
                               acl=acl, content_hash=digest)
