"""``POST /sources/graph/notify``: Microsoft Graph's change notifications for synced sources.

* ``?validationToken=...`` (Graph checking the URL when a subscription is made or renewed):
  answered 200, ``text/plain``, with the token as Graph sent it (URL-decoded), at once - only
  for a configured ``?source=`` (else 404) and a token Graph would send: 1 to
  ``MAX_VALIDATION_TOKEN`` printable ASCII characters (else 400), so the endpoint never echoes
  what a stranger chooses;
* a notification batch (``{"value": [...]}``, for ``?source=<name>``): every item's
  ``clientState`` is checked (usecases.notifications); the syncs the good ones ask for are
  queued, and the answer is 202 at once (Graph wants an answer within 3 seconds and treats a
  slow endpoint as failing). Nothing passes the check: 403, nothing queued.

The body is bounded like Slack's (413 above ``max_body_bytes``) and must be a JSON object (400).
Every answer says ``X-Content-Type-Options: nosniff``. Anyone can post here, so every refusal
is counted (``chatops_graph_notify_refused_total`` by reason) but logged once a minute at most.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chatops import metrics
from chatops.throttled_log import ThrottledLog
from usecases.notifications import NOTIFY_PATH, read_notifications

log = logging.getLogger(__name__)

MAX_VALIDATION_TOKEN = 512
_VALIDATION_TOKEN = re.compile(rf"[\x20-\x7e]{{1,{MAX_VALIDATION_TOKEN}}}")
_HEADERS = {"X-Content-Type-Options": "nosniff"}


def graph_notify_route(*, secret: str, sources: frozenset[str], ask: Callable[[str, str], None],
                       max_body_bytes: int = 1_048_576, log_every: float = 60.0) -> Route:
    """``ask(source, mode)`` queues a sync ("changes") or the subscriptions' renewal.
    ``log_every``: seconds between two log lines about refusals."""
    refusals = ThrottledLog(log, "graph notification requests refused (counted in "
                                 "chatops_graph_notify_refused_total; this line at most once a minute)",
                            every=log_every)

    def refuse(status: int, reason: str, detail: str, source: str) -> Response:
        metrics.GRAPH_NOTIFY_REFUSED.labels(reason=reason).inc()
        refusals.note(reason=reason, source=source[:100], status=status)
        return _text(detail, status)

    async def notify(request: Request) -> Response:
        source = request.query_params.get("source", "")
        token = request.query_params.get("validationToken")
        if token is not None:
            if source not in sources:
                return refuse(404, "unknown_source", "no such source", source)
            if not _VALIDATION_TOKEN.fullmatch(token):
                return refuse(400, "bad_validation_token", "not a Graph validation token", source)
            return _text(token, 200)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_body_bytes:
            return refuse(413, "too_large", "body too large", source)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body_bytes:
                return refuse(413, "too_large", "body too large", source)
        if source not in sources:
            return refuse(404, "unknown_source", "no such source", source)
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return refuse(400, "malformed", "body is not JSON", source)
        if not isinstance(payload, dict):
            return refuse(400, "malformed", "body is not a JSON object", source)
        asked, refused = read_notifications(payload, source, secret)
        if refused:
            metrics.GRAPH_NOTIFICATIONS.labels(outcome="refused").inc(refused)
        if not asked:
            return refuse(403, "bad_client_state", "no notification could be verified", source)
        if refused:   # some items forged among good ones: the good ones count, the rest are noted
            refusals.note(reason="bad_client_state", source=source, status=202, items=refused)
        for a in sorted(asked, key=lambda a: a.mode):
            ask(a.source, a.mode)
            metrics.GRAPH_NOTIFICATIONS.labels(outcome=a.mode).inc()
        return Response(status_code=202, headers=_HEADERS)

    return Route(NOTIFY_PATH, notify, methods=["POST"])


def _text(content: str, status: int) -> Response:
    return Response(content=content, status_code=status, media_type="text/plain", headers=_HEADERS)
