"""How much a parser takes from one file, and the errors for a file it will not read.

Every source reads its files through ``connectors.sources.parsing``, so one planted file could
otherwise cost a worker gigabytes or minutes. The limits: the text taken from one document
(``CHATOPS_MAX_DOCUMENT_CHARS``, headings included), rows of a sheet or a table, cells of a row,
the length of a title; and, for Office files (zip archives), how much their parts may inflate
in all and each against its compressed size, checked before any of it is parsed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from connectors.sources.base import Section
from connectors.sources.settings import SourceSettings

MAX_TITLE_CHARS = 200


class Unsupported(ValueError):
    """Not a kind of file the bot reads."""


class Refused(Unsupported):
    """A file of a kind the bot reads that it will not parse: too big once inflated, or malformed
    in a way that would make parsing it cost far more than its size. The message says why."""


@dataclass(frozen=True)
class FileLimits:
    max_chars: int = 2_000_000          # text taken from one document, headings included
    max_rows: int = 5000                # rows of a sheet or a table
    max_cells: int = 1000               # cells taken from one row
    max_inflated: int = 100_000_000     # an Office file's parts together, inflated (bytes)
    max_ratio: int = 100                # how many times its compressed size one part may inflate
    max_parts: int = 10_000             # parts of an Office file

    @classmethod
    def from_settings(cls, settings) -> FileLimits:
        """The limits a ``chatops.settings.Settings`` sets (the defaults when None)."""
        return cls() if settings is None else cls(max_chars=settings.of(SourceSettings).max_document_chars)


DEFAULT_LIMITS = FileLimits()


def capped(sections: Iterable[Section], max_chars: int) -> list[Section]:
    """The sections up to ``max_chars`` characters, headings included: the one that crosses the
    limit is cut there, the rest left out."""
    out: list[Section] = []
    left = max_chars
    for section in sections:
        if len(section.heading) >= left:
            break
        left -= len(section.heading)
        if len(section.text) > left:
            out.append(Section(section.heading, section.text[:left]))
            break
        left -= len(section.text)
        out.append(section)
    return out


def short_title(title: str) -> str:
    """A title on one line and at most :data:`MAX_TITLE_CHARS` long (cut with an ellipsis)."""
    title = " ".join(title[: MAX_TITLE_CHARS * 4].split())
    return title if len(title) <= MAX_TITLE_CHARS else title[: MAX_TITLE_CHARS - 1] + "…"


def plain_title(value) -> str | None:
    """A front-matter ``title:`` only when it is a plain, short string (or a number)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    text = " ".join(str(value).split())
    return text if 0 < len(text) <= MAX_TITLE_CHARS else None
