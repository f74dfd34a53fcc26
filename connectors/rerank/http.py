"""A rerank endpoint speaking the Cohere/Jina shape (also vLLM's, Infinity's, LiteLLM's):
``POST <CHATOPS_RERANK_URL>`` ``{"model", "query", "documents": [str], "top_n"}`` →
``{"results": [{"index", "relevance_score"}, …]}``, with ``Authorization: Bearer <key>`` when a key is set.

The whole step keeps to one deadline (``CHATOPS_RERANK_TIMEOUT``): a 429 is retried after its
``Retry-After`` and a 5xx after a short pause, at most twice, and only when the wait and another
attempt fit in the time left; anything else raises ``RerankFailed`` at once.
"""

from __future__ import annotations

import email.utils
import logging
import time
from typing import Sequence

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chatops.checks import CheckFailed
from chatops.settings import Settings
from connectors.rerank.base import Ranked, Ranking, RerankFailed
from connectors.rerank.settings import HttpRerankSettings, RerankSettings

log = logging.getLogger(__name__)

MAX_DOCUMENT_CHARS = 4000   # a passage is a chunk (~1,000 chars); a cap keeps one odd chunk from costing more
RETRIES = 2
SERVER_PAUSE = 0.1          # seconds before retrying a 5xx (doubled the second time)
MIN_ATTEMPT = 0.05          # seconds an attempt needs at least: a retry with less time left is not made


class _Result(BaseModel):
    model_config = ConfigDict(extra="ignore")
    index: int = Field(ge=0)
    relevance_score: float


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")
    results: list[_Result]


class HttpReranker:
    name = "http"
    uses_model = False

    @classmethod
    def from_settings(cls, settings: Settings) -> "HttpReranker":
        rerank, http = settings.of(RerankSettings), settings.of(HttpRerankSettings)
        assert http.rerank_url is not None   # the registry checks it first
        key = http.rerank_api_key.get_secret_value() if http.rerank_api_key else None
        return cls(http.rerank_url, model=rerank.rerank_model, api_key=key, timeout=rerank.rerank_timeout,
                   candidates=rerank.rerank_candidates)

    def __init__(self, url: str, *, model: str | None = None, api_key: str | None = None, timeout: float = 3.0,
                 candidates: int = 20) -> None:
        self.url = url
        self.model = model
        self.timeout = timeout
        self.candidates = candidates
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(headers=headers, follow_redirects=False)

    def rerank(self, query: str, documents: Sequence[str]) -> Ranking:
        if not documents:
            return Ranking(())
        body: dict[str, object] = {"query": query, "documents": [d[:MAX_DOCUMENT_CHARS] for d in documents],
                                   "top_n": len(documents)}
        if self.model:
            body = {"model": self.model, **body}
        deadline = time.monotonic() + self.timeout
        for attempt in range(RETRIES + 1):
            left = deadline - time.monotonic()
            try:
                resp = self._client.post(self.url, json=body, timeout=httpx.Timeout(left))
            except httpx.TimeoutException:
                raise RerankFailed(f"no answer from the rerank endpoint within {self.timeout:g} s",
                                   "timeout") from None
            except httpx.HTTPError as exc:
                raise RerankFailed(f"cannot reach the rerank endpoint ({type(exc).__name__})") from None
            if resp.status_code == 200:
                return self._ranking(resp, len(documents))
            wait = self._retry_after(resp, attempt)
            left = deadline - time.monotonic()
            if wait is None or attempt == RETRIES or wait + MIN_ATTEMPT > left:
                more = "" if wait is None or attempt == RETRIES else f"; a retry in {wait:g} s would not fit the timeout"
                raise RerankFailed(f"the rerank endpoint answered {resp.status_code}: {_said(resp)}{more}")
            log.info("rerank endpoint busy; retrying", extra={"status": resp.status_code, "wait_s": wait})
            time.sleep(wait)
        raise AssertionError("unreachable")   # pragma: no cover - the loop returns or raises

    def _retry_after(self, resp: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying this answer, or None: not one to retry."""
        if resp.status_code == 429:
            return _retry_after_seconds(resp.headers.get("retry-after"))
        if resp.status_code >= 500:
            return SERVER_PAUSE * (2 ** attempt)
        return None

    @staticmethod
    def _ranking(resp: httpx.Response, count: int) -> Ranking:
        try:
            reply = _Reply.model_validate_json(resp.content)
        except ValidationError as exc:
            raise RerankFailed(f"the rerank endpoint's reply is not a ranking ({exc.error_count()} errors: "
                               f"{exc.errors()[0]['loc']} {exc.errors()[0]['msg']})", "invalid") from None
        seen: set[int] = set()
        ranked = []
        for r in sorted(reply.results, key=lambda r: -r.relevance_score):
            if r.index >= count or r.index in seen:
                raise RerankFailed(f"the rerank endpoint ranked document {r.index} of {count} "
                                   f"({'twice' if r.index in seen else 'out of range'})", "invalid")
            seen.add(r.index)
            ranked.append(Ranked(r.index, r.relevance_score))
        return Ranking(tuple(ranked))

    def check(self) -> str:
        """``chatops doctor``: the endpoint ranks two documents with this key."""
        try:
            ranking = self.rerank("ping", ["ping", "pong"])
        except RerankFailed as exc:
            raise CheckFailed(f"the rerank endpoint {self.url} failed: {exc}",
                              "check CHATOPS_RERANK_URL (the full URL), CHATOPS_RERANK_API_KEY and "
                              "CHATOPS_RERANK_MODEL, or set CHATOPS_RERANK=none") from None
        return f"{self.url} ranked {len(ranking.ranked)} documents"

    def close(self) -> None:
        self._client.close()


def _retry_after_seconds(value: str | None) -> float:
    """A ``Retry-After`` header: seconds, or an HTTP date; missing or unreadable: one second."""
    if not value:
        return 1.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 1.0
    return max(0.0, when.timestamp() - time.time())


def _said(resp: httpx.Response) -> str:
    """What an error answer says, in one short line (its JSON message, else its text)."""
    try:
        data = resp.json()
    except ValueError:
        return " ".join(resp.text.split())[:200] or resp.reason_phrase
    if isinstance(data, dict):
        for key in ("message", "detail", "error"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("message")
            if value:
                return " ".join(str(value).split())[:200]
    return " ".join(str(data).split())[:200]
