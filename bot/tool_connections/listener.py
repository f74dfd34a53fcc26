"""Connect and Disconnect clicks. Connect is a link button (Slack opens the authorization page):
acknowledged, nothing to do. Disconnect is claimed once and queued; the worker finds who clicked."""

from __future__ import annotations

from bot.enqueue import ListenerDeps, enqueue_once
from bot.tool_connections.blocks import CONNECT_ACTION, DISCONNECT_ACTION
from bot.tool_connections.task import TOOL_CONNECTION
from chatops import keys, metrics
from chatops.logs import correlated


def register(app, deps: ListenerDeps) -> None:
    @app.action(CONNECT_ACTION)
    def on_connect(ack):
        ack()

    @app.action(DISCONNECT_ACTION)
    def on_disconnect(ack, body, action):
        with correlated(None) as cid:
            user = (body.get("user") or {}).get("id")
            container = body.get("container") or {}
            payload = {"cid": cid, "op": "disconnect", "tool": action.get("value"), "user": user,
                       "channel": (body.get("channel") or {}).get("id") or container.get("channel_id")}
            if enqueue_once(deps.state, deps.dispatch,
                            claim=(keys.CLAIM_TOOL_DISCONNECT, f"{action.get('action_ts')}:{user}"),
                            kind=TOOL_CONNECTION.kind, payload=payload, ttl=86400):
                metrics.SLACK_EVENTS.labels(kind="tool_connection", outcome="queued").inc()
            ack()
