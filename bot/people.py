"""Slack users as the directory needs them: one ``users.info`` per person, one cache.

A Slack user is matched to the directory by the email of their profile. That is only
safe for the organisation's own people: a user of another organisation in a shared
(Slack Connect) channel controls their own profile and could show an employee's email.
So:

* a user whose ``team_id`` is not one of this bot's workspaces (and who is not in the
  same Enterprise Grid organisation), or whom Slack marks ``is_stranger``, is external:
  never looked up, public documents only;
* guests (``is_restricted``, ``is_ultra_restricted``) are resolved through the directory
  like anyone else (one it does not know gets nothing private), or, with
  ``CHATOPS_SLACK_GUESTS=unknown``, are external too;
* bots and apps read nothing and are left out of audiences.

The bot's workspaces are ``SLACK_TEAM_IDS`` or, by default, the bot token's own
(``auth.test``, asked once). What ``users.info`` said is kept in Redis for ``ttl`` seconds,
shared by every process; a Slack failure is ``IdentityUnavailable`` (fail closed).
"""

from __future__ import annotations

import logging
import threading
from typing import Literal

from slack_sdk.errors import SlackApiError

from chatops.state import State
from connectors.identity.base import IdentityUnavailable
from usecases.people import Someone

log = logging.getLogger(__name__)

_FIELDS = ("team_id", "is_bot", "is_app_user", "is_stranger", "is_restricted", "is_ultra_restricted", "deleted")


class SlackPeople:
    def __init__(self, gateway, state: State | None = None, *, team_ids: frozenset[str] = frozenset(),
                 guests: Literal["directory", "unknown"] = "directory", ttl: int = 900):
        self._gateway = gateway
        self._state = state
        self._configured_teams = frozenset(team_ids)
        self._guests = guests
        self._ttl = ttl
        self._own: tuple[frozenset[str], str | None] | None = None
        self._lock = threading.Lock()

    # -- the bot's own organisation ------------------------------------------------

    def own(self) -> tuple[frozenset[str], str | None]:
        """(workspace ids, Enterprise Grid organisation id) this bot belongs to."""
        with self._lock:
            if self._own is None:
                info = self._gateway.auth()
                teams = self._configured_teams or frozenset(t for t in [info.get("team_id")] if t)
                self._own = (teams, info.get("enterprise_id") or None)
            return self._own

    # -- people -------------------------------------------------------------------------

    def record(self, user_id: str) -> dict | None:
        """What ``users.info`` says of the user (the fields used here); None: no such user."""
        if user_id == "USLACKBOT":
            return {"is_bot": True}
        cached = self._cache_get(user_id)
        if cached is not None:
            return cached or None
        try:
            user = self._gateway.user(user_id)
        except SlackApiError as exc:
            if exc.response.get("error") != "user_not_found":
                raise IdentityUnavailable(f"Slack users.info failed: {exc.response.get('error')}") from None
            user = None
        except Exception as exc:  # noqa: BLE001 - rate limits, network: we could not check
            raise IdentityUnavailable(f"Slack users.info failed: {type(exc).__name__}") from None
        record = None if user is None else {
            **{k: user.get(k) for k in _FIELDS},
            "email": (user.get("profile") or {}).get("email"),
            "enterprise_id": (user.get("enterprise_user") or {}).get("enterprise_id"),
        }
        self._cache_set(user_id, record or {})
        return record

    def someone(self, user_id: str) -> Someone:
        """The user as the use cases need them (raises IdentityUnavailable if Slack cannot say)."""
        user = self.record(user_id)
        if user is None:
            return Someone(chat_id=user_id, email=None)
        if user.get("is_bot") or user.get("is_app_user"):
            return Someone(chat_id=user_id, email=None, bot=True)
        if self.is_external(user):
            log.info("Slack user of another organisation: public documents only", extra={"user": user_id})
            return Someone(chat_id=user_id, email=None, external=True)
        if self._guests == "unknown" and (user.get("is_restricted") or user.get("is_ultra_restricted")):
            log.info("guest treated as unknown (CHATOPS_SLACK_GUESTS=unknown)", extra={"user": user_id})
            return Someone(chat_id=user_id, email=None, external=True)
        return Someone(chat_id=user_id, email=user.get("email"))

    def is_external(self, user: dict) -> bool:
        if user.get("is_stranger"):
            return True
        teams, enterprise = self.own()
        if user.get("team_id") in teams:
            return False
        return not (enterprise and user.get("enterprise_id") == enterprise)

    def is_bot(self, user_id: str) -> bool:
        return self.someone(user_id).bot

    # -- the cache --------------------------------------------------------------------------

    def _cache_get(self, user_id: str) -> dict | None:
        if self._state is None:
            return None
        try:
            return self._state.get_json("slackuser", user_id)
        except Exception as exc:  # noqa: BLE001 - a cache miss, not a failure
            log.warning("Slack user cache unavailable", extra={"error": type(exc).__name__})
            return None

    def _cache_set(self, user_id: str, record: dict) -> None:
        if self._state is None:
            return
        try:
            self._state.set_json(record, self._ttl, "slackuser", user_id)
        except Exception as exc:  # noqa: BLE001
            log.warning("Slack user cache write failed", extra={"error": type(exc).__name__})
