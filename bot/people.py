"""Who a Slack user is, as far as the directory is concerned.

A Slack user is matched to the directory by the email of their profile. That is
only safe for the organisation's own people: a user of another organisation in a
shared (Slack Connect) channel controls their own profile and could show an
employee's email. So:

* a user whose ``team_id`` is not one of this bot's workspaces (and who is not
  in the same Enterprise Grid organisation), or whom Slack marks ``is_stranger``,
  is external: never looked up, public documents only;
* guests (``is_restricted``, ``is_ultra_restricted``) are resolved through the
  directory like anyone else (one it does not know gets nothing private), or,
  with ``CHATOPS_SLACK_GUESTS=unknown``, are external too.

The bot's workspaces are ``SLACK_TEAM_IDS`` or, by default, the bot token's own
(``auth.test``, asked once).
"""

from __future__ import annotations

import logging
import threading
from typing import Literal

from slack_sdk.errors import SlackApiError

from connectors.identity.base import ExternalPerson

log = logging.getLogger(__name__)


class SlackPeople:
    def __init__(self, gateway, *, team_ids: frozenset[str] = frozenset(),
                 guests: Literal["directory", "unknown"] = "directory"):
        self._gateway = gateway
        self._configured_teams = frozenset(team_ids)
        self._guests = guests
        self._own: tuple[frozenset[str], str | None] | None = None
        self._lock = threading.Lock()

    def own(self) -> tuple[frozenset[str], str | None]:
        """(workspace ids, Enterprise Grid organisation id) this bot belongs to."""
        with self._lock:
            if self._own is None:
                info = self._gateway.auth()
                teams = self._configured_teams or frozenset(t for t in [info.get("team_id")] if t)
                self._own = (teams, info.get("enterprise_id") or None)
            return self._own

    def is_external(self, user: dict) -> bool:
        if user.get("is_stranger"):
            return True
        teams, enterprise = self.own()
        if user.get("team_id") in teams:
            return False
        user_enterprise = (user.get("enterprise_user") or {}).get("enterprise_id")
        return not (enterprise and user_enterprise == enterprise)

    def email_for_directory(self, user_id: str) -> str | None:
        """The email to look the user up by; None if Slack has no such user or no email.

        Raises ExternalPerson for users who are not the organisation's own (see the module)."""
        try:
            user = self._gateway.user(user_id)
        except SlackApiError as exc:
            if exc.response.get("error") == "user_not_found":
                return None
            raise
        if self.is_external(user):
            log.info("Slack user of another organisation: public documents only", extra={"user": user_id})
            raise ExternalPerson(user_id)
        if self._guests == "unknown" and (user.get("is_restricted") or user.get("is_ultra_restricted")):
            log.info("guest treated as unknown (CHATOPS_SLACK_GUESTS=unknown)", extra={"user": user_id})
            raise ExternalPerson(user_id)
        return (user.get("profile") or {}).get("email")

    def is_bot(self, user_id: str) -> bool:
        return self._gateway.is_bot(user_id)
