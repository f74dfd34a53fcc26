"""The identity registry's own settings: which provider, and how long people are cached."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from chatops.settings import PluginSettings


class IdentitySettings(PluginSettings):
    # "auto" (the first provider whose settings are there, in the registry's order: Entra, then the
    # directory file) or a provider's name (connectors/identity/registry.py).
    identity_provider: str = Field(default="auto", validation_alias=AliasChoices("CHATOPS_IDENTITY_PROVIDER"))
    # Seconds a person's groups (and a Slack user's profile) are kept in Redis.
    identity_cache_ttl: int = Field(default=900, validation_alias=AliasChoices("CHATOPS_IDENTITY_TTL"))
