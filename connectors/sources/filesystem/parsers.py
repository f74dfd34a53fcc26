"""Turn a file into a title and heading-scoped sections."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import yaml

from connectors.sources.base import Section

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\(([^)]*)\)")


def _join(path: list[str]) -> str:
    return " › ".join(p for p in path if p)


def parse_markdown(text: str, fallback_title: str) -> tuple[str, list[Section]]:
    title = None
    if text.startswith("---\n"):
        end = text.find("\n---", 4)
        if end != -1:
            try:
                meta = yaml.safe_load(text[4:end]) or {}
                if isinstance(meta, dict) and meta.get("title"):
                    title = str(meta["title"])
            except yaml.YAMLError:
                pass
            text = text[end + 4:].lstrip("\n")
    sections: list[Section] = []
    path: list[str] = []
    buf: list[str] = []
    in_fence = False

    def flush():
        body = "\n".join(buf).strip()
        if body:
            sections.append(Section(_join(path), _MD_LINK.sub(r"\1", body)))
        buf.clear()

    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
            buf.append(line)
            continue
        m = None if in_fence else _HEADING.match(line)
        if m:
            flush()
            level, heading = len(m.group(1)), m.group(2).strip()
            if level == 1 and title is None and not sections:
                title = heading
                path = []
                continue
            path = path[: level - 1] + [""] * max(0, level - 1 - len(path)) + [heading]
        else:
            buf.append(line)
    flush()
    return title or fallback_title, sections


def parse_text(text: str, fallback_title: str) -> tuple[str, list[Section]]:
    body = text.strip()
    return fallback_title, [Section("", body)] if body else []


class _HtmlToSections(HTMLParser):
    _SKIP = {"script", "style", "nav", "noscript", "template", "svg"}
    _BLOCK = {"p", "div", "li", "tr", "br", "pre", "blockquote", "section", "article", "td", "th", "dd", "dt"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.sections: list[Section] = []
        self._path: list[str] = []
        self._buf: list[str] = []
        self._skip = 0
        self._in_title = False
        self._heading_level = 0
        self._heading_text: list[str] = []
        self._seen_h1 = False

    def _flush(self):
        body = re.sub(r"[ \t]+", " ", "".join(self._buf))
        body = re.sub(r"\n\s*\n+", "\n\n", body).strip()
        if body:
            self.sections.append(Section(_join(self._path), body))
        self._buf = []

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self._heading_level = int(tag[1])
            self._heading_text = []
        elif tag in self._BLOCK:
            self._buf.append("\n")

    def handle_endtag(self, tag):
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif re.fullmatch(r"h[1-6]", tag) and self._heading_level:
            heading = " ".join("".join(self._heading_text).split())
            level = self._heading_level
            self._heading_level = 0
            if level == 1 and not self._seen_h1:
                # The first h1 is the page's own title (as <title> usually is): not a section.
                self._seen_h1 = True
                self.title = self.title or heading
                self._path = []
                return
            self._path = self._path[: level - 1] + [""] * max(0, level - 1 - len(self._path)) + [heading]
        elif tag in self._BLOCK:
            self._buf.append("\n")

    def handle_data(self, data):
        if self._skip:
            return
        if self._in_title:
            self.title = self.title or data.strip()
        elif self._heading_level:
            self._heading_text.append(data)
        else:
            self._buf.append(data)


def parse_html(text: str, fallback_title: str) -> tuple[str, list[Section]]:
    parser = _HtmlToSections()
    parser.feed(text)
    parser.close()
    parser._flush()
    return parser.title or fallback_title, parser.sections


def parse_pdf(path: Path, fallback_title: str) -> tuple[str, list[Section]]:
    from pypdf import PdfReader   # here, not at the top: 0.11 s that only a PDF needs (every process imports this)

    reader = PdfReader(str(path))
    title = (reader.metadata.title if reader.metadata and reader.metadata.title else None) or fallback_title
    sections = []
    for i, page in enumerate(reader.pages, 1):
        body = (page.extract_text() or "").strip()
        if body:
            sections.append(Section(f"page {i}", body))
    return title, sections


TEXT_PARSERS = {
    ".md": parse_markdown, ".markdown": parse_markdown,
    ".txt": parse_text, ".text": parse_text,
    ".html": parse_html, ".htm": parse_html,
}
SUPPORTED = set(TEXT_PARSERS) | {".pdf"}


def parse_file(path: Path) -> tuple[str, list[Section]]:
    fallback = path.stem.replace("-", " ").replace("_", " ").strip().capitalize() or path.name
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return parse_pdf(path, fallback)
    text = path.read_text(encoding="utf-8", errors="replace")
    return TEXT_PARSERS[suffix](text, fallback)
