"""Identity providers: who is this Slack user, and which groups are they in."""

from connectors.identity.base import IdentityProvider, UnknownUser

__all__ = ["IdentityProvider", "UnknownUser"]
