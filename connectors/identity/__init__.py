"""Identity providers: who is this Slack user, and which groups are they in."""

from connectors.identity.base import ExternalPerson, IdentityProvider, IdentityUnavailable, UnknownUser

__all__ = ["ExternalPerson", "IdentityProvider", "IdentityUnavailable", "UnknownUser"]
