"""The Entra app's settings: Entra ID for people (connectors/identity/entra.py), and Microsoft
Graph for SharePoint sources, the console's sign-in (connectors/identity/oidc.py), ``chatops
doctor`` and Graph's change notifications. (The entra_group action names its own app in
CHATOPS_CONFIG.)"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr

from chatops.settings import PluginSettings, env


class EntraSettings(PluginSettings):
    entra_tenant_id: str | None = env("ENTRA_TENANT_ID")
    entra_client_id: str | None = env("ENTRA_CLIENT_ID")
    entra_client_secret: SecretStr | None = env("ENTRA_CLIENT_SECRET")
    entra_authority_host: str = Field(
        default="https://login.microsoftonline.com",
        validation_alias=AliasChoices("ENTRA_AUTHORITY_HOST"),
    )
    graph_url: str = Field(
        default="https://graph.microsoft.com/v1.0", validation_alias=AliasChoices("GRAPH_URL")
    )
    # False for an authority msal does not know (a sovereign cloud, a proxy, a test double): msal
    # then never asks Microsoft's public instance discovery. TLS trust: REQUESTS_CA_BUNDLE.
    entra_instance_discovery: bool = Field(default=True,
                                           validation_alias=AliasChoices("ENTRA_INSTANCE_DISCOVERY"))
    # A certificate for the Entra app (PEM with the private key and the certificate, or a .pfx):
    # used instead of the secret when set. SharePoint sources need it: SharePoint's REST API (site
    # group members) refuses app-only tokens obtained with a client secret.
    entra_client_certificate_path: Path | None = env("ENTRA_CLIENT_CERTIFICATE_PATH")
    entra_client_certificate_password: SecretStr | None = env("ENTRA_CLIENT_CERTIFICATE_PASSWORD")
    # Graph change notifications: the secret each subscription's clientState is derived from (with
    # CHATOPS_PUBLIC_URL, where Graph delivers them). Without them, polling alone keeps sources fresh.
    graph_notify_secret: SecretStr | None = env("GRAPH_NOTIFY_SECRET")

    @property
    def configured(self) -> bool:
        """The app is named (tenant and client): "auto" picks Entra for people, and the console
        signs people in with Microsoft."""
        return bool(self.entra_tenant_id and self.entra_client_id)

    @property
    def has_credential(self) -> bool:
        """A secret or a certificate to get the app's tokens with."""
        return bool(self.entra_client_secret or self.entra_client_certificate_path)
