"""A file's bytes read as they arrive and cut at the source's size limit.

The size a listing gives is only what the file was then (it may have grown since, or the server
may not say): a Content-Length past the limit is refused before the body is read, and a body is
read in chunks and dropped as soon as it passes the limit, the connection closed. Either way the
file is skipped with a reason that names the setting to raise.
"""

from __future__ import annotations

import logging

import requests

log = logging.getLogger(__name__)

CHUNK = 64 * 1024


class TooLarge(ValueError):
    """The file is larger than the source's ``max_file_mb``."""

    def __init__(self, max_bytes: int):
        super().__init__(f"larger than {max_bytes / 1_000_000:g} MB, the source's max_file_mb: "
                         "raise it in the source's configuration to index this file")


def read_capped(resp: requests.Response, max_bytes: int, what: str) -> bytes:
    """The body of ``resp`` (sent with ``stream=True``), at most ``max_bytes`` of it (decoded, so a
    compressed body counts by what it inflates to). Raises :class:`TooLarge`."""
    try:
        declared = int(resp.headers.get("Content-Length") or -1)
    except ValueError:
        declared = -1
    try:
        if declared > max_bytes:
            raise TooLarge(max_bytes)
        chunks: list[bytes] = []
        size = 0
        for chunk in resp.iter_content(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge(max_bytes)
            chunks.append(chunk)
        return b"".join(chunks)
    except TooLarge:
        log.warning("download cut at the size limit", extra={"file": what, "max_bytes": max_bytes,
                                                             "declared_bytes": declared if declared >= 0 else None})
        raise
    finally:
        resp.close()
