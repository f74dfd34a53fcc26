"""What the console shows of people and of what they asked.

* ``full``: question text, Slack user ids and emails;
* ``anonymized``: question text, and people as stable pseudonyms ("person-" and the first 8 hex
  digits of an HMAC of their id under the console's secret: the same person is the same
  pseudonym on every page and across restarts, and nobody can compute it without the secret);
* ``off``: neither (counts and metadata only; answers and feedback reasons are hidden too,
  since they can repeat the question).

The mode starts as ``CHATOPS_CONSOLE_PRIVACY``; an admin can change it in the console, which
keeps the choice in Redis for every web process.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

MODES = ("full", "anonymized", "off")
HIDDEN = "hidden"


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


class PrivacySetting:
    """The current mode, shared by the web processes through Redis."""

    def __init__(self, client, prefix: str, default: str, key: bytes):
        if default not in MODES:
            raise ValueError(f"unknown privacy mode {default!r}")
        self._redis = client
        self._key_name = f"{prefix}:console:privacy"
        self._default = default
        self._key = key

    def current(self) -> Privacy:
        raw = self._redis.get(self._key_name)
        mode = raw.decode() if isinstance(raw, bytes) else raw
        return Privacy(mode if mode in MODES else self._default, self._key)

    def set(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown privacy mode {mode!r}")
        self._redis.set(self._key_name, mode)
