"""The FastAPI app: ``POST /slack/events`` (events, interactivity, commands) and ``GET /healthz``.

This process never opens the index; it verifies, de-duplicates and enqueues.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, Response
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.concurrency import run_in_threadpool

log = logging.getLogger(__name__)


def create_web_app(bolt_app, *, ready) -> FastAPI:
    """``ready()`` returns (ok, detail) for the health check."""
    api = FastAPI(title="chatops", docs_url=None, redoc_url=None, openapi_url=None)

    @api.post("/slack/events")
    async def slack_events(request: Request) -> Response:
        body = await request.body()
        bolt_request = to_bolt_request(request, body)
        # Bolt is synchronous; keep the event loop free while it runs.
        bolt_response = await run_in_threadpool(bolt_app.dispatch, bolt_request)
        return to_starlette_response(bolt_response)

    @api.get("/healthz")
    async def healthz() -> Response:
        ok, detail = await run_in_threadpool(ready)
        return Response(content=detail, status_code=200 if ok else 503, media_type="text/plain")

    return api
