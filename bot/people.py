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
* an app's bot user (``is_bot``) reads the channels it is in, so it counts as an unknown
  member (public documents only), unless it is this bot itself, or its bot id or app id is in
  ``CHATOPS_TRUSTED_BOTS`` and it is of our own organisation: those are left out of audiences.
  Another organisation's app is never trusted. ``is_app_user`` is not about apps: it marks a
  person who authorised this app, resolved like anyone else.

The bot's workspaces are ``SLACK_TEAM_IDS`` or, by default, the bot token's own
(``auth.test``, asked once). What ``users.info`` said is kept in Redis for ``ttl`` seconds,
shared by every process; a Slack failure is ``IdentityUnavailable`` (fail closed).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Literal

from slack_sdk.errors import SlackApiError

from chatops import keys, metrics
from chatops.errors import IdentityUnavailable
from chatops.state import State
from usecases.people import Someone

log = logging.getLogger(__name__)

_FIELDS = ("team_id", "is_bot", "is_stranger", "is_restricted", "is_ultra_restricted", "deleted")
SLACKBOT = "USLACKBOT"    # Slack itself (users.info says is_bot: false for it): left out


@dataclass(frozen=True)
class Own:
    """The bot's own organisation (workspaces, Enterprise Grid id) and its own bot user."""

    teams: frozenset[str]
    enterprise: str | None
    bot_user: str | None
    bot_id: str | None


class SlackPeople:
    def __init__(self, gateway, state: State | None = None, *, team_ids: frozenset[str] = frozenset(),
                 guests: Literal["directory", "unknown"] = "directory", ttl: int = 900,
                 trusted_bots: frozenset[str] = frozenset()):
        self._gateway = gateway
        self._state = state
        self._configured_teams = frozenset(team_ids)
        self._guests = guests
        self._ttl = ttl
        self._trusted_bots = frozenset(trusted_bots)
        self._own: Own | None = None
        self._lock = threading.Lock()

    # -- the bot's own organisation ------------------------------------------------

    def own(self) -> Own:
        """The workspaces and Enterprise Grid organisation this bot belongs to, and its own bot user."""
        with self._lock:
            if self._own is None:
                info = self._gateway.auth()
                teams = self._configured_teams or frozenset(t for t in [info.get("team_id")] if t)
                self._own = Own(teams, info.get("enterprise_id") or None, info.get("user_id") or None,
                                info.get("bot_id") or None)
            return self._own

    # -- people -------------------------------------------------------------------------

    def record(self, user_id: str) -> dict | None:
        """What ``users.info`` says of the user (the fields used here); None: no such user."""
        if user_id == SLACKBOT:
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
        profile = (user or {}).get("profile") or {}
        record = None if user is None else {
            **{k: user.get(k) for k in _FIELDS},
            "email": profile.get("email"),
            "enterprise_id": (user.get("enterprise_user") or {}).get("enterprise_id"),
            # A bot user's profile names its bot and its app.
            "bot_id": profile.get("bot_id"),
            "app_id": profile.get("api_app_id"),
        }
        self._cache_set(user_id, record or {})
        return record

    def someone(self, user_id: str) -> Someone:
        """The user as the use cases need them (raises IdentityUnavailable if Slack cannot say)."""
        user = self.record(user_id)
        if user is None:
            return Someone(chat_id=user_id, email=None)
        if user.get("is_bot"):
            return self._app(user_id, user)
        if self.is_external(user):
            log.info("Slack user of another organisation: public documents only", extra={"user": user_id})
            return Someone(chat_id=user_id, email=None, external=True)
        if self._guests == "unknown" and (user.get("is_restricted") or user.get("is_ultra_restricted")):
            log.info("guest treated as unknown (CHATOPS_SLACK_GUESTS=unknown)", extra={"user": user_id})
            return Someone(chat_id=user_id, email=None, external=True)
        return Someone(chat_id=user_id, email=user.get("email"))

    def _app(self, user_id: str, user: dict) -> Someone:
        """An app's bot user: left out of audiences when it is this bot, Slackbot, or an allow-listed
        app of our own organisation; any other app reads like an unknown member."""
        own = self.own()
        if user_id in (SLACKBOT, own.bot_user) or (own.bot_id and user.get("bot_id") == own.bot_id):
            return Someone(chat_id=user_id, email=None, bot=True)
        listed = bool({user.get("bot_id"), user.get("app_id")} & self._trusted_bots)
        external = self.is_external(user)
        if listed and not external:
            return Someone(chat_id=user_id, email=None, bot=True)
        reason = "external" if external else "not_listed"
        metrics.SLACK_APPS_UNTRUSTED.labels(reason=reason).inc()
        log.info("an app counts as an unknown reader: public documents only (CHATOPS_TRUSTED_BOTS lists "
                 "trusted apps of our own workspaces)",
                 extra={"user": user_id, "bot_id": user.get("bot_id"), "app_id": user.get("app_id"),
                        "reason": reason})
        return Someone(chat_id=user_id, email=None, external=True)

    def is_external(self, user: dict) -> bool:
        if user.get("is_stranger"):
            return True
        own = self.own()
        if user.get("team_id") in own.teams:
            return False
        return not (own.enterprise and user.get("enterprise_id") == own.enterprise)

    def is_bot(self, user_id: str) -> bool:
        """Slack says the user is an app's bot user (or Slackbot)."""
        return bool((self.record(user_id) or {}).get("is_bot"))

    # -- the cache --------------------------------------------------------------------------

    def _cache_get(self, user_id: str) -> dict | None:
        if self._state is None:
            return None
        try:
            return self._state.get_json(keys.CACHE_SLACK_USER, user_id)
        except Exception as exc:  # noqa: BLE001 - a cache miss, not a failure
            log.warning("Slack user cache unavailable", extra={"error": type(exc).__name__})
            return None

    def _cache_set(self, user_id: str, record: dict) -> None:
        if self._state is None:
            return
        try:
            self._state.set_json(record, self._ttl, keys.CACHE_SLACK_USER, user_id)
        except Exception as exc:  # noqa: BLE001
            log.warning("Slack user cache write failed", extra={"error": type(exc).__name__})
