"""An Office file (.docx, .pptx, .xlsx: a zip archive of XML parts) checked before it is parsed.

python-docx, python-pptx and openpyxl inflate whole parts and build them in memory, so a small
file can stand for gigabytes. From the archive's directory alone, before anything is inflated:
at most ``max_parts`` parts, ``max_inflated`` bytes in all, and no part (of more than 1 MB)
inflating more than ``max_ratio`` times its compressed size. Python's zipfile, which all three
libraries read through, stops a part at the size its directory entry declares, so these sizes
bound what is read.

A spreadsheet is also read through once, as it streams (without building any of it), for a row
with more cells than Excel allows (16,384): openpyxl builds a whole row before it hands any of
it over, so one such row of a modest file takes gigabytes.
"""

from __future__ import annotations

import io
import zipfile

from lxml import etree

from connectors.sources.limits import FileLimits, Refused

EXCEL_COLUMNS = 16_384
_SMALL_PART = 1_000_000
_SHEET_ROW = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}row"


def check_archive(data: bytes, limits: FileLimits) -> zipfile.ZipFile:
    """The archive, once its directory shows nothing that inflates out of bounds; else
    :class:`Refused` naming the part and the limit."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise Refused("not a valid Office file (its zip archive cannot be read)") from None
    parts = archive.infolist()
    if len(parts) > limits.max_parts:
        raise Refused(f"refused: {len(parts):,} parts (at most {limits.max_parts:,})")
    total = sum(p.file_size for p in parts)
    if total > limits.max_inflated:
        raise Refused(f"refused: its parts inflate to {total / 1e6:,.0f} MB "
                      f"(at most {limits.max_inflated / 1e6:,.0f} MB)")
    for part in parts:
        if part.file_size > _SMALL_PART and part.file_size > limits.max_ratio * max(part.compress_size, 1):
            raise Refused(f"refused: {part.filename} inflates {part.file_size // max(part.compress_size, 1):,} "
                          f"times its size (at most {limits.max_ratio}): a zip bomb")
    return archive


class _RowWidths:
    """An lxml parser target: counts the elements in each spreadsheet row, builds nothing."""

    def __init__(self, max_rows: int):
        self.max_rows = max_rows
        self.rows = 0
        self._depth = 0
        self._row_depth = None
        self._cells = 0

    def start(self, tag, attrib):
        self._depth += 1
        if self._row_depth is not None and self._depth == self._row_depth + 1:
            self._cells += 1
            if self._cells > EXCEL_COLUMNS:
                raise _TooWide()
        elif tag == _SHEET_ROW and self._row_depth is None:
            self._row_depth, self._cells = self._depth, 0

    def end(self, tag):
        if self._depth == self._row_depth:
            self._row_depth = None
            self.rows += 1
            if self.rows >= self.max_rows:
                raise _Enough()
        self._depth -= 1

    def close(self):
        return self.rows


class _TooWide(Exception):
    pass


class _Enough(Exception):
    pass


def check_rows(archive: zipfile.ZipFile, limits: FileLimits) -> None:
    """Every part is read (openpyxl reads whatever part the workbook names as a sheet), up to
    ``max_rows`` rows of it; :class:`Refused` at the first row wider than Excel allows. A part
    that is not XML stops at its first bytes."""
    for part in archive.infolist():
        parser = etree.XMLParser(target=_RowWidths(limits.max_rows), resolve_entities=False,
                                 no_network=True, load_dtd=False)
        try:
            with archive.open(part) as stream:
                while chunk := stream.read(1 << 16):
                    parser.feed(chunk)
                parser.close()
        except _TooWide:
            raise Refused(f"refused: a row of {part.filename} has more than {EXCEL_COLUMNS:,} cells "
                          f"(more than Excel allows)") from None
        except (_Enough, etree.XMLSyntaxError, zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError):
            continue   # enough of it read, or not XML, encrypted or damaged: the parser says so itself
