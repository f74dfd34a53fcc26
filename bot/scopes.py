"""The Slack scopes the code needs, and why: every Web API method it calls and every event it
subscribes to, with what Slack's reference requires for it.

``tests/unit/test_manifest.py`` keeps this table and ``manifest.yml`` matched to the code (it finds
the calls and the listeners itself); ``missing_scopes`` tells what a token lacks, given the scopes
Slack reports as granted (the ``x-oauth-scopes`` header of any Web API response).

Sources: Slack's method reference, ``https://docs.slack.dev/reference/methods/<method>``, and event
reference, ``https://docs.slack.dev/reference/events/<event>`` ("Required scopes", bot token).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Conversation types, as Slack names them (conversations.list ``types``).
PUBLIC = "public_channel"
PRIVATE = "private_channel"
MPIM = "mpim"           # a group DM
IM = "im"               # a DM with the bot

BOT = "bot"             # oauth_config.scopes.bot in the manifest: the bot token (xoxb-)
APP = "app"             # an app-level token's scope (xapp-, Socket Mode): made in the app's settings, not the manifest


@dataclass(frozen=True, eq=False)
class Need:
    """What Slack requires of the token for one method or event, and what the code uses it for.

    ``all_of``: every one of these scopes, on every call.
    ``any_of``: Slack accepts any one of these, the one for the conversation's type (type -> scope);
    the code needs the one of each type in ``used_on``, the conversations it calls it on.
    No scope at all: both empty.
    """

    why: str
    all_of: tuple[str, ...] = ()
    any_of: Mapping[str, str] = field(default_factory=dict)
    used_on: frozenset[str] = frozenset()
    token: str = BOT

    @property
    def scopes(self) -> frozenset[str]:
        """The scopes the code needs for it."""
        return frozenset(self.all_of) | {self.any_of[kind] for kind in self.used_on}


# conversations.info / conversations.members: one read scope per conversation type.
_READ = {PUBLIC: "channels:read", PRIVATE: "groups:read", MPIM: "mpim:read", IM: "im:read"}
# Answers go to public and private channels and group DMs, where the audience is everyone in it;
# in a DM the asker is the audience, so a DM is never listed or looked up (no im:read).
_SHARED = frozenset({PUBLIC, PRIVATE, MPIM})

METHODS: dict[str, Need] = {
    "chat.postMessage": Need(
        "answers, proposals, escalations, the maintenance report (bot/gateway.py post)",
        all_of=("chat:write",)),
    "chat.update": Need(
        "the 'working on it' placeholder becomes the answer; a proposal shows its decision",
        all_of=("chat:write",)),
    "chat.postEphemeral": Need(
        "what only the clicker or asker may see: refusals, private notes, 'slow down'",
        all_of=("chat:write",)),
    "conversations.open": Need(
        "a DM to one person: 'send me the full answer', escalations from a DM (never a group DM: "
        "no mpim:write)",
        any_of={IM: "im:write", MPIM: "mpim:write"}, used_on=frozenset({IM})),
    "conversations.members": Need(
        "who will read a channel answer: its audience (bot/channels.py)",
        any_of=_READ, used_on=_SHARED),
    "conversations.info": Need(
        "a channel's name, for `channels:` entries by name (bot/policies.py)",
        any_of=_READ, used_on=_SHARED),
    "users.info": Need(
        "who someone is: bots, other organisations, guests (users:read), and the profile email "
        "that matches them to the directory (users:read.email; without it the field is absent)",
        all_of=("users:read", "users:read.email")),
    "bots.info": Need(
        "chatops doctor: the app the bot token belongs to, held against SLACK_APP_ID (bot/doctor.py)",
        all_of=("users:read",)),
    "usergroups.users.list": Need(
        "the escalation user group's members: who may press Resolved (bot/feedback/handler.py)",
        all_of=("usergroups:read",)),
    "views.open": Need("the 'what was wrong' form and the reject-reason dialog (a trigger_id is enough)"),
    "auth.test": Need("the bot's own workspace and organisation (bot/people.py); Bolt's App checks its "
                      "token with it at start"),
    "apps.connections.open": Need(
        "Socket Mode: SocketModeHandler opens its WebSocket with SLACK_APP_TOKEN",
        all_of=("connections:write",), token=APP),
    # The agent messaging experience (issue 22; manifest features.agent_view).
    "chat.startStream": Need(
        "a streamed answer opens in the asker's thread, once its audience is settled (in a channel with "
        "recipient_user_id and recipient_team_id)",
        all_of=("chat:write",)),
    "chat.appendStream": Need(
        "the streamed answer's text, appended at safe boundaries, and its task updates (rate tier 4)",
        all_of=("chat:write",)),
    "chat.stopStream": Need(
        "the streamed answer ends: its Sources and feedback buttons; also after the person pressed Stop",
        all_of=("chat:write",)),
    "assistant.threads.setStatus": Need(
        "the thread's status and loading messages while retrieval and tools run (chat:write since "
        "Slack's reference of 2026-03; assistant:write before)",
        all_of=("chat:write",)),
    "assistant.threads.setSuggestedPrompts": Need(
        "suggested prompts when someone opens the Messages tab (an agent_view app: else not_agent_app)",
        all_of=("assistant:write",)),
    "views.publish": Need("the App Home tab: sources, recent questions, pending proposals, connected tools"),
}

# WebClient methods that call the Web API through a helper object rather than api_call (the scan in
# tests/unit/test_manifest.py cannot see through them): the methods the helper calls.
BY_HELPER: dict[str, tuple[str, ...]] = {
    "chat_stream": ("chat.startStream", "chat.appendStream", "chat.stopStream"),   # slack_sdk ChatStream
}

# Bolt's listener utilities (arguments of a listener, called by name) -> the methods each calls.
BY_UTILITY: dict[str, tuple[str, ...]] = {
    "say": ("chat.postMessage",),
    "say_stream": BY_HELPER["chat_stream"],                  # WebClient.chat_stream with the event's thread
    "set_status": ("assistant.threads.setStatus",),
    "set_suggested_prompts": ("assistant.threads.setSuggestedPrompts",),
    "set_title": ("assistant.threads.setTitle",),
}

# Web API methods slack_bolt / slack_sdk classes call on their own (class name -> methods): every
# Socket Mode adapter of Bolt is a SocketModeHandler around slack_sdk's SocketModeClient.
BY_LIBRARY: dict[str, tuple[str, ...]] = {
    "App": ("auth.test",),                          # token_verification_enabled, the default
    "AsyncApp": ("auth.test",),
    "SocketModeHandler": ("apps.connections.open",),
    "AsyncSocketModeHandler": ("apps.connections.open",),
    "SocketModeClient": ("apps.connections.open",),
}

_JOINS = {PUBLIC: "channels:read", PRIVATE: "groups:read"}   # member_joined/left_channel: no group DMs

EVENTS: dict[str, Need] = {
    "app_mention": Need("questions: @chatops in a channel", all_of=("app_mentions:read",)),
    "message.im": Need("questions in a DM with the bot", all_of=("im:history",)),
    "message.channels": Need("follow-ups in threads the bot answered, public channels",
                             all_of=("channels:history",)),
    "message.groups": Need("the same in private channels", all_of=("groups:history",)),
    "message.mpim": Need("the same in group DMs", all_of=("mpim:history",)),
    "member_joined_channel": Need("drop the channel's cached member list: the next answer there is "
                                  "narrowed to who can read it", any_of=_JOINS, used_on=frozenset(_JOINS)),
    "member_left_channel": Need("the same when someone leaves", any_of=_JOINS, used_on=frozenset(_JOINS)),
    # The agent messaging experience (features.agent_view).
    "app_home_opened": Need("the Messages tab opened (tab: messages): suggested prompts; the Home tab "
                            "(tab: home): views.publish"),
    "app_context_changed": Need("the channel the person is looking at: a Messages-tab question may use its "
                                "settings (the audience stays the person); sent to agent_view apps only",
                                all_of=("assistant:write",)),
    "agent_session_stopped": Need("the person pressed Stop on a streamed answer: generation ends, the answer is "
                                  "recorded as stopped (appends after it get stopped_by_user)",
                                  all_of=("chat:write",)),
}

# Scopes kept although no method or event above needs them, each with its reason. Empty: least privilege.
EXTRA: dict[str, str] = {}


def listener_type(event: str) -> str:
    """The ``type`` a Bolt listener registers for a subscribed event: ``message.im`` -> ``message``."""
    return event.split(".", 1)[0]


def required(token: str = BOT) -> dict[str, list[str]]:
    """Each scope the code needs on ``token`` -> the methods and events that need it, sorted."""
    out: dict[str, list[str]] = {}
    for name, need in [*METHODS.items(), *EVENTS.items()]:
        if need.token == token:
            for scope in need.scopes:
                out.setdefault(scope, []).append(name)
    return {scope: sorted(out[scope]) for scope in sorted(out)}


def granted_scopes(header: str | None) -> set[str]:
    """The scopes in an ``x-oauth-scopes`` header ("chat:write,users:read")."""
    return {s.strip() for s in (header or "").split(",") if s.strip()}


@dataclass(frozen=True)
class Missing:
    scope: str
    needed_by: tuple[str, ...]     # methods and events

    def __str__(self) -> str:
        return f"{self.scope} (for {', '.join(self.needed_by)})"


def missing_scopes(granted: set[str]) -> list[Missing]:
    """The bot scopes the code needs that ``granted`` lacks, each with what needs it."""
    return [Missing(scope, tuple(names)) for scope, names in required(BOT).items() if scope not in granted]
