"""Finding 5 (the in-process part): a small planted file must not cost a worker gigabytes or
minutes. Each bomb of the review is built here, and the parser must refuse it before parsing
or cap what it takes, with memory measured (tracemalloc), never by the clock."""

from __future__ import annotations

import io
import random
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from connectors.sources.parsing import Unsupported, parse_bytes

MB = 1_000_000


def _peak_during(fn):
    """(fn's result or the exception it raised, the peak of Python memory while it ran)."""
    tracemalloc.start()
    try:
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - returned to the test to look at
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _chars(sections) -> int:
    return sum(len(s.heading) + len(s.text) for s in sections)


# --- Markdown front matter ----------------------------------------------------------------


def _alias_bomb(levels: int = 8) -> bytes:
    lines = ['a0: &a0 ["lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return ("---\n" + "\n".join(lines) + f"\ntitle: *a{levels - 1}\n---\n# Onboarding\nWelcome.\n").encode()


def test_a_front_matter_alias_bomb_costs_nothing_and_gives_no_title():
    data = _alias_bomb()
    assert len(data) < 500
    result, peak = _peak_during(lambda: parse_bytes("onboarding.md", data))
    title, sections = result
    assert title == "Onboarding"                  # the heading, not a list of millions of "lol"s
    assert [s.text for s in sections] == ["Welcome."]
    assert peak < 2 * MB


@pytest.mark.parametrize("front_matter", [
    "title: &t Leave policy\nalso: *t",           # aliases: the whole front matter is refused
    "title: [Leave, policy]",                     # not a string
    "title: {name: Leave policy}",
    "title: " + "Leave policy " * 100,            # not short
])
def test_a_front_matter_title_is_taken_only_when_it_is_a_plain_short_string(front_matter):
    title, sections = parse_bytes("leave.md", f"---\n{front_matter}\n---\n# From the heading\nBody.\n".encode())
    assert title == "From the heading"
    assert [s.text for s in sections] == ["Body."]


def test_a_plain_front_matter_title_is_still_taken():
    assert parse_bytes("leave.md", b"---\ntitle: Leave policy\n---\n# H\nBody.\n")[0] == "Leave policy"


# --- Office files: zip bombs -------------------------------------------------------------


def _rezip(data: bytes, replace: dict[str, bytes]) -> bytes:
    """The same Office file with some parts replaced, compressed as hard as deflate can."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for info in src.infolist():
            z.writestr(info.filename, replace.get(info.filename, src.read(info)))
    return out.getvalue()


def _docx(body: bytes) -> bytes:
    import docx

    buf = io.BytesIO()
    docx.Document().save(buf)
    xml = zipfile.ZipFile(buf).read("word/document.xml")
    head = xml.partition(b"<w:body>")[0]
    return _rezip(buf.getvalue(), {"word/document.xml": head + b"<w:body>" + body + b"</w:body></w:document>"})


def _xlsx(sheet_data: bytes) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    book.active["A1"] = "x"
    buf = io.BytesIO()
    book.save(buf)
    xml = zipfile.ZipFile(buf).read("xl/worksheets/sheet1.xml")
    head, _, rest = xml.partition(b"<sheetData>")
    tail = rest.partition(b"</sheetData>")[2]
    return _rezip(buf.getvalue(), {"xl/worksheets/sheet1.xml": head + b"<sheetData>" + sheet_data + b"</sheetData>"
                                   + tail})


def test_a_small_word_file_that_inflates_hugely_is_refused_before_it_is_parsed():
    data = _docx((b"<w:p><w:r><w:t>" + b"a" * 6 * MB + b"</w:t></w:r></w:p>") * 10)   # 60 MB of XML
    assert len(data) < 200_000
    result, peak = _peak_during(lambda: parse_bytes("bomb.docx", data))
    assert isinstance(result, Unsupported), result if isinstance(result, Exception) else "parsed"
    assert "word/document.xml" in str(result) and "inflates" in str(result)
    assert peak < 5 * MB


def test_the_reviews_wide_row_spreadsheet_is_refused_before_it_is_parsed():
    data = _xlsx(b'<row r="1">' + b"<c><v>1</v></c>" * 1_000_000 + b"</row>")
    assert len(data) < 240_000                    # the review's was 238 kB
    result, peak = _peak_during(lambda: parse_bytes("wide.xlsx", data))
    assert isinstance(result, Unsupported), result if isinstance(result, Exception) else "parsed"
    assert "inflates" in str(result)
    assert peak < 5 * MB


def test_a_spreadsheet_row_wider_than_excel_allows_is_refused_with_bounded_memory():
    rng = random.Random(5)            # values that do not compress: the ratio check lets it through
    cells = b"".join(b"<c><v>%d</v></c>" % rng.randrange(10**9) for _ in range(200_000))
    data = _xlsx(b'<row r="1">' + cells + b"</row>")
    result, peak = _peak_during(lambda: parse_bytes("wide.xlsx", data))
    assert isinstance(result, Unsupported), result if isinstance(result, Exception) else "parsed"
    assert "16,384" in str(result)
    assert peak < 10 * MB


def test_the_cells_taken_from_a_row_are_capped():
    cells = b"".join(b'<c t="inlineStr"><is><t>v%d</t></is></c>' % n for n in range(5000))
    _title, sections = parse_bytes("wide.xlsx", _xlsx(b'<row r="1">' + cells + b"</row>"))
    taken = sections[0].text.split(" | ")
    assert taken[0] == "v0" and len(taken) == 1000


# --- the text taken from one document -------------------------------------------------------


def test_the_text_taken_from_one_document_is_capped():
    words = " ".join(f"w{n}" for n in range(600_000))          # about 4.4 million characters
    _title, sections = parse_bytes("big.txt", words.encode())
    assert 1_900_000 < _chars(sections) <= 2_000_000


def test_the_text_taken_from_a_word_file_is_capped():
    import docx

    document = docx.Document()
    rng = random.Random(7)
    for _ in range(3000):
        document.add_paragraph(" ".join(f"{rng.randrange(10**6)}" for _ in range(150)))
    buf = io.BytesIO()
    document.save(buf)
    _title, sections = parse_bytes("big.docx", buf.getvalue())
    assert 1_900_000 < _chars(sections) <= 2_000_000


# --- Word: the cost per paragraph --------------------------------------------------------------


def test_a_long_word_file_parses_within_a_bound_on_cpu_time(tmp_path):
    """~40 s of CPU per MB was python-docx looking up each unstyled paragraph's default style
    among every style (1.2 ms a paragraph). 40,000 short paragraphs (1.4 MB of XML, an
    ordinary compression ratio) must parse in a child limited to 10 s of CPU (it took ~48 s)."""
    rng = random.Random(3)
    body = b"".join(b"<w:p><w:r><w:t>%d</w:t></w:r></w:p>" % rng.randrange(10**6) for _ in range(40_000))
    path = tmp_path / "long.docx"
    path.write_bytes(_docx(body))
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_CPU, (10, 10))
        from connectors.sources.parsing import parse_bytes
        title, sections = parse_bytes("long.docx", open({str(path)!r}, "rb").read())
        print(sum(len(s.text) for s in sections))
    """)
    run = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 0, f"killed by signal {-run.returncode}" if run.returncode < 0 else run.stderr[-500:]
    assert int(run.stdout) > 200_000


def test_chatops_max_document_chars_caps_what_a_source_takes(tmp_path):
    from chatops.settings import Settings
    from connectors.sources.registry import SourceContext, open_sync_source

    (tmp_path / ".acl.yml").write_text('- match: "**"\n  public: true\n')
    (tmp_path / "long.txt").write_text("word " * 10_000)
    settings = Settings.load(CHATOPS_MAX_DOCUMENT_CHARS="5000")
    source = open_sync_source("handbook", {"kind": "filesystem", "path": str(tmp_path)},
                              SourceContext(name="handbook", settings=settings))
    [page] = source.changes("", None)
    document = source.fetch(page.items[0])
    assert 4000 < _chars(document.sections) <= 5000
