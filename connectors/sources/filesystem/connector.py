"""The filesystem source: every supported file below a root folder, permissions from its ``.acl.yml``.

Both interfaces of ``connectors.sources.base``: ``documents()`` for the one-off
``chatops ingest PATH``, and the sync interface for a configured source (``chatops sources
sync``, the scheduler). Each listing lists every file (``lists_everything``: what a listing
misses is gone) with its content digest as version; ``.acl.yml`` is read again at each
listing and each permission pass, and every listed file's permissions are compared then, so
an edited ``.acl.yml`` reaches the index at the next sync of either kind, in place.

Symbolic links are never followed (``files.py``): a link is listed as skipped, and every file
is read one path component at a time without following links.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from pathlib import Path, PurePosixPath
from typing import Collection, Iterator, Sequence

from pydantic import BaseModel, ConfigDict, Field

from chatops.access import Acl
from chatops.checks import CheckFailed
from chatops.groups import GroupNames
from connectors.sources.base import Document, Item, Page, SourceGroup, SourceUnavailable, Unfetchable
from connectors.sources.filesystem.acl import ACL_FILE, AclFileError, AclRules
from connectors.sources.filesystem.files import LINK, Entry, NotRead, read_below, walk
from connectors.sources.isolation import DEFAULT_LIMITS, ParseFailed, ParseLimits, parse_isolated
from connectors.sources.parsing import SUPPORTED

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
    lists_everything = True

    @staticmethod
    def id_for(name: str, config: FilesystemConfig) -> str:
        return f"fs:{Path(config.path).resolve()}"

    @classmethod
    def from_config(cls, config: FilesystemConfig, context) -> "FilesystemSource":
        return cls(Path(config.path), config.base_url, context.groups, name=context.name,
                   parse_limits=ParseLimits.of(context.settings))

    def __init__(self, root: Path, base_url: str | None = None, groups: GroupNames | None = None, *,
                 name: str | None = None, parse_limits: ParseLimits = DEFAULT_LIMITS):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"{root} is not a folder")
        self.source_id = f"fs:{self.root}"   # = id_for()
        self.name = name or self.source_id
        self.base_url = base_url.rstrip("/") + "/" if base_url else None
        self._groups = groups
        self.parse_limits = parse_limits
        self.rules = AclRules.load(self.root, groups)
        self.skipped: list[tuple[str, str]] = []

    # -- the sync interface (connectors.sources.base.SyncSource) ----------------------------

    def scopes(self) -> list[str]:
        return [""]

    def changes(self, scope: str, cursor: str | None) -> Iterator[Page]:
        """Every file, one page: its digest as version, and flagged so its permissions are
        compared (they come from ``.acl.yml``, read again now)."""
        self._reload_rules()
        items = [self._item(entry) for entry in self._entries()]
        yield Page(items=items, cursor=None, done=True)

    def fetch(self, item: Item) -> Document:
        path = self._path_of(item.doc_id)
        if path is None:
            raise Unfetchable("no longer there")
        try:
            raw = self._read(item.doc_id)
        except NotRead as exc:
            raise Unfetchable(str(exc)) from None
        try:
            title, sections = parse_isolated(path.name, raw, self.parse_limits)
        except ParseFailed:
            raise                  # an Unfetchable the sync tries once more
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the rest
            raise Unfetchable(f"could not be parsed: {str(exc)[:150]}") from None
        return Document(doc_id=item.doc_id, title=title, sections=tuple(sections), acl=Acl(),
                        content_hash=item.version, url=self._url(item.doc_id))

    def permissions(self, items: Sequence[Item]) -> dict[str, Acl | None]:
        return {item.doc_id: self.rules.acl_for(item.doc_id) for item in items}

    def refresh(self, items: Sequence[Item]) -> dict[str, Item | None]:
        out: dict[str, Item | None] = {}
        for item in items:
            path = self._path_of(item.doc_id)
            out[item.doc_id] = self._item(Entry(item.doc_id)) if path is not None else None
        return out

    def groups(self) -> list[SourceGroup]:
        """No groups of its own; a permission pass starts here, so ``.acl.yml`` is read again."""
        self._reload_rules()
        return []

    def findings(self) -> dict[str, int]:
        return {}      # a file that matches no rule is counted as hidden already

    def close(self) -> None:
        pass

    def check(self) -> str:
        """``chatops doctor``: the folder is there (opening it said so) and its ``.acl.yml`` reads."""
        try:
            self._reload_rules()
        except SourceUnavailable as exc:
            raise CheckFailed(str(exc), f"fix {ACL_FILE}: until then the last permissions read are kept") from None
        return f"{self.root}: {len(self.paths())} files, {ACL_FILE} read"

    def _reload_rules(self) -> None:
        try:
            self.rules = AclRules.load(self.root, self._groups)
        except (AclFileError, OSError) as exc:
            # Keep the permissions already in the index rather than guess new ones.
            raise SourceUnavailable(f"{self.root / ACL_FILE}: {exc}", transient=False) from None

    def _path_of(self, doc_id: str) -> Path | None:
        found = self.paths_of([doc_id])
        return found[0] if found else None

    def _entries(self) -> list[Entry]:
        """The listing: files to read, and links and other kinds of file to skip (logged)."""
        entries = list(walk(self.root, _indexable))
        links = sum(1 for e in entries if e.skip == LINK)
        if links:
            log.info("symbolic links not followed; listed as skipped", extra={"source": self.name, "links": links})
        return entries

    def _read(self, rel: str) -> bytes:
        """The file's bytes; :class:`NotRead` saying why not (a link, not a regular file, an error)."""
        try:
            return read_below(self.root, rel)
        except OSError as exc:
            raise NotRead(f"could not be read: {exc.strerror}") from None

    def _item(self, entry: Entry) -> Item:
        rel, name = entry.rel, PurePosixPath(entry.rel).name
        try:
            if entry.skip:
                raise NotRead(entry.skip)
            raw = self._read(rel)
        except NotRead as exc:
            return Item(doc_id=rel, version="", title=name, skip=str(exc))
        version = hashlib.sha256(PARSER_VERSION.encode() + b"\0" + raw).hexdigest()[:40]
        return Item(doc_id=rel, version=version, title=name, url=self._url(rel), sharing_changed=True)

    def _url(self, rel: str) -> str | None:
        return f"{self.base_url}{rel}" if self.base_url else None

    # -- every document at once (chatops ingest PATH) ------------------------------------------

    def paths(self) -> list[Path]:
        """The regular files below the root that are read (links and other kinds left out)."""
        return [self.root / e.rel for e in walk(self.root, _indexable) if e.skip is None]

    def paths_of(self, doc_ids: Collection[str]) -> list[Path]:
        """The files these ids (relative paths) name, where :meth:`paths` would list them too:
        below the root, through no hidden or symlinked folder, supported, still there, a
        regular file and not a link."""
        found = []
        for rel in sorted(set(doc_ids)):
            parts = PurePosixPath(rel).parts
            if not parts or PurePosixPath(rel).is_absolute() or any(p in ("", ".", "..") for p in parts):
                continue
            if any(p.startswith(".") for p in parts[:-1]) or not _indexable(parts[-1]):
                continue
            folders = [self.root.joinpath(*parts[:i]) for i in range(1, len(parts))]
            path = self.root.joinpath(*parts)
            try:
                regular = stat.S_ISREG(os.lstat(path).st_mode)
            except OSError:
                continue
            if regular and not any(f.is_symlink() for f in folders):
                found.append(path)
        return found

    def documents(self, only: Collection[str] | None = None) -> Iterator[Document]:
        """Every file below the root, or with ``only`` just those relative paths (reading only
        those files; an id whose file is gone is left out)."""
        if only is None:
            entries = self._entries()
        else:
            entries = [Entry(path.relative_to(self.root).as_posix()) for path in self.paths_of(only)]
        for entry in entries:
            rel, path = entry.rel, self.root / entry.rel
            acl = self.rules.acl_for(rel)
            try:
                if entry.skip:
                    raise NotRead(entry.skip)
                raw = self._read(rel)
                title, sections = parse_isolated(path.name, raw, self.parse_limits)
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
