"""Confluence's storage format (XHTML with ``ac:`` macros and ``ri:`` resources) as heading-aware
sections: headings make the section path, table rows stay rows (cells joined by `` | ``), code
macros keep their lines (fenced), panels (info, note, expand ...) keep their text, and macro
parameters, emoticons and resource identifiers add nothing."""

from __future__ import annotations

import re

from connectors.sources.base import Section
from connectors.sources.parsing import HtmlSections, join_path

_CODE_MACROS = {"code", "noformat"}
_CODE = re.compile(r"(\n```\n.*?\n```\n)", re.DOTALL)


class StorageSections(HtmlSections):
    def __init__(self):
        super().__init__()
        self._macros: list[str] = []     # names of the structured macros we are inside
        self._param = 0                  # inside <ac:parameter>: not text
        self._cells = 0                  # cells seen in the current row
        self._in_cell = 0                # inside a table cell: blocks are spaces, rows stay lines

    def handle_starttag(self, tag, attrs):
        if tag == "ac:structured-macro":
            self._macros.append(dict(attrs).get("ac:name", ""))
        elif tag == "ac:parameter":
            self._param += 1
        elif tag == "tr":
            self._cells = 0
        elif tag == "table":
            self._buf.append("\n\n")
        elif tag in ("td", "th"):
            self._buf.append(" | " if self._cells else "")
            self._cells += 1
            self._in_cell += 1
        elif self._in_cell and tag in self._BLOCK:
            self._buf.append(" ")
        else:
            super().handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "ac:structured-macro":
            if self._macros:
                self._macros.pop()
        elif tag == "ac:parameter":
            self._param = max(0, self._param - 1)
        elif tag == "tr":
            self._buf.append("\n")
        elif tag == "table":
            self._buf.append("\n")
        elif tag in ("td", "th"):
            self._in_cell = max(0, self._in_cell - 1)
        elif self._in_cell and tag in self._BLOCK:
            self._buf.append(" ")
        else:
            super().handle_endtag(tag)

    def _flush(self):
        """As for HTML, but code keeps its lines and indentation."""
        parts = []
        for n, part in enumerate(_CODE.split("".join(self._buf))):
            if n % 2:
                parts.append(part)
                continue
            part = re.sub(r"[ \t]+", " ", part)
            parts.append("\n".join(line.strip() for line in part.split("\n")))
        body = re.sub(r"\n\s*\n+", "\n\n", "".join(parts)).strip()
        if body:
            self.sections.append(Section(join_path(self._path), body))
        self._buf = []

    def handle_startendtag(self, tag, attrs):
        if tag == "br":
            self._buf.append("\n")

    def handle_data(self, data):
        if self._param:
            return
        super().handle_data(data)

    def unknown_decl(self, data):
        if not data.startswith("CDATA[") or self._param:
            return
        text = data[len("CDATA["):]
        if self._macros and self._macros[-1] in _CODE_MACROS:
            self._buf.append("\n```\n" + text.strip("\n") + "\n```\n")
        else:
            self.handle_data(text)


def storage_sections(storage: str, title: str) -> list[Section]:
    """The sections of a page body in storage format (the page's title is its own)."""
    parser = StorageSections()
    parser._seen_h1 = True            # a page's title is not in its body: every h1 is a section
    parser.feed(storage)
    parser.close()
    parser._flush()
    return parser.sections
