"""connectors.sources.parsing: file -> title + heading-scoped sections."""

import io

import pytest

from connectors.sources.base import Section
from connectors.sources.parsing import (
    SUPPORTED, Unsupported, parse_bytes, parse_file, parse_html, parse_markdown, parse_text,
)


def headings(sections):
    return [s.heading for s in sections]


# --- markdown titles -------------------------------------------------------------

def test_title_from_front_matter_wins_over_h1():
    title, sections = parse_markdown("---\ntitle: Leave policy\nowner: hr\n---\n# Heading one\nBody.\n", "fb")
    assert title == "Leave policy"
    assert sections == [Section("Heading one", "Body.")]
    assert "owner" not in " ".join(s.text for s in sections)   # front matter is not content


def test_title_from_first_h1():
    title, sections = parse_markdown("# VPN setup\n\nInstall the client.\n", "fb")
    assert title == "VPN setup"
    assert sections == [Section("", "Install the client.")]


def test_fallback_title_without_front_matter_title_or_h1():
    title, sections = parse_markdown("## Only a sub heading\ntext\n", "Fallback")
    assert title == "Fallback"
    assert sections == [Section("Only a sub heading", "text")]


def test_front_matter_without_title_uses_h1():
    title, _ = parse_markdown("---\nowner: hr\n---\n# From H1\ntext\n", "fb")
    assert title == "From H1"


def test_invalid_front_matter_is_ignored_not_fatal():
    title, sections = parse_markdown("---\n: : [bad\n---\n# T\nbody\n", "fb")
    assert title == "T"
    assert sections == [Section("", "body")]


def test_h1_after_body_text_is_a_heading_not_the_title():
    title, sections = parse_markdown("Intro text.\n\n# Later\nmore\n", "fb")
    assert title == "fb"
    assert sections == [Section("", "Intro text."), Section("Later", "more")]


def test_empty_markdown():
    assert parse_markdown("", "fb") == ("fb", [])
    assert parse_markdown("# Only title\n", "fb") == ("Only title", [])


# --- markdown heading paths -------------------------------------------------------------

def test_nested_heading_paths():
    md = "# Title\n\nintro\n\n## A\na text\n\n### B\nb text\n\n## C\nc text\n\n#### D\nd text\n"
    title, sections = parse_markdown(md, "fb")
    assert title == "Title"
    assert sections == [
        Section("", "intro"),
        Section("A", "a text"),
        Section("A › B", "b text"),
        Section("C", "c text"),
        Section("C › D", "d text"),   # skipped level leaves no empty element
    ]


def test_second_h1_starts_a_new_path():
    _, sections = parse_markdown("# T\n## A\nx\n# U\n## V\ny\n", "fb")
    assert headings(sections) == ["A", "U › V"]


def test_heading_needs_space_and_closing_hashes_are_dropped():
    _, sections = parse_markdown("# T\n## Closed ##\nx\n#hashtag is text\n", "fb")
    assert sections == [Section("Closed", "x\n#hashtag is text")]


def test_empty_sections_are_dropped():
    _, sections = parse_markdown("# T\n## Empty\n\n## Full\ntext\n", "fb")
    assert sections == [Section("Full", "text")]


def test_heading_ending_in_hash_character_is_kept():
    _, sections = parse_markdown("# T\n## Using C#\ntext\n", "fb")
    assert headings(sections) == ["Using C#"]


# --- fenced code ------------------------------------------------------------------

@pytest.mark.parametrize("fence", ["```", "~~~", "```bash"])
def test_hash_lines_inside_fenced_code_are_not_headings(fence):
    md = f"# T\n## Setup\nRun:\n{fence}\n# install deps\npip install x\n{fence[:3]}\nafter\n"
    _, sections = parse_markdown(md, "fb")
    assert len(sections) == 1
    assert sections[0].heading == "Setup"
    assert "# install deps" in sections[0].text
    assert sections[0].text.endswith("after")


def test_heading_after_closed_fence_is_a_heading_again():
    _, sections = parse_markdown("# T\n```\n# c\n```\n## Next\nx\n", "fb")
    assert headings(sections) == ["", "Next"]


# --- links -------------------------------------------------------------------------

def test_markdown_links_reduced_to_text():
    _, sections = parse_markdown(
        "See [the runbook](https://wiki/x) and ![diagram](img.png) or [empty]().\n", "fb")
    assert sections[0].text == "See the runbook and diagram or empty."


# --- HTML ------------------------------------------------------------------------------

HTML = """<!doctype html>
<html><head><title>Expense policy</title>
<style>body { color: red }</style>
<script>var secret = "do not index";</script>
</head><body>
<nav><a href="/">Home</a> menu junk</nav>
<h1>Expenses</h1>
<p>Submit receipts &amp; forms within 30 days.</p>
<h2>Travel</h2>
<p>Book   trains.</p><p>Second para.</p>
<h3>Hotels</h3>
<ul><li>Max 150</li><li>Breakfast included</li></ul>
<noscript>enable js</noscript>
</body></html>"""


def test_html_title_tag():
    title, _ = parse_html(HTML, "fb")
    assert title == "Expense policy"


def test_html_skips_script_style_nav_noscript():
    _, sections = parse_html(HTML, "fb")
    text = " ".join(s.text for s in sections)
    for junk in ("color: red", "do not index", "menu junk", "Home", "enable js"):
        assert junk not in text


def test_html_heading_paths_and_text():
    # The first <h1> is the page's title (like a Markdown H1), so it is not a heading level.
    _, sections = parse_html(HTML, "fb")
    by_heading = {s.heading: s.text for s in sections}
    assert by_heading[""] == "Submit receipts & forms within 30 days."
    assert by_heading["Travel"] == "Book trains.\n\nSecond para."
    assert "Max 150" in by_heading["Travel › Hotels"]
    assert "Breakfast included" in by_heading["Travel › Hotels"]
    assert list(by_heading) == ["", "Travel", "Travel › Hotels"]


def test_html_second_h1_is_a_heading():
    title, sections = parse_html("<title>T</title><h1>Page</h1><p>a</p><h1>Part two</h1>"
                                 "<h2>Sub</h2><p>b</p>", "fb")
    assert title == "T"
    assert sections == [Section("", "a"), Section("Part two › Sub", "b")]


def test_html_h1_is_title_without_title_tag():
    title, sections = parse_html("<h1>Main</h1><p>x</p><h2>Sub</h2><p>y</p>", "fb")
    assert title == "Main"
    assert sections == [Section("", "x"), Section("Sub", "y")]


def test_html_fallback_title():
    title, sections = parse_html("<p>just text</p>", "Fallback")
    assert title == "Fallback"
    assert sections == [Section("", "just text")]


# --- text and files --------------------------------------------------------------------------

def test_text_file_is_one_section():
    assert parse_text("  line one\n\nline two \n", "T") == ("T", [Section("", "line one\n\nline two")])
    assert parse_text(" \n\t", "T") == ("T", [])


def test_parse_file_dispatches_by_suffix_and_builds_fallback_title(tmp_path):
    md = tmp_path / "vpn-setup_guide.MD"
    md.write_text("## Steps\n1. connect\n")
    title, sections = parse_file(md)
    assert title == "Vpn setup guide"
    assert sections == [Section("Steps", "1. connect")]

    txt = tmp_path / "notes.txt"
    txt.write_text("# not a heading in text\n")
    assert parse_file(txt) == ("Notes", [Section("", "# not a heading in text")])

    html = tmp_path / "page.htm"
    html.write_text("<title>Page</title><p>hi</p>")
    assert parse_file(html) == ("Page", [Section("", "hi")])


def test_supported_suffixes():
    assert {".md", ".markdown", ".txt", ".html", ".htm", ".pdf", ".docx", ".pptx", ".xlsx"} <= SUPPORTED
    assert not {".zip", ".doc", ".exe", ""} & SUPPORTED
    with pytest.raises(Unsupported, match=r"unsupported file type \.zip"):
        parse_bytes("tools.zip", b"PK")


# --- Office files (built here with the same libraries) ---------------------------------------


def test_word_headings_become_sections_and_tables_are_kept():
    import docx

    document = docx.Document()
    document.core_properties.title = "Runbook"
    document.add_heading("Restarting", level=1)
    document.add_paragraph("Drain the node first.")
    document.add_heading("Checks", level=2)
    document.add_paragraph("Look at the dashboard.")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "service", "billing"
    buf = io.BytesIO()
    document.save(buf)
    title, sections = parse_bytes("runbook.docx", buf.getvalue())
    assert title == "Runbook"
    assert sections[0] == Section("Restarting", "Drain the node first.")
    assert sections[1].heading == "Restarting › Checks"
    assert "Look at the dashboard." in sections[1].text and "service | billing" in sections[1].text


def test_slides_are_sections_titled_by_the_slide():
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Launch plan"
    slide.placeholders[1].text = "Ship in March"
    buf = io.BytesIO()
    deck.save(buf)
    title, sections = parse_bytes("plan-2026.pptx", buf.getvalue())
    assert title == "Plan 2026"          # no title property: from the file name
    assert sections == [Section("Launch plan", "Ship in March")]


def test_spreadsheets_are_one_section_per_sheet():
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Owners"
    sheet.append(["service", "team"])
    sheet.append(["billing", "payments"])
    buf = io.BytesIO()
    book.save(buf)
    title, sections = parse_bytes("owners.xlsx", buf.getvalue())
    assert sections == [Section("Owners", "service | team\nbilling | payments")]
