"""Turn a file into a title and heading-scoped sections, for every source kind.

Markdown, text and HTML are parsed here (they are ours to structure: headings become
section paths); PDF with pypdf; Word, PowerPoint and Excel with python-docx, python-pptx and
openpyxl. ``parse_bytes(name, data)`` picks by the file name's extension; anything else is
:class:`Unsupported`.
"""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath

import yaml

from connectors.sources.base import Section

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\(([^)]*)\)")


def join_path(path: list[str]) -> str:
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
            sections.append(Section(join_path(path), _MD_LINK.sub(r"\1", body)))
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


class HtmlSections(HTMLParser):
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
            self.sections.append(Section(join_path(self._path), body))
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
    parser = HtmlSections()
    parser.feed(text)
    parser.close()
    parser._flush()
    return parser.title or fallback_title, parser.sections


class Unsupported(ValueError):
    """Not a kind of file the bot reads."""


def parse_pdf(data: bytes, fallback_title: str) -> tuple[str, list[Section]]:
    from pypdf import PdfReader   # here, not at the top: 0.11 s that only a PDF needs (every process imports this)

    reader = PdfReader(io.BytesIO(data))
    title = (reader.metadata.title if reader.metadata and reader.metadata.title else None) or fallback_title
    sections = []
    for i, page in enumerate(reader.pages, 1):
        body = (page.extract_text() or "").strip()
        if body:
            sections.append(Section(f"page {i}", body))
    return title, sections


def parse_docx(data: bytes, fallback_title: str) -> tuple[str, list[Section]]:
    """Paragraphs under their headings (the "Heading N" and "Title" styles), then tables row by row."""
    import docx   # python-docx: only where Word files are read

    document = docx.Document(io.BytesIO(data))
    title = (document.core_properties.title or "").strip() or None
    sections: list[Section] = []
    path: list[str] = []
    buf: list[str] = []

    def flush():
        body = "\n\n".join(p for p in buf if p).strip()
        if body:
            sections.append(Section(join_path(path), body))
        buf.clear()

    for para in document.paragraphs:
        text = para.text.strip()
        style = (para.style.name if para.style is not None else "") or ""
        level = _heading_level(style)
        if style == "Title" and text:
            title = title or text
        elif level and text:
            flush()
            path = path[: level - 1] + [""] * max(0, level - 1 - len(path)) + [text]
        else:
            buf.append(text)
    for table in document.tables:
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells]
            if any(cells):
                buf.append(" | ".join(cells))
    flush()
    return title or fallback_title, sections


def _heading_level(style: str) -> int:
    match = re.fullmatch(r"Heading (\d)", style)
    return int(match.group(1)) if match else 0


def parse_pptx(data: bytes, fallback_title: str) -> tuple[str, list[Section]]:
    """One section per slide, headed by the slide's title; notes included."""
    from pptx import Presentation   # python-pptx: only where slides are read

    deck = Presentation(io.BytesIO(data))
    title = (deck.core_properties.title or "").strip() or None
    sections: list[Section] = []
    for n, slide in enumerate(deck.slides, 1):
        heading = ""
        if slide.shapes.title is not None and slide.shapes.title.has_text_frame:
            heading = slide.shapes.title.text_frame.text.strip()
        texts = []
        for shape in slide.shapes:
            if shape == slide.shapes.title:
                continue
            if shape.has_text_frame:
                texts.append(shape.text_frame.text.strip())
            if getattr(shape, "has_table", False) and shape.has_table:
                for row in shape.table.rows:
                    texts.append(" | ".join(c.text.strip() for c in row.cells))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            texts.append(slide.notes_slide.notes_text_frame.text.strip())
        body = "\n\n".join(t for t in texts if t)
        if body:
            sections.append(Section(heading or f"slide {n}", body))
    return title or fallback_title, sections


def parse_xlsx(data: bytes, fallback_title: str, *, max_rows: int = 5000) -> tuple[str, list[Section]]:
    """One section per sheet: its rows as "a | b | c" lines (values, not formulas)."""
    from openpyxl import load_workbook   # only where spreadsheets are read

    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        title = (book.properties.title or "").strip() or None
        sections: list[Section] = []
        for sheet in book.worksheets:
            lines = []
            for n, row in enumerate(sheet.iter_rows(values_only=True)):
                if n >= max_rows:
                    break
                cells = ["" if v is None else str(v).strip() for v in row]
                if any(cells):
                    lines.append(" | ".join(cells).strip(" |"))
            if lines:
                sections.append(Section(sheet.title, "\n".join(lines)))
        return title or fallback_title, sections
    finally:
        book.close()


TEXT_PARSERS = {
    ".md": parse_markdown, ".markdown": parse_markdown,
    ".txt": parse_text, ".text": parse_text,
    ".html": parse_html, ".htm": parse_html,
}
BINARY_PARSERS = {".pdf": parse_pdf, ".docx": parse_docx, ".pptx": parse_pptx, ".xlsx": parse_xlsx}
SUPPORTED = set(TEXT_PARSERS) | set(BINARY_PARSERS)


def fallback_title(name: str) -> str:
    stem = PurePosixPath(name).stem
    return stem.replace("-", " ").replace("_", " ").strip().capitalize() or name


def parse_bytes(name: str, data: bytes) -> tuple[str, list[Section]]:
    """A file's title and sections, by its name's extension. Raises :class:`Unsupported`."""
    suffix = PurePosixPath(name).suffix.lower()
    fallback = fallback_title(name)
    if suffix in BINARY_PARSERS:
        return BINARY_PARSERS[suffix](data, fallback)
    if suffix in TEXT_PARSERS:
        return TEXT_PARSERS[suffix](data.decode("utf-8", errors="replace"), fallback)
    raise Unsupported(f"unsupported file type {suffix or '(none)'}")


def parse_file(path: Path) -> tuple[str, list[Section]]:
    return parse_bytes(path.name, Path(path).read_bytes())
