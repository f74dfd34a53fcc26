"""Who a person is: the identity provider from its registry (imported here, where it is built:
msal is not for the web process), behind the Redis cache, with the synced sources' own groups."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatops_app.container.core import once
from connectors.identity.cached import CachedProvider
from connectors.identity.settings import IdentitySettings
from connectors.identity.source_groups import WithSourceGroups

if TYPE_CHECKING:
    from chatops_app.container import Container


class IdentityParts:
    @once
    def identity(self: Container):
        from connectors.identity.registry import build_identity   # msal: not for the web process

        s = self.settings
        cached = CachedProvider(build_identity(s, self._http_client), self.redis, prefix=s.key_prefix,
                                ttl=s.of(IdentitySettings).identity_cache_ttl)
        # With synced sources, a person's groups include the sources' own groups they are in.
        return WithSourceGroups(cached, self.source_states) if self.sources else cached
