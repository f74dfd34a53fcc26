"""The channel a person is looking at while the agent is open beside it.

Slack sends ``app_context_changed`` (agent apps: ``features.agent_view``) whenever it changes, and
the same ``context`` on ``app_home_opened``: ``{"entities": [...]}`` ordered by relevance, each
``{"type": "slack#/types/channel_id", "value": "C…", "team_id": …}`` (or a message, a canvas, a
list); an empty object when the person looks at nothing. The first channel is kept per person in
Redis for a short time (``CONTEXT_TTL``). A question in the Messages tab then takes that channel's
per-channel settings for its sources and actions; its audience stays the person alone (a DM).
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Any

from chatops import keys
from chatops.channels import ChannelPolicy

log = logging.getLogger(__name__)

CONTEXT_TTL = 900                     # seconds: a context older than this is forgotten
CHANNEL_ENTITY = "slack#/types/channel_id"
MESSAGE_ENTITY = "slack#/types/message_context"
_CHANNEL = re.compile(r"^[CG][A-Z0-9]{2,}$")     # public and private channels; a DM has no settings of its own


def channel_in(context: Any) -> str | None:
    """The most relevant channel in an event's ``context`` (None: none)."""
    entities = context.get("entities") if isinstance(context, dict) else None
    for entity in entities if isinstance(entities, list) else ():
        if not isinstance(entity, dict):
            continue
        value = entity.get("value")
        if entity.get("type") == MESSAGE_ENTITY and isinstance(value, dict):
            value = value.get("channel_id")
        elif entity.get("type") != CHANNEL_ENTITY:
            continue
        if isinstance(value, str) and _CHANNEL.match(value):
            return value
    return None


def remember(state, user: Any, context: Any) -> None:
    """Keep (or, when the context names no channel, forget) the channel ``user`` looks at."""
    if not isinstance(user, str) or not user:
        return
    channel = channel_in(context)
    if channel is None:
        state.drop_json(keys.CACHE_APP_CONTEXT, user)
    else:
        state.set_json(channel, CONTEXT_TTL, keys.CACHE_APP_CONTEXT, user)


def looking_at(state, user: Any) -> str | None:
    if state is None or not isinstance(user, str) or not user:
        return None
    try:
        channel = state.get_json(keys.CACHE_APP_CONTEXT, user)
    except Exception as exc:  # noqa: BLE001 - no context: the direct message's own settings apply
        log.warning("could not read the channel a person looks at", extra={"error": type(exc).__name__})
        return None
    return channel if isinstance(channel, str) and _CHANNEL.match(channel) else None


def in_context(dm: ChannelPolicy, looked_at: ChannelPolicy) -> ChannelPolicy:
    """A direct message's policy with the sources and actions of the channel the person looks at
    (a channel where the bot is disabled lends nothing). Everything else stays the DM's."""
    if not looked_at.enabled:
        return dm
    return replace(dm, sources=looked_at.sources, actions=looked_at.actions)
