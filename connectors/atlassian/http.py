"""Requests to one Atlassian Cloud site (``https://<site>.atlassian.net``) for one source (opened
from its configuration by ``connectors/sources/atlassian/opening.py``).

Authentication is an API token with the account's email (HTTP Basic), as Atlassian documents
for scripts and services. Throttling is the source framework's (``connectors/http/pacing.py``):
a 429 — Atlassian's points-based and burst limits both answer it, with ``Retry-After`` — or a 5xx
makes every request of the source wait, bounded per window.

Paging: the v2 API pages with an opaque ``cursor`` and gives the next page in ``_links.next``
(and a ``Link`` header); v1 gives ``_links.next`` too (relative to ``_links.base``, the
``/wiki`` context), Jira gives ``nextPageToken`` or ``startAt``/``isLast``. Next links are only
ever followed on the site's own origin: the API token never leaves for another host.
Downloads (Confluence attachments) answer with a redirect to Atlassian's media service, which
is fetched without the token.
"""

from __future__ import annotations

import logging
from typing import Any, Iterator
from urllib.parse import urljoin, urlsplit

import requests

from chatops.errors import SourceUnavailable
from connectors.http.downloads import read_capped
from connectors.http.pacing import Pacer

log = logging.getLogger(__name__)


class NotFound(Exception):
    """404: the space, page or issue is not there (or the account may not see it)."""


class AtlassianHttp:
    def __init__(self, site: str, email: str | None, token: str, *, service: str = "Atlassian",
                 session: requests.Session | None = None, pacer: Pacer | None = None, timeout: float = 30.0):
        """``email`` and an API token (HTTP Basic), or ``email=None`` and an organization API key
        (Bearer: the admin API)."""
        parts = urlsplit(site)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.service = service
        self.session = session or requests.Session()
        self._auth = (email, token) if email is not None else _Bearer(token)
        self.pacer = pacer or Pacer(service)
        self._timeout = timeout

    @property
    def http_calls(self) -> int:
        return self.pacer.calls

    def new_window(self) -> None:
        self.pacer.new_window()

    # -- one request ------------------------------------------------------------------------

    def request(self, method: str, path: str, *, params: Any = None, json_body: Any = None,
                allow_redirects: bool = False, stream: bool = False) -> requests.Response:
        """Send (with the token, to the site's origin only), waiting out throttling (``stream``:
        the answer's body not read yet)."""
        url = self._url(path)
        return self.pacer.call(lambda: self.session.request(
            method, url, params=params, json=json_body, auth=self._auth, headers={"Accept": "application/json"},
            timeout=self._timeout, allow_redirects=allow_redirects, stream=stream), f"{method} {urlsplit(url).path}",
            error_message)

    def get_json(self, path: str, params: Any = None) -> dict:
        resp = self.request("GET", path, params=params)
        return self.json(resp, path)

    def json(self, resp: requests.Response, path: str) -> dict:
        if resp.status_code == 404:
            raise NotFound(urlsplit(path).path)
        if resp.status_code in (401, 403):
            raise SourceUnavailable(f"{self.service} refused the account ({resp.status_code}: "
                                    f"{error_message(resp) or 'no reason given'}): check the email and API "
                                    f"token, and that the account may read {urlsplit(path).path}", transient=False)
        if resp.status_code >= 300:
            raise SourceUnavailable(f"{self.service} answered {resp.status_code} to GET {urlsplit(path).path}: "
                                    f"{error_message(resp) or 'no reason given'}", transient=resp.status_code >= 500)
        try:
            body = resp.json()
        except ValueError:
            raise SourceUnavailable(f"{self.service} answered GET {urlsplit(path).path} with no JSON") from None
        return body if isinstance(body, dict) else {"results": body}

    # -- paging -------------------------------------------------------------------------------

    def pages(self, path: str, params: Any = None, *, key: str = "results") -> Iterator[dict]:
        """Every entry of ``key`` over the pages ``_links.next`` chains (Confluence v1 and v2)."""
        link: str | None = path
        while link:
            body = self.get_json(link, params)
            params = None          # the next link carries the query
            yield from body.get(key) or []
            link = self.next_link(body)

    def pages_by_start(self, path: str, params: dict | list, *, key: str = "values",
                       limit: int = 100) -> Iterator[dict]:
        """Every entry over ``startAt``/``maxResults`` pages (Jira), until ``isLast`` or a short page."""
        base = list(params.items()) if isinstance(params, dict) else list(params)
        start = 0
        while True:
            body = self.get_json(path, base + [("startAt", start), ("maxResults", limit)])
            values = body.get(key) or []
            yield from values
            start += len(values)
            total = body.get("total")
            if body.get("isLast") or not values or (isinstance(total, int) and start >= total):
                return

    def next_link(self, body: dict) -> str | None:
        links = body.get("_links") or {}
        nxt = links.get("next")
        if not nxt:
            return None
        if nxt.startswith("/") and not nxt.startswith("/wiki/") and links.get("base"):
            return links["base"].rstrip("/") + nxt       # v1: relative to the /wiki context
        return nxt

    # -- downloads ----------------------------------------------------------------------------

    def download(self, path: str, *, max_bytes: int) -> bytes:
        """A file's bytes: the site answers with a redirect to the media service, fetched
        without the token. The body is read as it arrives and cut past ``max_bytes``
        (``downloads.TooLarge``)."""
        resp = self.request("GET", path, stream=True)
        hops = 0
        while resp.status_code in (301, 302, 303, 307, 308) and hops < 5:
            hops += 1
            location = resp.headers.get("Location")
            resp.close()
            if not location:
                raise SourceUnavailable(f"GET {urlsplit(path).path}: a redirect without a Location")
            resp = self._fetch_plain(urljoin(resp.url, location))
        if resp.status_code >= 300:
            resp.close()
            if resp.status_code == 404:
                raise NotFound(urlsplit(path).path)
            raise SourceUnavailable(f"download of {urlsplit(path).path}: {resp.status_code}",
                                    transient=resp.status_code >= 500)
        return read_capped(resp, max_bytes, urlsplit(path).path)

    def _fetch_plain(self, url: str) -> requests.Response:
        return self.pacer.call(lambda: self.session.get(url, timeout=self._timeout, allow_redirects=False,
                                                        stream=True), "a download")

    def _url(self, path: str) -> str:
        if path.startswith("/"):
            return self.origin + path
        parts = urlsplit(path)
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            raise SourceUnavailable(f"{self.service} pointed to another host ({parts.netloc}); not followed",
                                    transient=False)
        return path


def error_message(resp: requests.Response) -> str:
    """Atlassian's error text, whichever of its shapes the answer has."""
    try:
        body = resp.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    for key in ("message", "errorMessage"):
        if isinstance(body.get(key), str):
            return body[key][:300]
    errors = body.get("errors") or body.get("errorMessages")
    if isinstance(errors, list) and errors:
        first = errors[0]
        return str(first.get("title") or first.get("detail") or first if isinstance(first, dict) else first)[:300]
    if isinstance(errors, dict) and errors:
        return "; ".join(f"{k}: {v}" for k, v in errors.items())[:300]
    return ""


def page_link_base(body: dict, origin: str) -> str:
    """Where a Confluence answer's relative ``webui`` links start (``_links.base``)."""
    return ((body.get("_links") or {}).get("base") or origin + "/wiki").rstrip("/")


class _Bearer(requests.auth.AuthBase):
    def __init__(self, key: str):
        self._key = key

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self._key}"
        return request
