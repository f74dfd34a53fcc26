"""The identity interface: an email in, a Principal out.

Providers know people by email only; the chat side (bot/people.py) turns its user ids into
the email to ask with, and decides who is external (never looked up).

Providers raise ``UnknownUser`` when the person is not in the directory and
``IdentityUnavailable`` (``chatops/errors.py``: the layers above catch it) when the directory
could not be asked (network, throttling, bad credentials). Callers fail closed on both.
"""

from __future__ import annotations

from typing import Protocol

from chatops.access import Principal


class UnknownUser(Exception):
    """The directory does not know this person."""


class IdentityProvider(Protocol):
    name: str

    def by_email(self, email: str) -> Principal:
        """Resolve a person by email. Raises UnknownUser / IdentityUnavailable."""
        ...
