"""What the console shows of people and of what they asked.

* ``full``: question text, Slack user ids and emails;
* ``anonymized``: question text, and people as stable pseudonyms ("person-" and the first 8 hex
  digits of an HMAC of their id under the console's secret: the same person is the same
  pseudonym on every page and across restarts, and nobody can compute it without the secret);
* ``off``: neither (counts and metadata only; answers and feedback reasons are hidden too,
  since they can repeat the question, and so are the titles of the documents one question
  retrieved or cited, which tell what it was about).

Where a question was asked: a channel's id under every mode; a direct message's (one DM is one
person, a group DM a handful) only under ``full``, else "direct message".

The mode starts as ``CHATOPS_CONSOLE_PRIVACY``; an admin can change it in the console, which
keeps the choice in Redis for every web process (``chatops.privacy``).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from chatops.privacy import MODES, PrivacyMode

HIDDEN = "hidden"
DIRECT_MESSAGE = "direct message"
# Slack's conversation types that are a channel, not some people (channel_type of message events):
# "channel" public, "group" private; "cli" is ``chatops ask``'s own label.
CHANNEL_TYPES = ("channel", "group", "cli")


@dataclass(frozen=True)
class Privacy:
    mode: str
    key: bytes

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown privacy mode {self.mode!r} (one of {', '.join(MODES)})")

    @property
    def shows_text(self) -> bool:
        return self.mode != "off"

    @property
    def shows_people(self) -> bool:
        return self.mode != "off"

    def pseudonym(self, identifier: str) -> str:
        digest = hmac.new(self.key, f"person:{identifier.strip().lower()}".encode(), hashlib.sha256).hexdigest()
        return f"person-{digest[:8]}"

    def person(self, slack_id: str | None = None, email: str | None = None) -> str | None:
        """How one person is shown (None: nobody, or not shown)."""
        if not (slack_id or email) or self.mode == "off":
            return None
        if self.mode == "full":
            return " · ".join(p for p in (slack_id, email) if p)
        return self.pseudonym(slack_id or email or "")

    def text(self, value: str | None) -> str | None:
        """A question, an answer or a reason (None: not shown)."""
        return value if self.mode != "off" else None

    @property
    def shows_documents(self) -> bool:
        """Whether one question's retrieved and cited documents are listed (else counted)."""
        return self.mode != "off"

    def channel(self, channel: str | None, channel_type: str | None = None) -> str | None:
        """How the conversation a question was asked in is shown (None: none was recorded). Under
        ``full`` its id; otherwise a channel's id, and anything not known to be a channel (a DM, a
        group DM, an id Slack gives DMs) as "direct message"."""
        if not channel:
            return None
        if self.mode == "full" or is_channel(channel, channel_type):
            return channel
        return DIRECT_MESSAGE


def is_channel(channel: str, channel_type: str | None) -> bool:
    """A channel (public or private), not some people: told by the type recorded at ask time, or
    for a question recorded without one (an @-mention), by a C id, which Slack gives only channels
    (DMs are D, group DMs and older private channels G: not known, so not a channel)."""
    if channel_type is not None:
        return channel_type in CHANNEL_TYPES
    return channel.startswith("C")


class PrivacySetting:
    """The current mode, shared by the web processes through Redis."""

    def __init__(self, client, prefix: str, default: str, key: bytes):
        self._mode = PrivacyMode(client, prefix, default)
        self._key = key

    def current(self) -> Privacy:
        return Privacy(self._mode.current(), self._key)

    def set(self, mode: str) -> None:
        self._mode.set(mode)
