"""``POST /sources/graph/notify``: Microsoft Graph's change notifications for synced sources.

* ``?validationToken=...`` (Graph checking the URL when a subscription is made or renewed):
  answered 200, ``text/plain``, with the token as Graph sent it (URL-decoded), at once;
* a notification batch (``{"value": [...]}``, for ``?source=<name>``): every item's
  ``clientState`` is checked (usecases.notifications); the syncs the good ones ask for are
  queued, and the answer is 202 at once (Graph wants an answer within 3 seconds and treats a
  slow endpoint as failing). Nothing passes the check: 403, nothing queued.

The body is bounded like Slack's (413 above ``max_body_bytes``) and must be a JSON object (400).
"""

from __future__ import annotations

import json
import logging
from typing import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chatops import metrics
from usecases.notifications import NOTIFY_PATH, read_notifications

log = logging.getLogger(__name__)


def graph_notify_route(*, secret: str, sources: frozenset[str], ask: Callable[[str, str], None],
                       max_body_bytes: int = 1_048_576) -> Route:
    """``ask(source, mode)`` queues a sync ("changes") or the subscriptions' renewal."""

    async def notify(request: Request) -> Response:
        token = request.query_params.get("validationToken")
        if token is not None:
            return Response(content=token, status_code=200, media_type="text/plain")
        source = request.query_params.get("source", "")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_body_bytes:
            return _refuse(413, "too_large", "body too large")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body_bytes:
                return _refuse(413, "too_large", "body too large")
        if source not in sources:
            return _refuse(404, "unknown_source", "no such source")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return _refuse(400, "malformed", "body is not JSON")
        if not isinstance(payload, dict):
            return _refuse(400, "malformed", "body is not a JSON object")
        asked, refused = read_notifications(payload, source, secret)
        if refused:
            metrics.GRAPH_NOTIFICATIONS.labels(outcome="refused").inc(refused)
            log.warning("graph notifications refused (clientState)", extra={"source": source, "refused": refused})
        if not asked:
            return _refuse(403, "bad_client_state", "no notification could be verified")
        for a in sorted(asked, key=lambda a: a.mode):
            ask(a.source, a.mode)
            metrics.GRAPH_NOTIFICATIONS.labels(outcome=a.mode).inc()
        return Response(status_code=202)

    return Route(NOTIFY_PATH, notify, methods=["POST"])


def _refuse(status: int, reason: str, detail: str) -> Response:
    if reason != "bad_client_state":
        metrics.GRAPH_NOTIFICATIONS.labels(outcome=reason).inc()
    return Response(content=detail, status_code=status, media_type="text/plain")
