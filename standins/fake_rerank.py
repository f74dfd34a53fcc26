"""A loopback rerank endpoint, as Cohere, Jina, vLLM and Infinity serve it:
``POST /v1/rerank`` ``{"model"?, "query", "documents": [str], "top_n"?, "return_documents"?}`` →
``{"id", "model", "results": [{"index", "relevance_score", "document"?}], "usage": {"total_tokens"}}``,
results best first.

Scores are deterministic: the share of the query's words (lower-cased, 2+ letters) found in the
document, plus a tiny tie-break on the document's index so equal overlaps keep their order.

``api_key`` (None: any): other requests get 401 with an error body. A body that is not JSON is
400; one of the wrong shape 422 (FastAPI's ``detail`` list, as vLLM and Jina answer). ``script(*steps)``
scripts the next answers, one per request: a status (``429`` with ``Retry-After: retry_after``,
``500``, …), ``(status, headers)``, ``(status, headers, body)``, ``"hang"`` (no answer for
``hang_seconds``) or ``("body", obj)`` (a 200 with that body). ``delay``: seconds every answer waits
(slowness). ``requests``: every POST's JSON body, as received (``None`` when it was not JSON).
"""

from __future__ import annotations

import itertools
import json
import re

from standins._loopback import LoopbackServer, Reply, Request

_WORD = re.compile(r"[^\W\d_]{2,}|\d+", re.UNICODE)
MAX_DOCUMENTS = 1000


class FakeRerank(LoopbackServer):
    path = "/v1/rerank"

    def __init__(self, *, api_key: str | None = None, retry_after: str = "1", hang_seconds: float = 30.0,
                 model: str = "fake-reranker") -> None:
        super().__init__()
        self.api_key = api_key
        self.retry_after = retry_after
        self.hang_seconds = hang_seconds
        self.model = model
        self.delay = 0.0
        self.steps: list[object] = []
        self.requests: list[dict | None] = []
        self.headers: list[dict[str, str]] = []
        self._ids = itertools.count(1)

    @property
    def url(self) -> str:
        return self.origin + self.path

    def script(self, *steps: object) -> None:
        with self.lock:
            self.steps.extend(steps)

    def documents_seen(self) -> list[str]:
        """Every document every request carried."""
        with self.lock:
            return [d for body in self.requests if isinstance(body, dict) for d in body.get("documents") or []]

    def handle(self, request: Request) -> Reply:
        if request.path != self.path:
            return Reply(404, {"detail": "Not Found"})
        if request.method != "POST":
            return Reply(405, {"detail": "Method Not Allowed"}, {"Allow": "POST"})
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            body = None
        refused = self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}"
        with self.lock:
            self.requests.append(body)
            self.headers.append(dict(request.headers))
            step = self.steps.pop(0) if self.steps and not refused else None
        if self.delay:
            self.stopping.wait(self.delay)
        if refused:
            return Reply(401, {"message": "invalid api token", "type": "authentication_error"})
        if step == "hang":
            self.stopping.wait(self.hang_seconds)
            return Reply(504, {"message": "too late"})
        if isinstance(step, tuple) and step and step[0] == "body":
            return Reply(200, step[1])
        if step is not None:
            status, headers, *given = step if isinstance(step, tuple) else (step, {})
            if status == 429 and not headers:
                headers = {"Retry-After": self.retry_after}
            default = {"message": "rate limit exceeded" if status == 429 else f"scripted failure {status}"}
            return Reply(status, given[0] if given else default, headers)
        if body is None:
            return Reply(400, {"message": "the body is not valid JSON"})
        problems = _problems(body)
        if problems:
            return Reply(422, {"detail": problems})
        return Reply(200, self._ranked(body))

    def _ranked(self, body: dict) -> dict:
        words = set(_WORD.findall(body["query"].lower()))
        documents = body["documents"]
        scored = []
        for i, doc in enumerate(documents):
            found = words & set(_WORD.findall(doc.lower()))
            scored.append((len(found) / len(words) if words else 0.0) + (len(documents) - i) * 1e-6)
        order = sorted(range(len(documents)), key=lambda i: -scored[i])[:body.get("top_n") or len(documents)]
        results = []
        for i in order:
            result: dict[str, object] = {"index": i, "relevance_score": round(scored[i], 6)}
            if body.get("return_documents"):
                result["document"] = {"text": documents[i]}
            results.append(result)
        tokens = sum(len(d.split()) for d in documents) + len(body["query"].split()) * len(documents)
        return {"id": f"rerank-{next(self._ids)}", "model": body.get("model") or self.model, "results": results,
                "usage": {"total_tokens": tokens}}


def _problems(body: object) -> list[dict]:
    """What is wrong with a request body, as FastAPI lists it (empty: nothing)."""
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}]
    out = []
    if not isinstance(body.get("query"), str) or not body["query"].strip():
        out.append({"loc": ["body", "query"], "msg": "Field required: a non-empty string", "type": "missing"})
    docs = body.get("documents")
    if not isinstance(docs, list) or not docs or not all(isinstance(d, str) for d in docs):
        out.append({"loc": ["body", "documents"], "msg": "Input should be a non-empty list of strings",
                    "type": "list_type"})
    elif len(docs) > MAX_DOCUMENTS:
        out.append({"loc": ["body", "documents"], "msg": f"at most {MAX_DOCUMENTS} documents", "type": "too_long"})
    top_n = body.get("top_n")
    if top_n is not None and (not isinstance(top_n, int) or isinstance(top_n, bool) or top_n < 1):
        out.append({"loc": ["body", "top_n"], "msg": "Input should be a positive integer", "type": "int_type"})
    if "model" in body and not isinstance(body["model"], str):
        out.append({"loc": ["body", "model"], "msg": "Input should be a valid string", "type": "string_type"})
    return out
