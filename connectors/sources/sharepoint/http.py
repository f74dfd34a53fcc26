"""Graph (and SharePoint REST) requests for one SharePoint source, on the shared clients of
``connectors/microsoft/``: throttling honoured for the whole
source, paging, JSON batching, downloads through the pre-authenticated redirect.

Throttling (``connectors/http/pacing.py``, shared by every source): a 429 or 503 (and other
5xx) makes *every* request of the source wait what ``Retry-After`` says (a growing back-off when
it is missing), because throttled calls still count against the tenant; past the window's bound
the window stops with ``Throttled`` and the next one resumes from its cursor.

Batches (``POST /$batch``, 20 requests each) cut the HTTP round trips of per-item reads
(permissions, metadata) twenty-fold; a throttled sub-request is sent again after the wait,
the others are kept.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterator

import requests

from connectors.microsoft.graph import GraphClient, GraphError, graph_error, origin_of
from connectors.microsoft.sharepoint_rest import rest_error
from connectors.sources.base import CursorExpired, SourceUnavailable
from connectors.http.downloads import read_capped
from connectors.http.pacing import MAX_ATTEMPTS, RETRY_STATUSES, Pacer

log = logging.getLogger(__name__)

BATCH_SIZE = 20          # Graph's limit per $batch


class NotFound(Exception):
    """404: the site, drive or item is not there (or not visible to the app)."""


class SourceHttp:
    def __init__(self, graph: GraphClient, *, max_wait: float = 120.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, timeout: float = 30.0):
        self.graph = graph
        self.pacer = Pacer("Microsoft Graph", max_wait=max_wait, sleep=sleep, clock=clock)
        self._timeout = timeout
        self.graph_requests = 0      # requests Graph served (a batch's sub-requests one by one)

    @property
    def http_calls(self) -> int:
        """HTTP requests answered (a batch is one; downloads count)."""
        return self.pacer.calls

    @property
    def throttled(self) -> int:
        return self.pacer.throttled

    def new_window(self) -> None:
        self.pacer.new_window()

    # -- one request ------------------------------------------------------------------------

    def request(self, method: str, url: str, *, headers: dict | None = None, json_body: Any = None,
                scope: str | None = None, allow_redirects: bool | None = None,
                stream: bool = False) -> requests.Response:
        """Send, waiting out throttling and retrying server errors (bounded); any other answer
        is returned as it is (``stream``: its body not read yet)."""
        def send() -> requests.Response:
            try:
                return self.graph.send(method, url, json_body=json_body, headers=headers, scope=scope,
                                       allow_redirects=allow_redirects, timeout=self._timeout, stream=stream)
            except GraphError as exc:   # the token: Entra unreachable or refusing the app
                raise SourceUnavailable(str(exc), transient=exc.transient) from None

        before = self.pacer.calls
        try:
            return self.pacer.call(send, f"{method} {_path(url)}", lambda resp: graph_error(resp)[0] or "")
        finally:
            self.graph_requests += self.pacer.calls - before

    def get_json(self, url: str, *, headers: dict | None = None, scope: str | None = None) -> dict:
        resp = self.request("GET", url, headers=headers, scope=scope)
        return self._json(resp, url)

    def link(self, url: str | None, *, scope: str | None = None) -> str | None:
        """A next or delta link Graph handed back, checked before anyone keeps it (a cursor):
        on Graph's origin, or ``scope``'s resource's (``GraphClient.url``); else
        ``SourceUnavailable``, not retried."""
        if not url:
            return None
        try:
            return self.graph.url(str(url), origin=origin_of(scope) if scope else None)
        except GraphError as exc:
            raise SourceUnavailable(str(exc), transient=False) from None

    def pages(self, url: str, *, headers: dict | None = None, scope: str | None = None,
              next_keys: tuple[str, ...] = ("@odata.nextLink",)) -> Iterator[dict]:
        """Every ``value`` item, following the next links (SharePoint REST names its own
        ``odata.nextLink``) on the origin of the token's resource only: Graph's, or the site's
        for SharePoint REST (``scope``)."""
        link: str | None = url
        while link:
            page = self.get_json(link, headers=headers, scope=scope)
            yield from page.get("value") or (page.get("d") or {}).get("results") or []
            link = next((page[k] for k in next_keys if page.get(k)), None)

    # -- many requests ------------------------------------------------------------------------

    def batch(self, urls: dict[str, str]) -> dict[str, tuple[int, dict]]:
        """GET each of ``urls`` ({key: path relative to the Graph URL}) through ``$batch``;
        {key: (status, body)}. Throttled sub-requests are sent again after the wait."""
        out: dict[str, tuple[int, dict]] = {}
        todo = dict(urls)
        attempt = 0
        while todo:
            attempt += 1
            if attempt > MAX_ATTEMPTS:
                raise SourceUnavailable(f"a batch of {len(todo)} request(s) kept failing")
            keys = list(todo)
            retry: dict[str, str] = {}
            delays: list[float] = []
            for start in range(0, len(keys), BATCH_SIZE):
                part = keys[start:start + BATCH_SIZE]
                body = {"requests": [{"id": str(n), "method": "GET", "url": "/" + todo[k].lstrip("/")}
                                     for n, k in enumerate(part)]}
                resp = self.request("POST", "/$batch", json_body=body)
                answer = self._json(resp, "/$batch")
                self.graph_requests += len(part) - 1
                for sub in answer.get("responses") or []:
                    try:
                        key = part[int(sub.get("id"))]
                    except (TypeError, ValueError, IndexError):
                        continue
                    status = int(sub.get("status") or 0)
                    if status in RETRY_STATUSES or status == 424:
                        self.pacer.throttled += status in (429, 503)
                        retry[key] = todo[key]
                        headers = {str(k).lower(): v for k, v in (sub.get("headers") or {}).items()}
                        delays.append(_seconds(headers.get("retry-after"), 2.0 ** attempt * 0.5))
                        continue
                    out[key] = (status, sub.get("body") if isinstance(sub.get("body"), dict) else {})
                for key in part:   # a sub-response Graph left out: ask again
                    if key not in out and key not in retry:
                        retry[key] = todo[key]
            if retry:
                self.pacer.back_off(max(delays or [2.0 ** attempt * 0.5]), f"{len(retry)} throttled in a batch")
            todo = retry
        return out

    def download(self, url: str, *, max_bytes: int) -> bytes:
        """A file's bytes: Graph answers ``/content`` with a redirect to a pre-authenticated URL,
        which is fetched without our token (it must never leave for another host). The body is
        read as it arrives and cut past ``max_bytes`` (``downloads.TooLarge``)."""
        resp = self.request("GET", url, allow_redirects=False, stream=True)
        if resp.status_code in (301, 302, 303, 307, 308):
            location = resp.headers.get("Location")
            resp.close()
            if not location:
                raise SourceUnavailable(f"GET {_path(url)}: a redirect without a Location")
            resp = self._fetch_redirect(location)
        if resp.status_code == 404:
            resp.close()
            raise NotFound(_path(url))
        if resp.status_code >= 300:
            raise _refusal(resp, url)
        return read_capped(resp, max_bytes, _path(url))

    def _fetch_redirect(self, location: str) -> requests.Response:
        return self.pacer.call(lambda: self.graph.http.get(location, timeout=self._timeout, allow_redirects=True,
                                                           stream=True), "a download")

    # -- internals --------------------------------------------------------------------------

    def _json(self, resp: requests.Response, url: str) -> dict:
        if resp.status_code == 404:
            raise NotFound(_path(url))
        if resp.status_code == 410:
            raise CursorExpired(graph_error(resp)[0] or "gone")
        if resp.status_code >= 300:
            raise _refusal(resp, url)
        try:
            return resp.json() if resp.content else {}
        except ValueError:
            raise SourceUnavailable(f"GET {_path(url)}: the answer is not JSON") from None


def _refusal(resp: requests.Response, url: str) -> SourceUnavailable:
    code, message = graph_error(resp)
    if code is None:   # SharePoint REST's own error body, or text
        code, message = rest_error(resp)
    hint = ""
    if resp.status_code in (401, 403):
        hint = " (check the Entra app's permissions: docs/sources.md)"
    detail = f": {message}" if message else ""
    return SourceUnavailable(f"{resp.request.method if resp.request else 'GET'} {_path(url)} answered "
                             f"{resp.status_code} {code or ''}{detail}{hint}".replace("  ", " "),
                             transient=False)


def _path(url: str) -> str:
    """A URL fit for logs: no query string (download URLs carry credentials there)."""
    return url.split("?", 1)[0]


def _seconds(value: Any, default: float) -> float:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return default
