"""A person's groups at question time: the identity provider's (Entra object ids) plus the
groups the synced sources keep themselves (SharePoint site groups, as ``<site id>::<group id>``)
that the person is in, directly or through one of those identity-provider groups.

The source groups are read from the store on every lookup, outside the identity cache, so a
person removed from a site group stops matching as soon as the next permission sync has
replaced that group's members. A store that cannot be read makes the lookup fail (the caller
fails closed), never returns the provider's groups alone as if complete.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from chatops.access import Principal
from chatops.errors import IdentityUnavailable
from chatops.store.sources import SourceStates
from connectors.identity.base import IdentityProvider

log = logging.getLogger(__name__)


class WithSourceGroups:
    def __init__(self, inner: IdentityProvider, states: SourceStates):
        self.inner = inner
        self.name = inner.name
        self._states = states

    def by_email(self, email: str) -> Principal:
        person = self.inner.by_email(email)
        try:
            extra = self._states.groups_of(person.email or email, person.groups)
        except Exception as exc:  # noqa: BLE001 - unknown memberships: refuse rather than guess
            log.error("source group memberships unreadable", extra={"error": type(exc).__name__})
            raise IdentityUnavailable("the synced source groups could not be read") from None
        return replace(person, groups=person.groups | frozenset(extra)) if extra else person
