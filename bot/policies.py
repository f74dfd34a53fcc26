"""Which ``channels:`` entry applies to a Slack conversation (chatops/channels.py).

Entries by id need nothing from Slack. Entries by name need the channel's name, read with
``conversations.info`` and kept in Redis for an hour; a channel whose name cannot be read
gets the default (logged), like any channel without an entry.
"""

from __future__ import annotations

import logging

from chatops import keys
from chatops.channels import ChannelPolicies, ChannelPolicy

log = logging.getLogger(__name__)

NAME_TTL = 3600


class ChannelPolicyLookup:
    def __init__(self, policies: ChannelPolicies, gateway=None, state=None):
        self.policies = policies
        self.gateway = gateway
        self.state = state

    def for_channel(self, channel: str | None, channel_type: str | None = None) -> ChannelPolicy:
        if not channel or channel_type == "im" or channel.startswith("D"):
            return self.policies.default
        name = self._name(channel) if self.policies.needs_names else None
        return self.policies.for_channel(channel, name)

    def _name(self, channel: str) -> str | None:
        cached = self.state.get_json(keys.CACHE_CHANNEL_NAME, channel) if self.state is not None else None
        if isinstance(cached, str):
            return cached
        if self.gateway is None:
            return None
        try:
            name = self.gateway.channel_name(channel) or ""
        except Exception as exc:  # noqa: BLE001 - no name: the default applies
            log.warning("could not read a channel's name; its default settings apply",
                        extra={"channel": channel, "error": type(exc).__name__})
            return None
        if self.state is not None:
            self.state.set_json(name, NAME_TTL, keys.CACHE_CHANNEL_NAME, channel)
        return name or None
