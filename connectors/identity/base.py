"""The identity interface: email (or Slack user id) in, a Principal out.

Providers raise ``UnknownUser`` when the person is not in the directory and
``IdentityUnavailable`` when the directory could not be asked (network,
throttling, bad credentials). Callers fail closed on both.
"""

from __future__ import annotations

from typing import Callable, Protocol

from chatops.access import Principal


class UnknownUser(Exception):
    """The directory does not know this person."""


class ExternalPerson(UnknownUser):
    """A Slack user who is not one of the organisation's own people: someone of another
    organisation in a shared (Slack Connect) channel, or a guest when guests are treated as
    unknown. Never resolved through the directory (a profile email is theirs to choose);
    sees public documents only."""


class IdentityUnavailable(Exception):
    """The directory could not be reached or refused to answer."""


# Looks up a Slack user's email (users.info); supplied by the Slack side.
EmailLookup = Callable[[str], "str | None"]


class IdentityProvider(Protocol):
    name: str

    def by_email(self, email: str) -> Principal:
        """Resolve a person by email. Raises UnknownUser / IdentityUnavailable."""
        ...

    def by_slack_id(self, slack_user_id: str) -> Principal:
        """Resolve a Slack user. Raises UnknownUser / IdentityUnavailable."""
        ...


def lookup_email(lookup: EmailLookup | None, slack_user_id: str) -> str | None:
    """The Slack user's email; a Slack failure means we could not check, not an unknown person."""
    if lookup is None:
        return None
    try:
        return lookup(slack_user_id)
    except UnknownUser:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the directory is unavailable
        raise IdentityUnavailable(f"could not read the Slack profile: {type(exc).__name__}") from None
