"""The configured Entra app's credential (its certificate or its secret, as msal takes it) and its
Microsoft Graph client, which the identity provider, the console's sign-in, the SharePoint source
and ``chatops doctor`` build from the same settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import requests

from chatops.errors import ConfigError
from connectors.microsoft.graph import GraphClient
from connectors.microsoft.settings import EntraSettings

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----", re.DOTALL)


def app_credential(s: EntraSettings) -> str | dict:
    """The Entra app's credential as msal takes it: its certificate when
    ``ENTRA_CLIENT_CERTIFICATE_PATH`` is set (a PEM holding the private key and the certificate,
    or a .pfx), else its secret."""
    path = s.entra_client_certificate_path
    password = s.entra_client_certificate_password.get_secret_value() if s.entra_client_certificate_password else None
    if path:
        if Path(path).suffix.lower() in (".pfx", ".p12"):
            if not Path(path).is_file():
                raise ConfigError(f"ENTRA_CLIENT_CERTIFICATE_PATH: {path} does not exist")
            return {"private_key_pfx_path": str(path), **({"passphrase": password} if password else {})}
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"ENTRA_CLIENT_CERTIFICATE_PATH: cannot read {path} ({exc.strerror})") from None
        blocks = {m.group(1): m.group(0) for m in _PEM_BLOCK.finditer(text)}
        key = next((v for k, v in blocks.items() if k.endswith("PRIVATE KEY")), None)
        cert = blocks.get("CERTIFICATE")
        if not key or not cert:
            raise ConfigError(f"ENTRA_CLIENT_CERTIFICATE_PATH: {path} must hold the private key and the "
                              "certificate (PEM), or be a .pfx file")
        return {"private_key": key, "public_certificate": cert, **({"passphrase": password} if password else {})}
    if s.entra_client_secret:
        return s.entra_client_secret.get_secret_value()
    raise ConfigError("the Entra app needs ENTRA_CLIENT_SECRET or ENTRA_CLIENT_CERTIFICATE_PATH")


def graph_client(s: EntraSettings, http: requests.Session | None = None, **kwargs: Any) -> "GraphClient":
    """The Graph client of the configured Entra app (identity, actions and sources share it)."""
    if not s.configured:
        raise ConfigError("Microsoft Graph needs ENTRA_TENANT_ID and ENTRA_CLIENT_ID (and a secret or certificate)")
    return GraphClient(s.entra_tenant_id, s.entra_client_id, app_credential(s),
                       authority_host=s.entra_authority_host, graph_url=s.graph_url,
                       instance_discovery=s.entra_instance_discovery, http_client=http, **kwargs)
