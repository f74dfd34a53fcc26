"""The FastAPI app: ``POST /slack/events`` (events, interactivity, commands) and ``GET /healthz``.

This process never opens the index; it verifies, de-duplicates and enqueues.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, Response
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

log = logging.getLogger(__name__)


def create_web_app(bolt_app, *, ready) -> FastAPI:
    """``ready()`` returns (ok, detail) for the health check."""
    api = FastAPI(title="chatops", docs_url=None, redoc_url=None, openapi_url=None)

    async def slack_events(request: Request) -> Response:
        body = await request.body()
        bolt_request = to_bolt_request(request, body)
        if request.headers.get("content-type", "").startswith("application/json"):
            # Events: verify, de-duplicate, enqueue — a few milliseconds of local work, cheaper
            # inline than handing over to a thread.
            bolt_response = bolt_app.dispatch(bolt_request)
        else:
            # Interactivity may call Slack (views.open); keep the event loop free for that.
            bolt_response = await run_in_threadpool(bolt_app.dispatch, bolt_request)
        return to_starlette_response(bolt_response)

    # A plain Starlette route inside the FastAPI app: Slack's requests need none of FastAPI's
    # parameter parsing, and the acknowledgement path is the one that must stay short.
    api.router.routes.append(Route("/slack/events", slack_events, methods=["POST"]))

    @api.get("/healthz")
    async def healthz() -> Response:
        ok, detail = await run_in_threadpool(ready)
        return Response(content=detail, status_code=200 if ok else 503, media_type="text/plain")

    return api
