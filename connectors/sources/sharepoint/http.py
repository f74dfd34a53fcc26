"""Graph (and SharePoint REST) requests for one source: throttling honoured for the whole
source, paging, JSON batching, downloads through the pre-authenticated redirect.

Throttling: a 429 or 503 (and other 5xx) makes *every* request of the source wait what
``Retry-After`` says (seconds, possibly fractional; a growing back-off when it is missing),
because throttled calls still count against the tenant. The waits of one window are bounded
(``max_wait``): past the bound the window stops with :class:`Throttled`, which says how long
Graph asked for; the sync records it and the next window resumes from its cursor.

Batches (``POST /$batch``, 20 requests each) cut the HTTP round trips of per-item reads
(permissions, metadata) twenty-fold; a throttled sub-request is sent again after the wait,
the others are kept.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterator

import requests

from connectors.identity.graph import GraphClient, GraphError, graph_error, retry_after
from connectors.sources.base import CursorExpired, SourceUnavailable

log = logging.getLogger(__name__)

BATCH_SIZE = 20          # Graph's limit per $batch
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_ATTEMPTS = 8


class Throttled(SourceUnavailable):
    """The source asked us to wait longer than one window may."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message, transient=True)
        self.retry_after = retry_after


class NotFound(Exception):
    """404: the site, drive or item is not there (or not visible to the app)."""


class SourceHttp:
    def __init__(self, graph: GraphClient, *, max_wait: float = 120.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, timeout: float = 30.0):
        self.graph = graph
        self.max_wait = max_wait
        self._sleep = sleep
        self._clock = clock
        self._timeout = timeout
        self._not_before = 0.0       # no request of this source before this (clock)
        self._waited = 0.0           # seconds waited for throttling in this window
        self.http_calls = 0          # HTTP requests sent (a batch is one)
        self.graph_requests = 0      # requests Graph served (a batch's sub-requests one by one)
        self.throttled = 0           # 429/503 answers seen

    def new_window(self) -> None:
        self._waited = 0.0

    # -- one request ------------------------------------------------------------------------

    def request(self, method: str, url: str, *, headers: dict | None = None, json_body: Any = None,
                scope: str | None = None, allow_redirects: bool | None = None) -> requests.Response:
        """Send, waiting out throttling and retrying server errors (bounded); any other answer
        is returned as it is."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            self._wait_turn()
            try:
                resp = self.graph.send(method, url, json_body=json_body, headers=headers, scope=scope,
                                       allow_redirects=allow_redirects, timeout=self._timeout)
            except GraphError as exc:   # the token: Entra unreachable or refusing the app
                raise SourceUnavailable(str(exc), transient=exc.transient) from None
            except requests.RequestException as exc:
                self._back_off(min(2.0 ** attempt * 0.25, 30.0), f"network error ({type(exc).__name__})")
                continue
            self.http_calls += 1
            self.graph_requests += 1
            if resp.status_code in RETRY_STATUSES:
                self.throttled += resp.status_code in (429, 503)
                self._back_off(retry_after(resp, default=min(2.0 ** attempt * 0.5, 30.0)),
                               f"{resp.status_code} {graph_error(resp)[0] or ''}".strip())
                continue
            return resp
        raise SourceUnavailable(f"{method} {_path(url)} kept failing after {MAX_ATTEMPTS} attempts")

    def get_json(self, url: str, *, headers: dict | None = None, scope: str | None = None) -> dict:
        resp = self.request("GET", url, headers=headers, scope=scope)
        return self._json(resp, url)

    def pages(self, url: str, *, headers: dict | None = None, scope: str | None = None,
              next_keys: tuple[str, ...] = ("@odata.nextLink",)) -> Iterator[dict]:
        """Every ``value`` item, following the next links (SharePoint REST names its own
        ``odata.nextLink``)."""
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
                        self.throttled += status in (429, 503)
                        retry[key] = todo[key]
                        headers = {str(k).lower(): v for k, v in (sub.get("headers") or {}).items()}
                        delays.append(_seconds(headers.get("retry-after"), 2.0 ** attempt * 0.5))
                        continue
                    out[key] = (status, sub.get("body") if isinstance(sub.get("body"), dict) else {})
                for key in part:   # a sub-response Graph left out: ask again
                    if key not in out and key not in retry:
                        retry[key] = todo[key]
            if retry:
                self._back_off(max(delays or [2.0 ** attempt * 0.5]), f"{len(retry)} throttled in a batch")
            todo = retry
        return out

    def download(self, url: str, *, max_bytes: int) -> bytes:
        """A file's bytes: Graph answers ``/content`` with a redirect to a pre-authenticated URL,
        which is fetched without our token (it must never leave for another host)."""
        resp = self.request("GET", url, allow_redirects=False)
        if resp.status_code in (301, 302, 303, 307, 308):
            location = resp.headers.get("Location")
            if not location:
                raise SourceUnavailable(f"GET {_path(url)}: a redirect without a Location")
            resp = self._fetch_redirect(location)
        if resp.status_code == 404:
            raise NotFound(_path(url))
        if resp.status_code >= 300:
            raise _refusal(resp, url)
        data = resp.content
        if len(data) > max_bytes:
            raise ValueError(f"larger than {max_bytes // 1_000_000} MB")
        return data

    def _fetch_redirect(self, location: str) -> requests.Response:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            self._wait_turn()
            try:
                resp = self.graph.http.get(location, timeout=self._timeout, allow_redirects=True)
            except requests.RequestException as exc:
                self._back_off(min(2.0 ** attempt * 0.25, 30.0), f"download: {type(exc).__name__}")
                continue
            self.http_calls += 1
            if resp.status_code in RETRY_STATUSES:
                self.throttled += resp.status_code in (429, 503)
                self._back_off(retry_after(resp, default=2.0 ** attempt * 0.5), f"download {resp.status_code}")
                continue
            return resp
        raise SourceUnavailable("a download kept failing")

    # -- internals --------------------------------------------------------------------------

    def _wait_turn(self) -> None:
        delay = self._not_before - self._clock()
        if delay > 0:
            self._sleep(delay)
        self._not_before = 0.0

    def _back_off(self, delay: float, why: str) -> None:
        """Every request of the source waits ``delay`` seconds; past the window's bound, stop."""
        delay = max(0.0, delay)
        if self._waited + delay > self.max_wait:
            raise Throttled(f"throttled by Microsoft Graph ({why}); asked to wait {delay:.0f} s", retry_after=delay)
        self._waited += delay
        self._not_before = max(self._not_before, self._clock() + delay)
        log.warning("source throttled; waiting", extra={"why": why, "delay_s": round(delay, 3)})

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
    if code is None:   # SharePoint REST: {"odata.error": {"code", "message": {"value"}}} or text
        try:
            err = resp.json().get("odata.error") or resp.json().get("error") or {}
            code = err.get("code")
            message = (err.get("message") or {}).get("value") if isinstance(err.get("message"), dict) else err.get("message")
        except (ValueError, AttributeError):
            message = resp.text[:200] if resp.text else None
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
