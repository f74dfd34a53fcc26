"""The filesystem source: every supported file below a root folder."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path, PurePosixPath
from typing import Collection, Iterator

from pydantic import BaseModel, ConfigDict, Field

from chatops.groups import GroupNames
from connectors.sources.base import Document
from connectors.sources.filesystem.acl import ACL_FILE, AclRules
from connectors.sources.filesystem.parsers import SUPPORTED, parse_file

log = logging.getLogger(__name__)

# Bump when parsing or chunking changes, so re-ingestion refreshes every document.
PARSER_VERSION = "1"


class FilesystemConfig(BaseModel):
    """A ``sources:`` entry of kind ``filesystem``."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1)          # the folder; permissions from its .acl.yml
    base_url: str | None = None              # citations link to BASE_URL/<relative path>


class FilesystemSource:
    Config = FilesystemConfig

    @classmethod
    def from_config(cls, config: FilesystemConfig, groups: GroupNames | None = None) -> "FilesystemSource":
        return cls(Path(config.path), config.base_url, groups)

    def __init__(self, root: Path, base_url: str | None = None, groups: GroupNames | None = None):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"{root} is not a folder")
        self.source_id = f"fs:{self.root}"
        self.base_url = base_url.rstrip("/") + "/" if base_url else None
        self.rules = AclRules.load(self.root, groups)
        self.skipped: list[tuple[str, str]] = []

    def paths(self) -> list[Path]:
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            found.extend(Path(dirpath) / name for name in sorted(filenames) if _indexable(name))
        return found

    def paths_of(self, doc_ids: Collection[str]) -> list[Path]:
        """The files these ids (relative paths) name, where :meth:`paths` would list them too:
        below the root, through no hidden or symlinked folder, supported, still there."""
        found = []
        for rel in sorted(set(doc_ids)):
            parts = PurePosixPath(rel).parts
            if not parts or PurePosixPath(rel).is_absolute() or any(p in ("", ".", "..") for p in parts):
                continue
            if any(p.startswith(".") for p in parts[:-1]) or not _indexable(parts[-1]):
                continue
            folders = [self.root.joinpath(*parts[:i]) for i in range(1, len(parts))]
            path = self.root.joinpath(*parts)
            if path.is_file() and not any(f.is_symlink() for f in folders):
                found.append(path)
        return found

    def documents(self, only: Collection[str] | None = None) -> Iterator[Document]:
        """Every file below the root, or with ``only`` just those relative paths (reading only
        those files; an id whose file is gone is left out)."""
        for path in self.paths() if only is None else self.paths_of(only):
            rel = path.relative_to(self.root).as_posix()
            acl = self.rules.acl_for(rel)
            try:
                raw = path.read_bytes()
                title, sections = parse_file(path)
            except Exception as exc:  # one bad file must not stop the rest
                log.warning("could not read file; skipped", extra={"path": rel, "error": str(exc)[:200]})
                self.skipped.append((rel, str(exc)[:200]))
                continue
            url = f"{self.base_url}{rel}" if self.base_url else None
            digest = hashlib.sha256()
            digest.update(raw)
            digest.update(json.dumps([PARSER_VERSION, acl.to_payload(), url]).encode())
            yield Document(doc_id=rel, title=title, sections=tuple(sections), acl=acl,
                           content_hash=digest.hexdigest(), url=url)


def _indexable(name: str) -> bool:
    return not name.startswith(".") and name != ACL_FILE and Path(name).suffix.lower() in SUPPORTED
