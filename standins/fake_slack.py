"""A loopback Slack Web API for the real slack_sdk ``WebClient(base_url=...)``.

Like Slack, it wants a token on every call (``not_authed`` without one, ``invalid_auth`` for one
it did not issue, when ``bot_token`` is given), answers ``missing_scope`` (with ``needed`` and
``provided``) when the bot token was not granted a method's scope, and reports the granted
scopes in each response's ``x-oauth-scopes`` header. App-level tokens (``xapp-``) are for
``apps.connections.open`` only.

Plus the other direction: ``sign``, ``event_body`` and ``block_actions_body``
build what Slack itself would POST to our app (Events API, interactivity).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
from urllib.parse import urlencode

from standins._loopback import LoopbackServer, Reply, Request


class FakeSlack(LoopbackServer):
    def __init__(self, users: dict[str, dict] | None = None, channels: dict[str, list[str]] | None = None,
                 bot_user_id: str = "UBOT", team_id: str = "T123", *, page_size: int = 2,
                 max_page_size: int | None = None, channel_names: dict[str, str] | None = None,
                 usergroups: dict[str, list[str]] | None = None, scopes: set[str] | None = None,
                 bot_token: str | None = None, app_id: str = "A123", bot_id: str = "B123",
                 private_channels: set[str] | None = None):
        super().__init__()
        self.private_channels = set(private_channels or ())   # channel ids conversations.info says are private
        # The bot token's granted scopes (None: every scope a method here needs), the one bot token
        # Slack issued (None: any xoxb- token), and the app it belongs to.
        self.scopes = set(INSTALLED_SCOPES) if scopes is None else set(scopes)
        self.bot_token = bot_token
        self.app_id, self.bot_id = app_id, bot_id
        self.channel_names = dict(channel_names or {})     # channel id -> name (conversations.info)
        self.usergroups = {k: list(v) for k, v in (usergroups or {}).items()}
        self.users = dict(users or {})
        self.channels = {k: list(v) for k, v in (channels or {}).items()}
        self.bot_user_id = bot_user_id
        self.team_id = team_id
        self.page_size = page_size          # conversations.members without `limit`
        self.max_page_size = max_page_size  # Slack may return fewer than `limit`: cap it
        self.calls: list[dict] = []
        self._failures: dict[str, list[tuple[int, int]]] = {}
        self._ts = itertools.count(1)

    @property
    def url(self) -> str:
        return f"{self.origin}/api/"

    # -- test helpers -------------------------------------------------------

    def fail_next(self, method: str, status: int = 429, retry_after: int = 1, count: int = 1) -> None:
        with self.lock:
            self._failures.setdefault(method, []).extend([(status, retry_after)] * count)

    def calls_to(self, method: str) -> list[dict]:
        with self.lock:
            return [c["params"] for c in self.calls if c["method"] == method]

    def wait_for(self, method: str, predicate=lambda params: True, timeout: float = 15.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for params in self.calls_to(method):
                if predicate(params):
                    return params
            if time.monotonic() >= deadline:
                with self.lock:
                    seen = [c["method"] for c in self.calls]
                raise AssertionError(f"no matching {method} call within {timeout}s; calls: {seen}")
            time.sleep(0.02)

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self._failures.clear()

    # -- HTTP ---------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        if not request.path.startswith("/api/"):
            return Reply(404, "not found")
        method = request.path[len("/api/"):]
        params = _params(request)
        call = {"method": method, "params": params, "headers": request.headers, "at": time.time()}
        with self.lock:
            self.calls.append(call)
            pending = self._failures.get(method)
            failure = pending.pop(0) if pending else None
        if failure:
            status, retry_after = failure
            if status == 429:
                return Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)})
            return Reply(status, f"{status} upstream failure")  # like Slack's HTML error pages: not JSON
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        refused, headers = self._authorize(method, params, request)
        body = refused or (handler(params) if handler else {"ok": False, "error": "unknown_method"})
        with self.lock:
            call["response"] = body
            call["response_ts"] = body.get("ts") or body.get("message_ts")
        return Reply(200, body, headers)

    def _authorize(self, method: str, params: dict, request: Request) -> tuple[dict | None, dict]:
        """Slack's token and scope checks: (an error body or None, the response's headers)."""
        auth = request.headers.get("authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else params.get("token", "")
        if not token:
            return {"ok": False, "error": "not_authed"}, {}
        if token.startswith("xapp-"):
            ok = method == "apps.connections.open"
            return (None if ok else {"ok": False, "error": "not_allowed_token_type"}), {}
        if self.bot_token is not None and token != self.bot_token:
            return {"ok": False, "error": "invalid_auth"}, {}
        granted = ",".join(sorted(self.scopes))
        needed = SCOPES.get(method)
        if method.startswith("conversations.") and method != "conversations.open":
            needed = _CONVERSATION_SCOPES.get(str(params.get("channel", ""))[:1], "channels:read")
        headers = {"x-oauth-scopes": granted, "x-accepted-oauth-scopes": needed or ""}
        if needed and needed not in self.scopes:
            return {"ok": False, "error": "missing_scope", "needed": needed, "provided": granted}, headers
        return None, headers

    def _next_ts(self) -> str:
        micros = 1_700_000_000_000_000 + next(self._ts) * 100
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    # -- Web API methods ----------------------------------------------------

    def _auth_test(self, p):
        return {"ok": True, "url": "https://fake.slack.com/", "team": "Fake", "user": "chatops",
                "team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": self.bot_id, "is_enterprise_install": False}

    def _bots_info(self, p):
        if p.get("bot") != self.bot_id:
            return {"ok": False, "error": "bot_not_found"}
        return {"ok": True, "bot": {"id": self.bot_id, "deleted": False, "name": "chatops", "app_id": self.app_id,
                                    "user_id": self.bot_user_id, "updated": 1_700_000_000, "icons": {}}}

    def _chat_postMessage(self, p):
        ts = self._next_ts()
        message = {"type": "message", "user": self.bot_user_id, "bot_id": self.bot_id, "ts": ts,
                   "text": p.get("text", "")}
        for key in ("blocks", "thread_ts"):
            if p.get(key):
                message[key] = p[key]
        return {"ok": True, "channel": p.get("channel"), "ts": ts, "message": message}

    def _chat_update(self, p):
        return {"ok": True, "channel": p.get("channel"), "ts": p.get("ts"), "text": p.get("text", "")}

    def _chat_postEphemeral(self, p):
        return {"ok": True, "message_ts": self._next_ts()}

    def _conversations_members(self, p):
        members = self.channels.get(p.get("channel", ""))
        if members is None:
            return {"ok": False, "error": "channel_not_found"}
        size = int(p.get("limit") or self.page_size)
        if self.max_page_size:
            size = min(size, self.max_page_size)
        start = int(base64.b64decode(p["cursor"]).decode().split(":")[1]) if p.get("cursor") else 0
        end = start + size
        cursor = base64.b64encode(f"offset:{end}".encode()).decode() if end < len(members) else ""
        return {"ok": True, "members": members[start:end], "response_metadata": {"next_cursor": cursor}}

    def _users_info(self, p):
        user_id = p.get("user", "")
        user = self.users.get(user_id)
        if user is None and user_id != self.bot_user_id:
            return {"ok": False, "error": "user_not_found"}
        # What Slack sends for every user; a bot user (this app's own, or another app's: is_bot) has
        # no email, and its profile names its bot and app. is_app_user is not about bots: it says the
        # person authorised the calling app.
        base = {"id": user_id, "team_id": self.team_id, "deleted": False, "is_bot": False, "is_app_user": False,
                "is_restricted": False, "is_ultra_restricted": False, "profile": {}}
        if user_id == self.bot_user_id:
            base |= {"is_bot": True, "name": "chatops",
                     "profile": {"bot_id": self.bot_id, "api_app_id": self.app_id, "always_active": True}}
        user = dict(user or {})
        profile = {**base["profile"], **(user.pop("profile", None) or {})}
        return {"ok": True, "user": {**base, **user, "profile": profile}}

    def _conversations_open(self, p):
        first = (p.get("users") or p.get("user") or "").split(",")[0]
        return {"ok": True, "channel": {"id": "D" + first}}

    def _conversations_info(self, p):
        channel = p.get("channel", "")
        if channel.startswith("D"):
            return {"ok": True, "channel": {"id": channel, "is_im": True, "user": channel[1:]}}
        if channel not in self.channels and channel not in self.channel_names:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": {"id": channel, "name": self.channel_names.get(channel, channel.lower()),
                                        "is_channel": True, "is_group": False, "is_im": False, "is_mpim": False,
                                        "is_private": channel in self.private_channels, "is_archived": False}}

    def _usergroups_users_list(self, p):
        users = self.usergroups.get(p.get("usergroup", ""))
        if users is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(users)}

    def _reactions_add(self, p):
        return {"ok": True}

    def _apps_connections_open(self, p):
        url = getattr(self, "socket_url", None)
        return {"ok": True, "url": url} if url else {"ok": False, "error": "not_allowed_token_type"}

    def _views_open(self, p):
        if not p.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        view = p.get("view")
        view = json.loads(view) if isinstance(view, str) else dict(view or {})
        return {"ok": True, "view": {"id": f"V{next(self._ts):06d}", **view}}

    _reactions_remove = _reactions_add


# The bot scope each method needs (Slack's method reference); the conversations.* methods need the
# read scope of the conversation's type, told here by the id's first letter.
SCOPES = {
    "chat.postMessage": "chat:write", "chat.update": "chat:write", "chat.postEphemeral": "chat:write",
    "users.info": "users:read", "bots.info": "users:read", "conversations.open": "im:write",
    "usergroups.users.list": "usergroups:read", "reactions.add": "reactions:write",
    "reactions.remove": "reactions:write",
}
_CONVERSATION_SCOPES = {"C": "channels:read", "G": "groups:read", "D": "im:read"}
# What a token is granted by default: an app installed with every scope a chat bot of this kind asks for.
INSTALLED_SCOPES = frozenset({
    "app_mentions:read", "channels:history", "channels:read", "chat:write", "groups:history", "groups:read",
    "im:history", "im:read", "im:write", "mpim:history", "mpim:read", "reactions:write", "usergroups:read",
    "users:read", "users:read.email"})


def _params(request: Request) -> dict:
    params: dict = dict(request.query)
    content_type = request.headers.get("content-type", "")
    if request.body and content_type.startswith("application/json"):
        params.update(request.json())
    elif request.body and content_type.startswith("application/x-www-form-urlencoded"):
        params.update(request.form())
    for key in ("blocks", "attachments"):
        if isinstance(params.get(key), str):
            params[key] = json.loads(params[key])
    return params


# -- What Slack sends to the app ---------------------------------------------

def sign(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers of Slack's v0 request signature over ``body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def event_body(event: dict, event_id: str, team_id: str = "T123", *, bot_user_id: str = "UBOT",
               api_app_id: str = "A123") -> bytes:
    """An Events API ``event_callback`` envelope, as Slack POSTs it."""
    return json.dumps({
        "token": "legacy-verification-token",
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": team_id, "user_id": bot_user_id,
                            "is_bot": True, "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
    }).encode()


def block_actions_body(user_id: str, channel_id: str, action: dict, message: dict | None = None, *,
                       team_id: str = "T123", api_app_id: str = "A123") -> bytes:
    """An interactivity POST (``payload=<json>``) for a click on a message button.

    Without ``message`` the click is on an ephemeral message, which Slack does not echo back.
    """
    now = f"{time.time():.6f}"
    action = {"type": "button", "block_id": "block", "action_ts": now, **action}
    payload = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": team_id},
        "api_app_id": api_app_id,
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": (message or {}).get("ts", now),
                      "channel_id": channel_id, "is_ephemeral": message is None},
        "trigger_id": f"{int(time.time())}.trigger",
        "team": {"id": team_id, "domain": "fake"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_id.lower()},
        "state": {"values": {}},
        "actions": [action],
    }
    if message is not None:
        payload["message"] = message
    return urlencode({"payload": json.dumps(payload)}).encode()


def view_submission_body(user_id: str, view: dict, values: dict, *, view_id: str = "V000001",
                         team_id: str = "T123", api_app_id: str = "A123") -> bytes:
    """An interactivity POST for a modal's submit button; ``values`` as Slack nests them:
    ``{block_id: {action_id: {"type": ..., "value": ...}}}``."""
    payload = {
        "type": "view_submission",
        "user": {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": team_id},
        "api_app_id": api_app_id,
        "token": "legacy-verification-token",
        "trigger_id": f"{int(time.time())}.trigger",
        "team": {"id": team_id, "domain": "fake"},
        "view": {**view, "id": view_id, "team_id": team_id, "state": {"values": values}},
        "response_urls": [],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()
