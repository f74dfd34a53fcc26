"""``GET /tools/oauth/callback``: where a person's browser comes back after connecting a tool.

The authorization server redirects here with ``code`` and ``state`` (and ``iss``, RFC 9207), or with
``error``. The pending authorization the ``state`` names is taken once (``usecases/tool_auth.py``);
the answer is a small page: "Connected PagerDuty. You can return to Slack and ask again.", or what
went wrong (400: an expired, used or refused link; 502: the authorization server could not be
reached; 503: the service's own state could not be read). The page is never cached, sends no
referrer (the URL held a code) and runs nothing.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from bot.tool_connections.blocks import connected_message
from usecases.tool_auth import CALLBACK_PATH, ConnectFailed, ToolConnections

log = logging.getLogger(__name__)

_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'", "X-Frame-Options": "DENY"}
_DECLINED = {"access_denied": "You did not allow access, so nothing was connected."}


def page(title: str, text: str, status: int) -> HTMLResponse:
    body = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            "<meta name=viewport content='width=device-width'>"
            "<style>body{font:16px system-ui,sans-serif;margin:4rem auto;max-width:34rem;padding:0 1rem}</style>"
            f"</head><body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>")
    return HTMLResponse(body, status_code=status, headers=_HEADERS)


def _tell(gateway: Any, user: str, label: str, tool: str) -> None:
    """The DM after connecting: it is theirs, and the Disconnect button. A failure here loses only
    the message (they are connected; ``chatops tools disconnect`` remains)."""
    try:
        gateway.post(gateway.open_dm(user), connected_message(label, tool))
    except Exception:  # noqa: BLE001 - the connection is made; the note is a courtesy
        log.warning("could not tell the person their tool is connected", exc_info=True)


def tool_oauth_route(connections: ToolConnections, labels: Mapping[str, str] | None = None, *,
                     gateway: Any = None) -> Route:
    """The callback route. ``labels``: how each tool is named to people (its ``title``); ``gateway``:
    Slack, to tell the person in a DM, with the Disconnect button."""
    names = dict(labels or {})

    def label(tool: str | None) -> str:
        return names.get(tool or "", tool or "the tool")

    async def callback(request: Request) -> HTMLResponse:
        if request.method != "GET":      # HEAD (a link checker): the page, nothing taken
            return page("Connect a tool", "Open this address from your browser.", 200)
        q = request.query_params
        state, code, error = q.get("state", ""), q.get("code", ""), q.get("error")
        try:
            if error is not None:
                tool = await run_in_threadpool(connections.abandon, state)
                log.info("tool authorization declined or failed", extra={"tool": tool, "error": error[:64]})
                reason = _DECLINED.get(error, f"The authorization server answered: {error[:64]}.")
                return page(f"{label(tool)} is not connected", reason, 400)
            if not state or not code:
                return page("Nothing to connect", "This address is only opened by an authorization server "
                                                  "coming back from a Connect button.", 400)
            connected = await run_in_threadpool(lambda: connections.complete(state, code, iss=q.get("iss")))
        except ConnectFailed as exc:
            return page(f"{label(exc.tool)} is not connected" if exc.tool else "Not connected", str(exc), exc.status)
        except Exception:       # Redis or the database: the person may try again; nothing a client sends is a 500
            log.exception("a tool authorization could not be completed")
            return page("Not connected", "Something went wrong on our side. Please try again in a moment.", 503)
        name = label(connected.tool)
        if gateway is not None and connected.slack_user_id:
            await run_in_threadpool(_tell, gateway, connected.slack_user_id, name, connected.tool)
        return page(f"Connected {name}", f"Connected {name}. You can return to Slack and ask again.", 200)

    return Route(CALLBACK_PATH, callback, methods=["GET"])
