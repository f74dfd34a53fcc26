"""Files that cost their parser far more than their size, built in the test (no fixtures on disk)."""

from __future__ import annotations

import io
import zlib


def pdf(content: bytes, *, pages: int = 1) -> bytes:
    """A PDF whose ``pages`` pages all draw the one (compressed) content stream ``content``."""
    stream = zlib.compress(content, 9)
    kids = " ".join(f"{4 + n} 0 R" for n in range(pages))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids.encode(), pages),
               b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(stream), stream)]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R "
                b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (4 + pages)] * pages
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.writelines(b"%010d 00000 n \n" % offset for offset in offsets)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def slow_pdf(pages: int = 4) -> bytes:
    """A 2 kB PDF that costs pypdf about a second of CPU per page (100,000 text operators, drawn
    on every page): what a planted file can cost a worker whatever its parser's own limits."""
    return pdf(b"BT /F1 12 Tf 72 712 Td " + b"(x) Tj " * 100_000 + b"ET", pages=pages)


def text_pdf(text: str) -> bytes:
    return pdf(b"BT /F1 12 Tf 72 712 Td (%s) Tj ET" % text.encode())
