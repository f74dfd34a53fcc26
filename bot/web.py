"""The FastAPI app: ``POST /slack/events`` (events, interactivity, commands), ``GET /metrics``
(Prometheus; a Bearer token when ``CHATOPS_METRICS_TOKEN`` is set), ``GET /healthz``
(Redis and the workers: 503 when questions would not be answered) and ``GET /livez`` (the
process answers).

This process never opens the index; it verifies, de-duplicates and enqueues. Before
Bolt sees a request: the body is bounded (413 above ``max_body_bytes``, refused
before it is read); the signature is checked (401: signature headers not shaped like
Slack's, or not valid for the body); then the body must be what Slack sends, a JSON
object or form data whose ``payload`` is a JSON object, with fields Bolt can read
(400 otherwise). Nothing a client sends is answered 500.
"""

from __future__ import annotations

import json
import logging
import re
import time
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_bolt.request.internals import parse_body
from slack_sdk.signature import SignatureVerifier
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from chatops import metrics

log = logging.getLogger(__name__)

_TIMESTAMP = re.compile(r"^\d{1,12}$")
_SIGNATURE = re.compile(r"^v0=[0-9a-fA-F]{1,128}$")


class _Refused(Exception):
    def __init__(self, status: int, reason: str, detail: str):
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


async def _read_bounded(request: Request, limit: int) -> bytes:
    """The body, refusing (413) as soon as it is known to be over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise _Refused(400, "malformed", "bad Content-Length")
        if int(declared) > limit:
            raise _Refused(413, "too_large", f"body over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Refused(413, "too_large", f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _check_headers(request: Request) -> None:
    timestamp = request.headers.get("x-slack-request-timestamp")
    signature = request.headers.get("x-slack-signature")
    if (timestamp is not None and not _TIMESTAMP.fullmatch(timestamp)) or \
            (signature is not None and not _SIGNATURE.fullmatch(signature)):
        raise _Refused(401, "bad_signature_header", "malformed signature headers")


def _check_utf8(body: bytes) -> None:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused(400, "malformed", "body is not UTF-8") from None


def _check_signature(verifier: SignatureVerifier, request: Request, body: bytes) -> None:
    """Slack's v0 signature over the body, at most five minutes old (Bolt checks it again)."""
    if not verifier.is_valid(body=body, timestamp=request.headers.get("x-slack-request-timestamp"),
                             signature=request.headers.get("x-slack-signature")):
        raise _Refused(401, "bad_signature", "invalid request signature")


MAX_JSON_DEPTH = 64   # Slack's payloads nest a few levels; deeper is refused, whatever the stack allows


def json_depth(value) -> int:
    """How deeply ``value`` nests lists and objects (iteratively: no recursion limit involved)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        node, depth = todo.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth)
            todo.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def _json_object(text: str, what: str) -> None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise _Refused(400, "malformed", f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise _Refused(400, "malformed", f"{what} is not a JSON object")
    if json_depth(value) > MAX_JSON_DEPTH:
        raise _Refused(400, "malformed", f"{what} nests deeper than {MAX_JSON_DEPTH} levels")


def _check_body(content_type: str, body: bytes) -> None:
    """Refuse (400) what Bolt could not parse: it would answer 500.

    Checked twice: as Slack sends it (a JSON object, or form data whose ``payload`` is one), and
    as Bolt will read it (Bolt takes any body starting with ``{`` for JSON, and the last of
    several ``payload`` fields)."""
    text = body.decode("utf-8")
    try:
        as_bolt_reads_it = parse_body(text, content_type or None)
    except (ValueError, RecursionError):
        raise _Refused(400, "malformed", "body is not valid JSON or form data") from None
    if not isinstance(as_bolt_reads_it, dict):
        raise _Refused(400, "malformed", "body is not a JSON object")
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/json":
        _json_object(text, "body")
    elif kind == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=1000)
        except ValueError:
            raise _Refused(400, "malformed", "body is not form data") from None
        for payload in form.get("payload", []):
            _json_object(payload, "payload")
    else:
        raise _Refused(400, "malformed", "unsupported content type")


def create_web_app(bolt_app, *, ready, max_body_bytes: int = 1_048_576, signing_secret: str | None = None,
                   metrics_token: str | None = None,
                   routes: tuple[Route, ...] = (), refresh_metrics=None, can_queue=None) -> FastAPI:
    """``ready()`` returns (ok, detail) for the health check. ``signing_secret``: check Slack's
    signature before anything reads the body's content (Bolt checks it again). ``routes``: more
    endpoints (Graph's change notifications: bot/graph_notify.py). ``refresh_metrics``: sets the
    gauges read on scrape (queue depth) before /metrics answers. ``can_queue()``: whether work can
    be put on the queue now (Redis answers): ``GET /readyz``, for a load balancer's readiness."""
    api = FastAPI(title="chatops", docs_url=None, redoc_url=None, openapi_url=None)
    api.router.routes.extend(routes)
    verifier = SignatureVerifier(signing_secret) if signing_secret else None

    async def slack_events(request: Request) -> Response:
        started = time.perf_counter()
        try:
            return await handle_slack(request)
        finally:
            metrics.ACK_SECONDS.observe(time.perf_counter() - started)

    async def handle_slack(request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        try:
            _check_headers(request)
            body = await _read_bounded(request, max_body_bytes)
            _check_utf8(body)
            if verifier is not None:
                _check_signature(verifier, request, body)
            _check_body(content_type, body)
        except _Refused as refused:
            metrics.SLACK_REQUESTS_REFUSED.labels(reason=refused.reason).inc()
            log.warning("refused a request to /slack/events", extra={"status": refused.status,
                                                                     "why": refused.detail})
            return Response(content=refused.detail, status_code=refused.status, media_type="text/plain")
        try:
            bolt_request = to_bolt_request(request, body)
        except Exception as exc:  # noqa: BLE001 - Bolt could not read its fields (wrong types): not Slack's
            metrics.SLACK_REQUESTS_REFUSED.labels(reason="malformed").inc()
            log.warning("refused a request to /slack/events", extra={"status": 400,
                                                                     "why": f"unreadable payload ({type(exc).__name__})"})
            return Response(content="malformed Slack payload", status_code=400, media_type="text/plain")
        try:
            if content_type.startswith("application/json"):
                # Events: verify, de-duplicate, enqueue — a few milliseconds of local work, cheaper
                # inline than handing over to a thread.
                bolt_response = bolt_app.dispatch(bolt_request)
            else:
                # Interactivity may call Slack (views.open); keep the event loop free for that.
                bolt_response = await run_in_threadpool(bolt_app.dispatch, bolt_request)
        except Exception as exc:  # noqa: BLE001 - Bolt's own reading of a malformed payload failed
            # (listener and middleware errors are answered inside Bolt: bot/errors.py)
            metrics.SLACK_REQUESTS_REFUSED.labels(reason="malformed").inc()
            log.warning("refused a request to /slack/events",
                        extra={"status": 400, "why": f"unusable payload ({type(exc).__name__})"})
            return Response(content="malformed Slack payload", status_code=400, media_type="text/plain")
        return to_starlette_response(bolt_response)

    # A plain Starlette route inside the FastAPI app: Slack's requests need none of FastAPI's
    # parameter parsing, and the acknowledgement path is the one that must stay short.
    api.router.routes.append(Route("/slack/events", slack_events, methods=["POST"]))

    @api.get("/healthz")
    async def healthz() -> Response:
        ok, detail = await run_in_threadpool(ready)
        return Response(content=detail, status_code=200 if ok else 503, media_type="text/plain")

    @api.get("/readyz")
    async def readyz() -> Response:
        try:
            ok = bool(await run_in_threadpool(can_queue)) if can_queue is not None else True
        except Exception as exc:  # noqa: BLE001
            ok = False
            log.warning("not ready: cannot queue work", extra={"error": type(exc).__name__})
        return Response(content="ok" if ok else "cannot queue work (Redis)", status_code=200 if ok else 503,
                        media_type="text/plain")

    @api.get("/livez")
    async def livez() -> Response:
        return Response(content="ok", media_type="text/plain")

    @api.get("/metrics")
    async def prometheus(request: Request) -> Response:
        if not metrics.authorized(metrics_token, request.headers.get("authorization")):
            return Response(content="a Bearer token is required (CHATOPS_METRICS_TOKEN)", status_code=401,
                            media_type="text/plain", headers={"WWW-Authenticate": "Bearer"})
        body, kind = await run_in_threadpool(metrics.exposition, refresh_metrics)
        return Response(content=body, media_type=kind)

    return api
