"""Identity providers by name (``CHATOPS_IDENTITY_PROVIDER``; "auto" picks the first one whose
settings are present, in the order below). Adding one: its module and one line in ``PROVIDERS``.

A provider knows people by email only (connectors/identity/base.py). The composition root
wraps whichever is chosen in the Redis cache (``CachedProvider``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import requests

from chatops.errors import ConfigError
from chatops.settings import Settings
from connectors.identity.base import IdentityProvider
from connectors.identity.directory import DirectoryProvider
from connectors.identity.entra import EntraProvider


@dataclass(frozen=True)
class ProviderKind:
    name: str
    build: Callable[[Settings, requests.Session | None], IdentityProvider]
    configured: Callable[[Settings], bool]     # its settings are there ("auto" picks it)


PROVIDERS: dict[str, ProviderKind] = {p.name: p for p in (
    ProviderKind("entra", EntraProvider.from_settings, EntraProvider.configured),
    ProviderKind("directory", DirectoryProvider.from_settings, DirectoryProvider.configured),
)}


def provider_for(settings: Settings) -> ProviderKind:
    name = settings.identity_provider
    if name == "auto":
        for kind in PROVIDERS.values():
            if kind.configured(settings):
                return kind
        raise ConfigError("no identity provider configured: set ENTRA_TENANT_ID/ENTRA_CLIENT_ID/"
                          "ENTRA_CLIENT_SECRET or CHATOPS_DIRECTORY_FILE")
    kind = PROVIDERS.get(name)
    if kind is None:
        raise ConfigError(f"CHATOPS_IDENTITY_PROVIDER: unknown provider {name!r} "
                          f"(known: auto, {', '.join(PROVIDERS)})")
    return kind


def build_identity(settings: Settings, http: requests.Session | None = None) -> IdentityProvider:
    return provider_for(settings).build(settings, http)
