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


def _entra(s: Settings, http: requests.Session | None) -> IdentityProvider:
    if not (s.entra_tenant_id and s.entra_client_id and s.entra_client_secret):
        raise ConfigError("Entra needs ENTRA_TENANT_ID, ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET")
    return EntraProvider(s.entra_tenant_id, s.entra_client_id, s.entra_client_secret.get_secret_value(),
                         authority_host=s.entra_authority_host, graph_url=s.graph_url,
                         instance_discovery=s.entra_instance_discovery, http_client=http)


def _directory(s: Settings, http: requests.Session | None) -> IdentityProvider:
    if not s.directory_file:
        raise ConfigError("the directory provider needs CHATOPS_DIRECTORY_FILE")
    return DirectoryProvider.from_file(s.directory_file, groups=s.group_names)


PROVIDERS: dict[str, ProviderKind] = {p.name: p for p in (
    ProviderKind("entra", _entra, lambda s: bool(s.entra_tenant_id and s.entra_client_id)),
    ProviderKind("directory", _directory, lambda s: bool(s.directory_file)),
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
