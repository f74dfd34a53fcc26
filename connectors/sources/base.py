"""What a document source is: the records it hands over and the interface a source kind meets.

Two interfaces, one per way of reading a source:

* :class:`DocumentSource` — every document at once (``documents()``): what the one-off
  ``chatops ingest PATH`` and the BEIR benchmarks read;
* :class:`SyncSource` — the source framework (``usecases.sync``): **content sync** (a full
  listing, or the changes since a stored cursor, then each changed document fetched) kept
  apart from **permission sync** (the permissions of listed items, and the members of the
  source's own groups), because a permission change usually leaves a document's modified
  time alone.

A source kind is a folder under ``connectors/sources/<kind>/`` and one line in
``connectors/sources/registry.py``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Collection, Final, Iterator, Literal, Mapping, Protocol, Sequence

from chatops.access import Acl
from chatops.errors import SourceUnavailable  # noqa: F401 - raised by every source; the core owns it (crosses layers)


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


# -- the source framework -----------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One entry of a listing: a document or a folder, as the source lists it."""

    doc_id: str                   # stable id in the source: survives renames and moves
    scope: str = ""               # the part of the source it lives in (a drive); "" if one part
    version: str = ""             # changes when the content changes (Graph's cTag, a file digest)
    title: str = ""
    url: str | None = None
    parent: str | None = None     # the doc_id of its folder
    folder: bool = False
    deleted: bool = False
    sharing_changed: bool = False  # the source flags a change of its (or its subtree's) permissions
    skip: str | None = None       # why it cannot be indexed (type, size), known from the listing


@dataclass(frozen=True)
class Page:
    """One page of a listing. ``cursor``: where the listing goes on (``done`` False), or the
    cursor the next incremental sync starts from (``done`` True)."""

    items: list[Item]
    cursor: str | None
    done: bool


@dataclass(frozen=True)
class Member:
    # a person (``id``: email), an identity-provider group (its id), or everyone the directory
    # knows (``id``: "*"; only where the source's configuration says such claims count)
    kind: Literal["user", "group", "everyone"]
    id: str


@dataclass(frozen=True)
class SourceGroup:
    """A group the source keeps itself (a SharePoint site group), by its ACL token."""

    token: str                       # stable and scoped: "<site id>::<group id>"
    members: tuple[Member, ...] = field(default_factory=tuple)


class _Gone(enum.Enum):
    """What ``permissions`` says of a document the source no longer has (deleted since it was
    listed): the sync removes it at once instead of waiting for the next full listing. A
    one-member enum, so that ``acl is GONE`` narrows the type."""

    GONE = "GONE"

    def __repr__(self) -> str:
        return "GONE"


GONE: Final = _Gone.GONE

# What ``permissions`` says of one item: its ACL, None (the source would not say), or GONE.
ItemAcl = Acl | None | _Gone


class CursorExpired(Exception):
    """The stored cursor is no longer valid (Graph's 410 Gone): list the scope again and diff."""




class Unfetchable(Exception):
    """This one document cannot be indexed (an unsupported or unreadable file); the message is
    the reason, listed as skipped. ``again``: the failure is worth one more try at the next sync
    (a parse that failed) before the document is listed as skipped."""

    again = False


class SyncSource(Protocol):
    name: str                 # the configured name (CLI, status, citations)
    source_id: str            # the ``source`` of its chunks in the index
    lists_everything: bool    # changes() always lists every item: prune after each listing

    def scopes(self) -> list[str]:
        """The parts listed one by one (drives); a part that disappears is pruned."""
        ...

    def changes(self, scope: str, cursor: str | None) -> Iterator[Page]:
        """Pages of items changed since ``cursor`` (every item when None). Raises
        :class:`CursorExpired` when the cursor is too old, :class:`SourceUnavailable` when
        the source cannot be read."""
        ...

    def fetch(self, item: Item) -> Document:
        """The document's text, title and link (its ``acl`` is not read here: see
        ``permissions``). Raises :class:`Unfetchable` with a reason."""
        ...

    def permissions(self, items: Sequence[Item]) -> Mapping[str, ItemAcl]:
        """Who may read each item now, by doc_id; None where the source would not say (the
        item is then visible to nobody); :data:`GONE` where it no longer has the item. Raises
        :class:`SourceUnavailable`."""
        ...

    def refresh(self, items: Sequence[Item]) -> dict[str, Item | None]:
        """The items as the source lists them now (after a folder moved: new links); None for
        those gone."""
        ...

    def groups(self) -> list[SourceGroup]:
        """The source's own groups and their members (empty when it has none)."""
        ...

    def findings(self) -> dict[str, int]:
        """What the last permissions read found that grants nothing and an operator should
        know of, by what it is ({"Atlassian accounts without a visible email": 2}); shown by
        ``sources status``."""
        ...

    def check(self) -> str:
        """``chatops doctor``: one cheap call that shows the source is reachable with its
        credentials and the configured parts exist; what was found, in a few words. Raises
        ``chatops.checks.CheckFailed`` saying what is wrong and what to do."""
        ...

    def close(self) -> None: ...
