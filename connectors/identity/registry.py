"""Identity providers by name (``CHATOPS_IDENTITY_PROVIDER``; "auto" picks the first one whose
settings are configured, in the order below). Adding one: its module, its settings model beside
it, and one line in ``PROVIDERS``.

A provider knows people by email only (connectors/identity/base.py). The composition root
wraps whichever is chosen in the Redis cache (``CachedProvider``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import requests

from chatops.errors import ConfigError
from chatops.settings import PluginSettings, Settings
from connectors.identity.base import IdentityProvider
from connectors.identity.directory import DirectoryProvider
from connectors.identity.directory_settings import DirectorySettings
from connectors.identity.entra import EntraProvider
from connectors.identity.settings import IdentitySettings
from connectors.microsoft.settings import EntraSettings

SETTINGS: tuple[type[PluginSettings], ...] = (IdentitySettings,)   # the registry's own: which, how long cached


@dataclass(frozen=True)
class ProviderKind:
    name: str
    settings: type[PluginSettings]     # its environment settings; ``configured``: "auto" may pick it
    build: Callable[[Settings, requests.Session | None], IdentityProvider]
    object_ids: bool = False           # its groups are object ids: configured group names must be too (or aliases)

    def configured(self, settings: Settings) -> bool:
        return settings.of(self.settings).configured


PROVIDERS: dict[str, ProviderKind] = {p.name: p for p in (
    ProviderKind("entra", EntraSettings, EntraProvider.from_settings, object_ids=True),
    ProviderKind("directory", DirectorySettings, DirectoryProvider.from_settings),
)}


def provider_for(settings: Settings) -> ProviderKind:
    name = settings.of(IdentitySettings).identity_provider
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


def group_ids_are_object_ids(settings: Settings) -> bool:
    """The provider chosen (or, with "auto", the one that would be) knows groups by object id
    (``Settings.load(object_ids=)``: configured group names must then be object ids or aliases)."""
    try:
        return provider_for(settings).object_ids
    except ConfigError:
        return False


def build_identity(settings: Settings, http: requests.Session | None = None) -> IdentityProvider:
    return provider_for(settings).build(settings, http)
