"""``app_home_opened``: queued for the worker (the Home tab is published, or the Messages tab's
prompts set, there). ``app_context_changed``: the channel the person looks at, kept in Redis."""

from __future__ import annotations

import logging

from bot.enqueue import ListenerDeps, enqueue_once
from bot.home import context
from bot.home.task import HOME
from chatops import keys, metrics
from chatops.logs import correlated

log = logging.getLogger(__name__)

TABS = ("home", "messages")
REFRESH_S = 5          # one refresh per person and tab in this many seconds (and Slack's retries)


def register(app, deps: ListenerDeps) -> None:
    @app.event("app_home_opened")
    def on_home_opened(event, body):
        user, tab = event.get("user"), event.get("tab") or "home"
        if "context" in event:
            context.remember(deps.state, user, event.get("context"))
        if not isinstance(user, str) or not user or tab not in TABS:
            return
        with correlated(None) as cid:
            payload = {"cid": cid, "user": user, "tab": tab, "channel": event.get("channel"),
                       "team": body.get("team_id")}
            if enqueue_once(deps.state, deps.dispatch, claim=(keys.CLAIM_HOME_OPENED, f"{user}:{tab}"),
                            kind=HOME.kind, payload=payload, ttl=REFRESH_S):
                metrics.SLACK_EVENTS.labels(kind="home", outcome="queued").inc()

    @app.event("app_context_changed")
    def on_context_changed(event):
        context.remember(deps.state, event.get("user"), event.get("context") or {})
        log.info("the channel a person looks at changed", extra={"user": event.get("user")})
