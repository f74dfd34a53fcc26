"""Which app and which workspaces this bot serves.

A request with a valid signature can still be meant for another app (a shared
signing secret, a proxy that fans out) or come from another workspace. Only the
configured ``api_app_id`` (``SLACK_APP_ID``) and workspaces (``SLACK_TEAM_IDS``,
by default the bot token's own, from ``auth.test``) are handled; anything else is
acknowledged (so Slack does not retry it) and dropped, with a log line and a count.
"""

from __future__ import annotations

import logging

from slack_bolt.response import BoltResponse

from chatops import metrics

log = logging.getLogger(__name__)


def api_app_id(body: dict) -> str | None:
    value = body.get("api_app_id")
    return value if isinstance(value, str) else None


def foreign_reason(body: dict, context, *, app_id: str | None, team_ids: frozenset[str]) -> str | None:
    """Why this request is not ours ("app" or "team"), or None when it is."""
    if app_id and api_app_id(body) != app_id:
        return "app"
    team, enterprise = context.get("team_id"), context.get("enterprise_id")
    authorized = context.get("authorize_result")
    own_teams = team_ids or frozenset(t for t in [getattr(authorized, "team_id", None)] if t)
    own_enterprise = getattr(authorized, "enterprise_id", None)
    if team and team in own_teams:
        return None
    if not team and enterprise and enterprise == own_enterprise:
        return None   # an org-wide (Enterprise Grid) request carries the organisation only
    return "team"


def only_ours(*, app_id: str | None, team_ids: frozenset[str]):
    """A Bolt global middleware that drops requests for another app or workspace."""

    def middleware(body, context, next):  # noqa: A002 - Bolt passes ``next`` by this name
        reason = foreign_reason(body if isinstance(body, dict) else {}, context, app_id=app_id, team_ids=team_ids)
        if reason is None:
            return next()
        metrics.SLACK_REQUESTS_REFUSED.labels(reason=f"foreign_{reason}").inc()
        log.warning("dropped a request for another app or workspace",
                    extra={"why": reason, "api_app_id": api_app_id(body) if isinstance(body, dict) else None,
                           "team_id": context.get("team_id"), "enterprise_id": context.get("enterprise_id")})
        return BoltResponse(status=200, body="")

    return middleware
