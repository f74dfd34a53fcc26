"""A loopback Slack Web API for the real slack_sdk ``WebClient(base_url=...)``.

Like Slack, it wants a token on every call (``not_authed`` without one, ``invalid_auth`` for one
it did not issue, when ``bot_token`` is given), answers ``missing_scope`` (with ``needed`` and
``provided``) when the bot token was not granted a method's scope, and reports the granted
scopes in each response's ``x-oauth-scopes`` header. App-level tokens (``xapp-``) are for
``apps.connections.open`` only.

The agent surfaces too: streamed messages (``chat.startStream`` / ``appendStream`` /
``stopStream``, what slack_sdk's ``WebClient.chat_stream`` helper sends: ``markdown_text``,
``task_update`` and ``plan_update`` chunks), each recorded as a ``StreamedMessage`` (``stream(ts)``);
``stop_by_user(ts)`` is the person pressing Stop (later appends get ``stopped_by_user``; it returns
the ``agent_session_stopped`` event Slack sends); ``expire(ts)`` a stream Slack no longer takes;
``assistant.threads.setStatus`` / ``setSuggestedPrompts`` / ``setTitle`` and ``views.publish`` (the
Home tab). ``rate_limit(method, per_minute)`` (or ``enforce_tiers()``) answers 429 with
``Retry-After`` past a method's limit, as Slack's rate tiers do.

Plus the other direction: ``sign``, ``event_body`` and ``block_actions_body`` (with
``feedback_buttons_action`` for the 👍/👎 element; ``home_block_actions_body`` for a click on the
App Home tab) build what Slack itself would POST to our app (Events API, interactivity).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import math
import re
import time
from collections import deque
from dataclasses import dataclass, field
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
        # The agent surfaces: the app's settings in Slack (agent_view, the Home tab, the Messages tab).
        self.agent_enabled = True          # features.agent_view: setSuggestedPrompts answers not_agent_app without
        self.home_tab_enabled = True       # views.publish of a home view answers not_enabled without
        self.messages_tab_enabled = True   # streaming into a DM answers messages_tab_disabled without
        self.streams: dict[str, StreamedMessage] = {}      # ts -> the streamed message
        self.foreign_messages: set[str] = set()            # ts of messages another app or a person posted
        self._posted: set[str] = set()                     # ts of this app's ordinary (not streamed) messages
        self.stop_events: list[dict] = []                  # agent_session_stopped events, as stop_by_user made them
        self.statuses: list[dict] = []                     # every assistant.threads.setStatus, in order
        self._status: dict[tuple[str, str], dict] = {}     # (channel_id, thread_ts) -> the status shown now
        self.suggested_prompts: list[dict] = []            # every setSuggestedPrompts, in order
        self.titles: dict[tuple[str, str], str] = {}       # (channel_id, thread_ts) -> title
        self.home_views: dict[str, dict] = {}              # user id -> the Home tab view published last
        self._limits: dict[str, int] = {}                  # method -> calls allowed per minute
        self._recent: dict[str, deque[float]] = {}         # method -> when the allowed calls came

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
        return self._wait(lambda: self.calls_to(method), predicate, timeout, f"{method} call")

    def _wait(self, items, predicate, timeout: float, what: str) -> dict:
        """The first of ``items()`` that ``predicate`` accepts, asking again until ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            for item in items():
                if predicate(item):
                    return item
            if time.monotonic() >= deadline:
                with self.lock:
                    seen = [c["method"] for c in self.calls]
                raise AssertionError(f"no matching {what} within {timeout}s; calls: {seen}")
            time.sleep(0.02)

    def shown(self) -> list[dict]:
        """Every message as people see it once written, in order: what chat.postMessage and
        chat.update were given, and each streamed message as chat.stopStream ended it (its text, the
        blocks under it, ``streamed: True``)."""
        out = []
        with self.lock:
            calls = list(self.calls)
        for call in calls:
            if call["method"] in ("chat.postMessage", "chat.update"):
                out.append(call["params"])
            elif call["method"] == "chat.stopStream" and (call.get("response") or {}).get("ok"):
                message = call["response"]["message"]
                out.append({**message, "channel": call["params"].get("channel"), "blocks": message.get("blocks") or [],
                            "streamed": True})
        return out

    def wait_for_shown(self, predicate=lambda message: True, timeout: float = 15.0) -> dict:
        """The first message (see :meth:`shown`) ``predicate`` accepts, waiting for it."""
        return self._wait(self.shown, predicate, timeout, "message")

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self._failures.clear()

    # -- rate limits (https://docs.slack.dev/apis/web-api/rate-limits) --------

    def rate_limit(self, method: str, per_minute: int | None) -> None:
        """Allow ``per_minute`` calls of ``method`` in any 60 s; past that Slack answers HTTP 429
        ``{"ok": false, "error": "ratelimited"}`` with ``Retry-After`` (seconds). None: no limit."""
        with self.lock:
            if per_minute is None:
                self._limits.pop(method, None)
            else:
                self._limits[method] = per_minute
            self._recent.pop(method, None)

    def enforce_tiers(self, methods: tuple[str, ...] | None = None) -> None:
        """Limit ``methods`` (default: every one in ``METHOD_TIERS``) to their tier's documented floor."""
        for method in methods or tuple(METHOD_TIERS):
            self.rate_limit(method, TIER_PER_MINUTE[METHOD_TIERS[method]])

    def _rate_limited(self, method: str) -> int | None:
        """Seconds to wait when this call is over ``method``'s limit, else None (and it is counted).
        Called with the lock held."""
        limit = self._limits.get(method)
        if limit is None:
            return None
        now = time.monotonic()
        recent = self._recent.setdefault(method, deque())
        while recent and now - recent[0] >= 60.0:
            recent.popleft()
        if len(recent) >= limit:      # a limit of 0: every call is over it, for a minute
            return max(1, math.ceil(60.0 - (now - recent[0]))) if recent else 60
        recent.append(now)
        return None

    # -- streamed messages, statuses, prompts, the Home tab ------------------

    def stream(self, ts: str) -> "StreamedMessage":
        """The streamed message ``ts`` (KeyError: none was started)."""
        with self.lock:
            return self.streams[ts]

    def streams_in(self, channel: str, thread_ts: str | None = None) -> list["StreamedMessage"]:
        with self.lock:
            return [s for s in self.streams.values()
                    if s.channel == channel and (thread_ts is None or s.thread_ts == thread_ts)]

    def stop_by_user(self, ts: str, user: str | None = None) -> dict:
        """The person presses Stop on the streamed message ``ts``: the stream ends, Slack refuses
        later ``chat.appendStream`` calls with ``stopped_by_user``, and sends the app an
        ``agent_session_stopped`` event (https://docs.slack.dev/reference/events/agent_session_stopped),
        returned here and kept in ``stop_events``: wrap it with ``event_body`` to deliver it."""
        with self.lock:
            stream = self.streams[ts]
            stream.state = STOPPED_BY_USER
            who = user or stream.recipient_user_id or (stream.channel[1:] if stream.channel.startswith("D") else "")
            event = {"type": "agent_session_stopped", "channel": stream.channel, "user": who,
                     "thread_ts": stream.thread_ts or "", "streaming_message_ts": [ts],
                     "event_ts": self._next_ts()}
            self.stop_events.append(event)
            return event

    def expire(self, ts: str) -> None:
        """Slack no longer takes appends to ``ts`` (a stream left too long): the app must fall back."""
        with self.lock:
            self.streams[ts].state = EXPIRED

    def status_of(self, channel_id: str, thread_ts: str) -> dict | None:
        """The status shown in the thread now (setStatus's arguments), None when cleared: by an
        empty ``status``, or by the app's reply in the thread (a message or a stream), as Slack does."""
        with self.lock:
            return self._status.get((channel_id, thread_ts))

    def prompts_for(self, channel_id: str, thread_ts: str | None = None) -> dict | None:
        """The last setSuggestedPrompts arguments for the conversation (and thread)."""
        with self.lock:
            for call in reversed(self.suggested_prompts):
                if call["channel_id"] == channel_id and (thread_ts is None or call.get("thread_ts") == thread_ts):
                    return call
            return None

    def home_view(self, user_id: str) -> dict | None:
        """The Home tab view last published for ``user_id``, as Slack stored it."""
        with self.lock:
            return self.home_views.get(user_id)

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
            wait = None if failure else self._rate_limited(method)
        if wait is not None:
            return Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(wait)})
        if failure:
            status, retry_after = failure
            if status == 429:
                return Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)})
            return Reply(status, f"{status} upstream failure")  # like Slack's HTML error pages: not JSON
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        refused, headers = self._authorize(method, params, request)
        if refused:
            body = refused
        elif handler is None:
            body = {"ok": False, "error": "unknown_method"}
        else:
            with self.lock:     # the stream, status and view records change together
                body = handler(params)
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
        self._posted.add(ts)
        if p.get("thread_ts"):
            self._status.pop((str(p.get("channel", "")), str(p["thread_ts"])), None)   # a reply clears the status
        return {"ok": True, "channel": p.get("channel"), "ts": ts, "message": message}

    def _chat_update(self, p):
        stream = self.streams.get(str(p.get("ts") or ""))
        if stream is not None and stream.channel == p.get("channel"):
            stream.updates.append(p)      # the fallback: the streamed message rewritten with chat.update
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

    # -- streamed messages (https://docs.slack.dev/reference/methods/chat.startStream, .appendStream,
    # .stopStream); handlers run with the lock held -------------------------------------------------

    def _chat_startStream(self, p):
        channel = str(p.get("channel") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if channel.startswith("D") and not self.messages_tab_enabled:
            return {"ok": False, "error": "messages_tab_disabled"}
        if channel[:1] in ("C", "G"):      # outside a DM Slack wants whom the stream is for
            if not p.get("recipient_user_id"):
                return {"ok": False, "error": "missing_recipient_user_id"}
            if not p.get("recipient_team_id"):
                return {"ok": False, "error": "missing_recipient_team_id"}
            if self.users and p["recipient_user_id"] not in self.users:
                return {"ok": False, "error": "user_not_found"}
        mode = p.get("task_display_mode", "timeline")
        if mode not in ("timeline", "plan"):
            return _invalid("must be one of timeline, plan [json-pointer:/task_display_mode]")
        chunks = _chunks(p)
        if isinstance(chunks, dict):
            return chunks
        ts = self._next_ts()
        stream = StreamedMessage(ts=ts, channel=channel, thread_ts=p.get("thread_ts"),
                                 recipient_user_id=p.get("recipient_user_id"),
                                 recipient_team_id=p.get("recipient_team_id"), task_display_mode=mode)
        stream.calls.append(("start", chunks))
        self.streams[ts] = stream
        if stream.thread_ts:
            self._status.pop((channel, stream.thread_ts), None)   # the reply clears the thread's status
        return {"ok": True, "channel": channel, "ts": ts}

    def _streaming(self, p) -> "tuple[StreamedMessage | None, dict | None]":
        """The stream ``p`` names, or Slack's error for it."""
        ts = str(p.get("ts") or "")
        if ts in self.foreign_messages:
            return None, {"ok": False, "error": "message_not_owned_by_app"}
        if ts in self._posted:
            return None, {"ok": False, "error": "message_not_in_streaming_state"}
        stream = self.streams.get(ts)
        if stream is None or stream.channel != p.get("channel"):
            return None, {"ok": False, "error": "message_not_found"}
        return stream, None

    def _chat_appendStream(self, p):
        stream, error = self._streaming(p)
        if error:
            return error
        if stream.state == STOPPED_BY_USER:
            return {"ok": False, "error": "stopped_by_user"}
        if stream.state != STREAMING:
            return {"ok": False, "error": "message_not_in_streaming_state"}
        chunks = _chunks(p)
        if isinstance(chunks, dict):
            return chunks
        if not chunks:
            return {"ok": False, "error": "no_text"}
        stream.calls.append(("append", chunks))
        return {"ok": True, "channel": stream.channel, "ts": stream.ts}

    def _chat_stopStream(self, p):
        stream, error = self._streaming(p)
        if error:
            return error
        # After the person's Stop, Slack's guide has the app end the session with chat.stopStream:
        # that is accepted (the final blocks still land); a stream the app stopped, or expired, is not.
        if stream.state not in (STREAMING, STOPPED_BY_USER):
            return {"ok": False, "error": "message_not_in_streaming_state"}
        chunks = _chunks(p)
        if isinstance(chunks, dict):
            return chunks
        blocks = p.get("blocks")
        if blocks is not None and not isinstance(blocks, list):
            return {"ok": False, "error": "invalid_blocks_format"}
        if blocks and len(blocks) > 50:
            return {"ok": False, "error": "msg_blocks_too_many"}
        metadata = p.get("metadata")
        if isinstance(metadata, str):
            try:
                metadata = json.loads(metadata)
            except ValueError:
                return {"ok": False, "error": "invalid_metadata_format"}
        if metadata is not None and not (isinstance(metadata, dict) and "event_type" in metadata
                                         and isinstance(metadata.get("event_payload", {}), dict)):
            return {"ok": False, "error": "invalid_metadata_schema"}
        stream.calls.append(("stop", chunks))
        stream.blocks, stream.metadata = blocks, metadata
        stream.stopped_by_user = stream.state == STOPPED_BY_USER
        stream.state = STOPPED
        message = {"type": "message", "subtype": "bot_message", "text": stream.text, "user": self.bot_user_id,
                   "bot_id": self.bot_id, "ts": stream.ts}
        if stream.thread_ts:
            message["thread_ts"] = stream.thread_ts
        if blocks:
            message["blocks"] = blocks
        if metadata:
            message["metadata"] = metadata
        stream.message = message
        return {"ok": True, "channel": stream.channel, "ts": stream.ts, "message": message}

    # -- the agent's thread (https://docs.slack.dev/reference/methods/assistant.threads.setStatus, ...) --

    def _assistant_threads_setStatus(self, p):
        channel, thread_ts = str(p.get("channel_id") or ""), str(p.get("thread_ts") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not _TS.fullmatch(thread_ts):
            return {"ok": False, "error": "invalid_thread_ts"}
        if "status" not in p:
            return _invalid("missing required field: status [json-pointer:/status]")
        loading = p.get("loading_messages")
        if loading is not None and not (isinstance(loading, list) and 1 <= len(loading) <= 10 and all(
                isinstance(m, str) and 1 <= len(m) <= 50 for m in loading)):
            return _invalid("loading_messages: 1 to 10 strings of 1 to 50 characters [json-pointer:/loading_messages]")
        record = {k: p[k] for k in ("channel_id", "thread_ts", "status", "loading_messages") if k in p}
        self.statuses.append({**record, "at": time.time()})
        if p["status"]:
            self._status[(channel, thread_ts)] = record
        else:
            self._status.pop((channel, thread_ts), None)
        return {"ok": True}

    def _assistant_threads_setSuggestedPrompts(self, p):
        if not self.agent_enabled:
            return {"ok": False, "error": "not_agent_app"}
        if not p.get("channel_id"):
            return {"ok": False, "error": "channel_not_found"}
        if p.get("thread_ts") is not None and not _TS.fullmatch(str(p["thread_ts"])):
            return {"ok": False, "error": "invalid_thread_ts"}
        prompts = p.get("prompts")
        if not (isinstance(prompts, list) and 1 <= len(prompts) <= 4 and all(
                isinstance(x, dict) and isinstance(x.get("title"), str) and x["title"]
                and isinstance(x.get("message"), str) and x["message"] for x in prompts)):
            return _invalid("prompts: 1 to 4 objects, each with a title and a message [json-pointer:/prompts]")
        self.suggested_prompts.append({k: p[k] for k in ("channel_id", "thread_ts", "title", "prompts") if k in p})
        return {"ok": True}

    def _assistant_threads_setTitle(self, p):
        if not p.get("channel_id"):
            return {"ok": False, "error": "channel_not_found"}
        if not _TS.fullmatch(str(p.get("thread_ts") or "")):
            return {"ok": False, "error": "invalid_thread_ts"}
        if not p.get("title"):
            return _invalid("missing required field: title [json-pointer:/title]")
        self.titles[(p["channel_id"], p["thread_ts"])] = p["title"]
        return {"ok": True}

    # -- the Home tab (https://docs.slack.dev/reference/methods/views.publish) ------------------

    def _views_publish(self, p):
        user = p.get("user_id")
        if not user:
            return _invalid("missing required field: user_id [json-pointer:/user_id]")
        view = p.get("view")
        if isinstance(view, str):
            if len(view.encode()) > 250_000:
                return {"ok": False, "error": "view_too_large"}
            try:
                view = json.loads(view)
            except ValueError:
                return _invalid("view must be a JSON object [json-pointer:/view]")
        if not isinstance(view, dict):
            return _invalid("view must be a JSON object [json-pointer:/view]")
        if len(json.dumps(view).encode()) > 250_000:
            return {"ok": False, "error": "view_too_large"}
        if view.get("type") != "home":
            return _invalid("must be home [json-pointer:/view/type]")
        blocks = view.get("blocks")
        if not isinstance(blocks, list):
            return _invalid("missing required field: blocks [json-pointer:/view/blocks]")
        if len(blocks) > 100:
            return _invalid("no more than 100 items allowed [json-pointer:/view/blocks]")
        if not self.home_tab_enabled:
            return {"ok": False, "error": "not_enabled"}
        current = self.home_views.get(user)
        if p.get("hash") and current is not None and p["hash"] != current["hash"]:
            return {"ok": False, "error": "hash_conflict"}
        view_id = current["id"] if current else f"V{next(self._ts):06d}"
        stored = {"id": view_id, "team_id": self.team_id, "type": "home", "blocks": blocks,
                  "private_metadata": view.get("private_metadata", ""), "callback_id": view.get("callback_id", ""),
                  "state": {"values": {}}, "hash": f"{time.time():.0f}.{next(self._ts):08x}",
                  "title": {"type": "plain_text", "text": "View Title"}, "clear_on_close": False,
                  "notify_on_close": False, "close": None, "submit": None, "previous_view_id": None,
                  "root_view_id": view_id, "app_id": self.app_id, "external_id": view.get("external_id", ""),
                  "app_installed_team_id": self.team_id, "bot_id": self.bot_id}
        self.home_views[user] = stored
        return {"ok": True, "view": stored}

    _reactions_remove = _reactions_add


STREAMING, STOPPED, STOPPED_BY_USER, EXPIRED = "streaming", "stopped", "stopped_by_user", "expired"
CHUNK_TYPES = ("markdown_text", "task_update", "plan_update", "blocks")   # slack_sdk.models.messages.chunk
TASK_STATUSES = ("pending", "in_progress", "complete", "error")
_TS = re.compile(r"\d+\.\d+")


@dataclass
class StreamedMessage:
    """One message streamed with chat.startStream / appendStream / stopStream: what the person saw,
    call by call."""

    ts: str
    channel: str
    thread_ts: str | None
    recipient_user_id: str | None
    recipient_team_id: str | None
    task_display_mode: str = "timeline"
    state: str = STREAMING        # STREAMING, STOPPED (chat.stopStream), STOPPED_BY_USER, EXPIRED
    calls: list[tuple[str, list[dict]]] = field(default_factory=list)   # ("start"|"append"|"stop", chunks)
    blocks: list | None = None    # given at chat.stopStream: shown below the text
    metadata: dict | None = None
    message: dict | None = None   # the final message, as chat.stopStream returned it
    stopped_by_user: bool = False  # the person pressed Stop before the app's chat.stopStream
    updates: list[dict] = field(default_factory=list)   # chat.update calls on it (the fallback), in order

    @property
    def chunks(self) -> list[dict]:
        """Every chunk, in the order Slack received them."""
        return [chunk for _, chunks in self.calls for chunk in chunks]

    @property
    def appends(self) -> list[str]:
        """The markdown text each call added, in order (calls that added none left out)."""
        out = ["".join(c["text"] for c in chunks if c["type"] == "markdown_text") for _, chunks in self.calls]
        return [text for text in out if text]

    @property
    def text(self) -> str:
        """The message text so far: every markdown_text chunk, joined."""
        return "".join(self.appends)

    @property
    def tasks(self) -> dict[str, dict]:
        """Each task (task_update ``id``) as last updated: the fields of its updates merged in order."""
        out: dict[str, dict] = {}
        for chunk in self.chunks:
            if chunk["type"] == "task_update":
                out[chunk["id"]] = {**out.get(chunk["id"], {}), **chunk}
        return out

    @property
    def task_history(self) -> list[dict]:
        return [c for c in self.chunks if c["type"] == "task_update"]

    @property
    def plan_title(self) -> str | None:
        titles = [c["title"] for c in self.chunks if c["type"] == "plan_update"]
        return titles[-1] if titles else None


def _invalid(message: str) -> dict:
    """Slack's answer to arguments that break a method's schema."""
    return {"ok": False, "error": "invalid_arguments", "response_metadata": {"messages": [f"[ERROR] {message}"]}}


def _chunks(p: dict) -> list[dict] | dict:
    """The chunks of a stream call (``markdown_text`` first, as one chunk), or Slack's error."""
    chunks = p.get("chunks")
    if chunks is None:
        chunks = []
    if not isinstance(chunks, list):
        return {"ok": False, "error": "invalid_chunks"}
    out = [{"type": "markdown_text", "text": p["markdown_text"]}] if p.get("markdown_text") else []
    for chunk in chunks:
        ok = isinstance(chunk, dict) and chunk.get("type") in CHUNK_TYPES
        if ok and chunk["type"] == "markdown_text":
            ok = isinstance(chunk.get("text"), str)
        elif ok and chunk["type"] == "task_update":
            ok = bool(chunk.get("id")) and isinstance(chunk.get("title"), str) and chunk.get("status") in TASK_STATUSES
        elif ok and chunk["type"] == "plan_update":
            ok = isinstance(chunk.get("title"), str)
        elif ok:
            ok = isinstance(chunk.get("blocks"), list)
        if not ok:
            return {"ok": False, "error": "invalid_chunks"}
        out.append(dict(chunk))
    return out


# The bot scope each method needs (Slack's method reference); the conversations.* methods need the
# read scope of the conversation's type, told here by the id's first letter.
SCOPES = {
    "chat.postMessage": "chat:write", "chat.update": "chat:write", "chat.postEphemeral": "chat:write",
    "users.info": "users:read", "bots.info": "users:read", "conversations.open": "im:write",
    "usergroups.users.list": "usergroups:read", "reactions.add": "reactions:write",
    "reactions.remove": "reactions:write",
    # the agent surfaces: setStatus moved from assistant:write to chat:write in Slack's reference
    # (2026-03); views.publish needs no scope
    "chat.startStream": "chat:write", "chat.appendStream": "chat:write", "chat.stopStream": "chat:write",
    "assistant.threads.setStatus": "chat:write", "assistant.threads.setSuggestedPrompts": "assistant:write",
    "assistant.threads.setTitle": "assistant:write",
}
# Each method's rate tier in Slack's reference, and the calls per minute a tier allows at least
# (https://docs.slack.dev/apis/web-api/rate-limits: Tier 2 20+, Tier 3 50+, Tier 4 100+).
METHOD_TIERS = {"chat.startStream": 2, "chat.stopStream": 2, "chat.appendStream": 4,
                "assistant.threads.setSuggestedPrompts": 4, "assistant.threads.setTitle": 4, "views.publish": 4}
TIER_PER_MINUTE = {1: 1, 2: 20, 3: 50, 4: 100}
_CONVERSATION_SCOPES = {"C": "channels:read", "G": "groups:read", "D": "im:read"}
# What a token is granted by default: an app installed with every scope a chat bot of this kind asks for.
INSTALLED_SCOPES = frozenset({
    "app_mentions:read", "assistant:write", "channels:history", "channels:read", "chat:write", "groups:history", "groups:read",
    "im:history", "im:read", "im:write", "mpim:history", "mpim:read", "reactions:write", "usergroups:read",
    "users:read", "users:read.email"})


def _params(request: Request) -> dict:
    params: dict = dict(request.query)
    content_type = request.headers.get("content-type", "")
    if request.body and content_type.startswith("application/json"):
        params.update(request.json())
    elif request.body and content_type.startswith("application/x-www-form-urlencoded"):
        params.update(request.form())
    for key in ("blocks", "attachments", "chunks", "prompts", "loading_messages"):
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
    return _block_actions(user_id, action, team_id, api_app_id, now,
                          container={"type": "message", "message_ts": (message or {}).get("ts", now),
                                     "channel_id": channel_id, "is_ephemeral": message is None},
                          channel={"id": channel_id, "name": channel_id.lower()}, state={"values": {}},
                          **({"message": message} if message is not None else {}))


def _block_actions(user_id: str, action: dict, team_id: str, api_app_id: str, now: str, **where) -> bytes:
    """A ``block_actions`` payload, form-encoded: what every click shares, and ``where`` it was
    (the container, and the channel and message or the view)."""
    payload = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": team_id},
        "api_app_id": api_app_id,
        "token": "legacy-verification-token",
        "trigger_id": f"{int(time.time())}.trigger",
        "team": {"id": team_id, "domain": "fake"},
        "enterprise": None,
        "is_enterprise_install": False,
        **where,
        "actions": [{"type": "button", "block_id": "block", "action_ts": now, **action}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def home_block_actions_body(user_id: str, view: dict, action: dict, *, team_id: str = "T123",
                            api_app_id: str = "A123") -> bytes:
    """An interactivity POST for a click on a button of the App Home tab ``view`` (as
    ``views.publish`` stored it: ``home_view(user)``). Slack names the view as the container
    (``{"type": "view", "view_id": …}``) and sends the whole view; there is no ``channel`` and no
    ``message``."""
    return _block_actions(user_id, action, team_id, api_app_id, f"{time.time():.6f}",
                          container={"type": "view", "view_id": view.get("id", "V000000")},
                          view={**view, "type": "home"})


def app_home_opened_event(user: str, tab: str = "messages", *, channel: str | None = None,
                          view: dict | None = None, context_channel: str | None = None,
                          team_id: str = "T123") -> dict:
    """The ``app_home_opened`` event (https://docs.slack.dev/reference/events/app_home_opened): ``tab``
    is ``home`` or ``messages``; ``view`` (the Home tab as last published) only when it was; with the
    agent view, the Messages tab's event may carry the ``context`` the person is looking at."""
    event: dict = {"type": "app_home_opened", "user": user, "channel": channel or f"D{user}", "tab": tab,
                   "event_ts": f"{time.time():.6f}"}
    if view is not None and tab == "home":
        event["view"] = view
    if context_channel:
        event["context"] = {"entities": [{"type": "slack#/types/channel_id", "value": context_channel,
                                          "team_id": team_id}]}
    return event


def app_context_changed_event(user: str, channel_id: str | None, *, channel: str | None = None,
                              team_id: str = "T123") -> dict:
    """The ``app_context_changed`` event (https://docs.slack.dev/reference/events/app_context_changed,
    agent_view apps, scope assistant:write): what the person is looking at now, most relevant first;
    ``context`` is ``{}`` when nothing is. The reference's example shows only ``type`` and ``context``;
    Slack's Node types add ``user``, ``channel`` (the app's DM) and ``event_ts``, given here too."""
    context = {"entities": [{"type": "slack#/types/channel_id", "value": channel_id, "team_id": team_id}]} \
        if channel_id else {}
    return {"type": "app_context_changed", "user": user, "channel": channel or f"D{user}", "context": context,
            "event_ts": f"{time.time():.6f}"}


def feedback_buttons_action(block: dict, *, positive: bool) -> dict:
    """The ``actions[0]`` Slack sends for a click on a ``feedback_buttons`` element (the first in
    the ``context_actions`` ``block``): the chosen button's ``value`` and ``text``. The element
    toggles in the client, but every click is sent alike; there is no "unselected" payload."""
    element = next(e for e in block["elements"] if e.get("type") == "feedback_buttons")
    button = element["positive_button" if positive else "negative_button"]
    return {"type": "feedback_buttons", "action_id": element.get("action_id", ""),
            "block_id": block.get("block_id", "block"), "value": button["value"], "text": button["text"]}


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
