"""Whether a conversation is a public channel of the workspace, as Slack says now: what the daily
report needs before it quotes a question asked there (``usecases.report_quotes``).

Public means ``conversations.info`` says a channel (``is_channel``) that is explicitly not private
(``is_private`` false) and is no DM or group DM. Everything else is not public, without asking
Slack when the id or the type recorded at ask time already tells: a DM (D…), a group DM or an
older private channel (G…), a private channel's or DM's message event type; and when Slack cannot
be asked or does not know the channel (logged; the call is counted in
``chatops_slack_api_calls_total``). A channel's answer is kept for the one report it is made for.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

# Slack's channel_type of message events for conversations that are not public channels.
NOT_PUBLIC_TYPES = ("im", "mpim", "group")


class PublicChannels:
    def __init__(self, gateway):
        self._gateway = gateway
        self._known: dict[str, bool] = {}

    def __call__(self, channel: str | None, channel_type: str | None = None) -> bool:
        if not channel or not channel.startswith("C") or channel_type in NOT_PUBLIC_TYPES:
            return False
        if channel not in self._known:
            self._known[channel] = self._ask(channel)
        return self._known[channel]

    def _ask(self, channel: str) -> bool:
        try:
            info = self._gateway.conversation(channel)
        except Exception as exc:  # noqa: BLE001 - not known to be public: its questions are not quoted
            log.warning("could not tell whether a channel is public; its questions are counted, not quoted, "
                        "in the report", extra={"channel": channel, "error": type(exc).__name__})
            return False
        return (info.get("is_channel") is True and info.get("is_private") is False
                and not any(info.get(k) for k in ("is_im", "is_mpim", "is_group")))
