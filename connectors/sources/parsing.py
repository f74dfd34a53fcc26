"""Turn a file into a title and heading-scoped sections, for every source kind.

Markdown, text and HTML are parsed here (they are ours to structure: headings become
section paths); PDF with pypdf; Word, PowerPoint and Excel with python-docx, python-pptx and
openpyxl. ``parse_bytes(name, data)`` picks by the file name's extension; anything else is
:class:`Unsupported`. What one file may cost is bounded (``connectors.sources.limits``): the text
taken from it, rows and cells, a title; an Office file's archive is checked before it is parsed
(``connectors.sources.office``); front matter is read without YAML anchors and aliases.
"""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath

import yaml

from connectors.sources.base import Section
from connectors.sources.limits import DEFAULT_LIMITS, FileLimits, Unsupported, capped, plain_title, short_title
from connectors.sources.office import check_archive, check_rows

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\(([^)]*)\)")
_MAX_FRONT_MATTER = 65_536


def join_path(path: list[str]) -> str:
    return " › ".join(p for p in path if p)


class _FrontMatterLoader(yaml.SafeLoader):
    """YAML's safe loader without anchors and aliases: a few hundred bytes of aliases to aliases
    stand for a billion nodes, so front matter that uses any is refused as a whole."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(None, None, "anchors and aliases are not accepted", event.start_mark)
        return super().compose_node(parent, index)


def front_matter_title(block: str) -> str | None:
    """The ``title:`` of a front matter block, when it is a plain short string; else None (no
    title, also for a block that is not YAML, too long, or uses anchors or aliases)."""
    if len(block) > _MAX_FRONT_MATTER:
        return None
    try:
        meta = yaml.load(block, Loader=_FrontMatterLoader)  # a SafeLoader, aliases refused
    except yaml.YAMLError:
        return None
    return plain_title(meta.get("title")) if isinstance(meta, dict) else None


def parse_markdown(text: str, fallback_title: str) -> tuple[str, list[Section]]:
    title = None
    if text.startswith("---\n"):
        end = text.find("\n---", 4)
        if end != -1:
            title = front_matter_title(text[4:end])
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


def parse_pdf(data: bytes, fallback_title: str, limits: FileLimits = DEFAULT_LIMITS) -> tuple[str, list[Section]]:
    from pypdf import PdfReader   # here, not at the top: 0.11 s that only a PDF needs (every process imports this)

    reader = PdfReader(io.BytesIO(data))
    title = (reader.metadata.title if reader.metadata and reader.metadata.title else None) or fallback_title
    sections, taken = [], 0
    for i, page in enumerate(reader.pages, 1):
        if taken >= limits.max_chars:
            break
        body = (page.extract_text() or "").strip()
        if body:
            sections.append(Section(f"page {i}", body))
            taken += len(body)
    return title, sections


def parse_docx(data: bytes, fallback_title: str, limits: FileLimits = DEFAULT_LIMITS) -> tuple[str, list[Section]]:
    """Paragraphs under their headings (the "Heading N" and "Title" styles), then tables row by row."""
    import docx   # python-docx: only where Word files are read

    check_archive(data, limits)
    document = docx.Document(io.BytesIO(data))
    title = (document.core_properties.title or "").strip() or None
    sections: list[Section] = []
    path: list[str] = []
    buf: list[str] = []
    taken = 0
    # A paragraph's style name by its style id, each looked up once: python-docx finds an unstyled
    # paragraph's default style by going through every style (1.2 ms, 40 s per MB of paragraphs).
    styles: dict[str | None, str] = {}

    def flush():
        body = "\n\n".join(p for p in buf if p).strip()
        if body:
            sections.append(Section(join_path(path), body))
        buf.clear()

    for para in document.paragraphs:
        if taken >= limits.max_chars:
            break
        text = para.text.strip()
        taken += len(text)
        style_id = para._p.style
        if style_id not in styles:
            styles[style_id] = (para.style.name if para.style is not None else "") or ""
        style = styles[style_id]
        level = _heading_level(style)
        if style == "Title" and text:
            title = title or text
        elif level and text:
            flush()
            path = path[: level - 1] + [""] * max(0, level - 1 - len(path)) + [text]
        else:
            buf.append(text)
    for table in document.tables:
        for n, row in enumerate(table.rows):
            if n >= limits.max_rows or taken >= limits.max_chars:
                break
            cells = [c.text.strip() for c in row.cells[: limits.max_cells]]
            if any(cells):
                buf.append(" | ".join(cells))
                taken += len(buf[-1])
    flush()
    return title or fallback_title, sections


def _heading_level(style: str) -> int:
    match = re.fullmatch(r"Heading (\d)", style)
    return int(match.group(1)) if match else 0


def parse_pptx(data: bytes, fallback_title: str, limits: FileLimits = DEFAULT_LIMITS) -> tuple[str, list[Section]]:
    """One section per slide, headed by the slide's title; notes included."""
    from pptx import Presentation   # python-pptx: only where slides are read

    check_archive(data, limits)
    deck = Presentation(io.BytesIO(data))
    title = (deck.core_properties.title or "").strip() or None
    sections: list[Section] = []
    taken = 0
    for n, slide in enumerate(deck.slides, 1):
        if taken >= limits.max_chars:
            break
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
                for row in list(shape.table.rows)[: limits.max_rows]:
                    texts.append(" | ".join(c.text.strip() for c in list(row.cells)[: limits.max_cells]))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            texts.append(slide.notes_slide.notes_text_frame.text.strip())
        body = "\n\n".join(t for t in texts if t)
        if body:
            sections.append(Section(heading or f"slide {n}", body))
            taken += len(body)
    return title or fallback_title, sections


def parse_xlsx(data: bytes, fallback_title: str, limits: FileLimits = DEFAULT_LIMITS) -> tuple[str, list[Section]]:
    """One section per sheet: its first ``max_rows`` rows as "a | b | c" lines (values, not
    formulas; the first ``max_cells`` cells of each). Rows wider than Excel allows are refused
    before openpyxl reads them (``connectors.sources.office.check_rows``)."""
    from openpyxl import load_workbook   # only where spreadsheets are read

    check_rows(check_archive(data, limits), limits)
    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        title = (book.properties.title or "").strip() or None
        sections: list[Section] = []
        taken = 0
        for sheet in book.worksheets:
            lines = []
            # max_col: also what a row is padded to (a sheet may claim 16,384 columns)
            for row in sheet.iter_rows(max_row=limits.max_rows, max_col=limits.max_cells, values_only=True):
                if taken >= limits.max_chars:
                    break
                cells = ["" if v is None else str(v).strip() for v in row]
                if any(cells):
                    lines.append(" | ".join(cells).strip(" |"))
                    taken += len(lines[-1])
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


def parse_bytes(name: str, data: bytes, limits: FileLimits = DEFAULT_LIMITS) -> tuple[str, list[Section]]:
    """A file's title and sections, by its name's extension, within ``limits``. Raises
    :class:`Unsupported` (``limits.Refused`` for an Office file that would inflate past them)."""
    suffix = PurePosixPath(name).suffix.lower()
    fallback = fallback_title(name)
    if suffix in BINARY_PARSERS:
        title, sections = BINARY_PARSERS[suffix](data, fallback, limits)
    elif suffix in TEXT_PARSERS:
        title, sections = TEXT_PARSERS[suffix](data.decode("utf-8", errors="replace"), fallback)
    else:
        raise Unsupported(f"unsupported file type {suffix or '(none)'}")
    return short_title(title) or fallback, capped(sections, limits.max_chars)


def parse_file(path: Path) -> tuple[str, list[Section]]:
    return parse_bytes(path.name, Path(path).read_bytes())
