"""People: as the chat platform knows them, and as the directory resolves them (by email only).

The chat side (``bot/people.py`` for Slack) turns its user ids into :class:`Someone`: the
email to look them up by, and whether they are external (another organisation: never looked
up). The use cases turn a ``Someone`` into a :class:`~chatops.access.Principal` through the
identity provider, which knows people by email only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from chatops.access import Principal
from chatops.errors import IdentityUnavailable
from connectors.identity.base import IdentityProvider, UnknownUser

log = logging.getLogger(__name__)

IDENTITY_UNKNOWN = ("I couldn't find you in the company directory, so I can't search any documents "
                    "for you. Ask your IT team to check that your Slack account's email matches your "
                    "directory account.")
IDENTITY_DOWN = ("I couldn't reach the company directory to check what you may see, so I won't "
                 "answer right now. Please try again in a few minutes.")


class Refusal(Exception):
    """The use case will not do this; ``str(self)`` is the message for the person."""


@dataclass(frozen=True)
class Someone:
    """A person as the chat platform knows them."""

    chat_id: str | None            # their id there (Slack user id); None from the CLI
    email: str | None              # what the directory knows them by; None: no email to go on
    external: bool = False         # another organisation (Slack Connect), a guest treated so, or an
                                   # app that is not trusted: public documents only
    bot: bool = False              # this bot itself, or a trusted app: left out of audiences


def resolve(identity: IdentityProvider, who: Someone) -> Principal:
    """The person's principal. External people see public documents only; someone the directory
    does not know, or a directory that cannot be asked, is refused (fail closed)."""
    if who.external:
        log.info("external person; public documents only", extra={"user": who.chat_id})
        return Principal.unknown(who.chat_id)
    if not who.email:
        raise Refusal(IDENTITY_UNKNOWN)
    try:
        found = identity.by_email(who.email)
    except UnknownUser:
        log.warning("person not in the directory; refusing", extra={"user": who.chat_id})
        raise Refusal(IDENTITY_UNKNOWN) from None
    except IdentityUnavailable as exc:
        log.error("identity provider unavailable; refusing", extra={"error": str(exc)})
        raise Refusal(IDENTITY_DOWN) from None
    return Principal(found.email, found.groups, who.chat_id or found.slack_user_id, found.display_name,
                     found.object_id)


def by_email(identity: IdentityProvider, email: str) -> Principal:
    """A person named by email (the CLI's ``--as``)."""
    return resolve(identity, Someone(chat_id=None, email=email))


def reader(identity: IdentityProvider, who: Someone) -> Principal:
    """Someone who will read an answer: whoever cannot be resolved sees public documents only."""
    try:
        return resolve(identity, who)
    except Refusal:
        return Principal.unknown(who.chat_id)
