"""A download is cut at the source's size limit as it arrives: a file that grew after it was
listed (or a server that lies about its size) costs at most the limit, never its whole body.

The stand-ins send such a body as it is read, with its Content-Length or chunked, and count
what went out; the kernel's socket buffers hold a few megabytes more than the client took."""

from __future__ import annotations

import pytest

from tests.sources.test_confluence_sync import build as build_space
from tests.sources.test_confluence_sync import site  # noqa: F401 - the fixture
from tests.sources.test_sharepoint_sync import build as build_library

MB = 1_000_000
GROWN = 64 * MB          # what the grown file would send in all
READ_AT_MOST = 20 * MB   # the 1 MB limit, plus what socket buffers may have taken in flight

FRAMINGS = pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])


@FRAMINGS
def test_a_sharepoint_download_past_the_limit_is_cut_not_read_whole(tenant, chunked):
    t = build_library(tenant)
    grown = tenant.sp.add_file(t["drive"], "grown.md", "# Grown\n\nSmall when it was listed.")
    grown.grown_by, grown.chunked = GROWN, chunked
    report = tenant.sync(tenant.source(max_file_mb=1))
    assert report.done and report.error is None, report.summary()
    assert tenant.sp.download_bytes_sent < READ_AT_MOST
    reason = dict(report.skipped)["grown.md"]
    assert reason.startswith("larger than 1 MB") and "max_file_mb" in reason
    assert tenant.visible_to(tenant.person("ana@contoso.com")) == {"handbook.md"}   # the rest is indexed


@FRAMINGS
def test_a_confluence_attachment_past_the_limit_is_cut_not_read_whole(site, chunked):  # noqa: F811
    ids = build_space(site)
    att = site.cf.attachments[site.cf.add_attachment(ids["runbook"], "grown.md", b"# Grown\n\nSmall when listed.",
                                                     "text/markdown")]
    att.grown_by, att.chunked = GROWN, chunked
    report = site.sync(source=site.source(max_file_mb=1))
    assert report.done, report.summary()
    assert site.cf.download_bytes_sent < READ_AT_MOST
    reason = dict(report.skipped)["grown.md"]
    assert reason.startswith("larger than 1 MB") and "max_file_mb" in reason
    assert "Runbook" in site.visible_to("ana@contoso.com")
