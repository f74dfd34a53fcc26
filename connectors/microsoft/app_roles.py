"""The Entra app's application permissions: what each feature needs, and what a token says the
app was granted (the ``roles`` claim of an app-only access token), for ``chatops doctor``.

Each feature that calls Microsoft Graph declares its needs as :class:`RoleNeed` (any one of a few
permissions: a broader one covers a narrower one); the checks hold them against the token Entra
actually issues, so a permission that was added but never admin-consented shows up too.
The tables follow Microsoft Graph's permissions reference and docs/sources.md.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography import x509

from chatops.checks import CheckFailed, CheckWarning
from connectors.microsoft.graph import GraphClient, GraphError
from connectors.microsoft.settings import EntraSettings

_READ_USERS = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")
_READ_MEMBERS = ("GroupMember.Read.All", "Group.Read.All", "GroupMember.ReadWrite.All", "Group.ReadWrite.All",
                 "Directory.Read.All", "Directory.ReadWrite.All")
_WRITE_MEMBERS = ("GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All")
SITES = ("Sites.Selected", "Sites.Read.All", "Sites.ReadWrite.All", "Sites.Manage.All", "Sites.FullControl.All")


@dataclass(frozen=True)
class RoleNeed:
    any_of: tuple[str, ...]
    why: str

    def __str__(self) -> str:
        return f"{' or '.join(self.any_of[:2])} ({self.why})"


IDENTITY = (RoleNeed(_READ_USERS, "people looked up by email"),
            RoleNeed(_READ_MEMBERS, "people's groups, transitiveMemberOf"))
SHAREPOINT = (RoleNeed(SITES + ("Files.Read.All", "Files.ReadWrite.All"), "SharePoint sites, libraries and files"),
              RoleNeed(_READ_USERS, "the people SharePoint permissions name"))
NOTIFICATIONS = (RoleNeed(("Files.ReadWrite.All",), "change notifications on drives"),)
GROUP_MEMBERSHIP = (RoleNeed(_WRITE_MEMBERS, "the entra_group action adds members"),)
CONSOLE_OVERAGE = (RoleNeed(_READ_MEMBERS, "console sign-in when a token lists too many groups"),)


def token_roles(token: str) -> set[str]:
    """The ``roles`` claim of an access token. Only read, never trusted: the token came from Entra
    over TLS a moment ago, and Graph itself decides what it admits."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        raise CheckWarning("Entra's access token is not a JWT: the granted permissions cannot be read from it",
                           "compare the app's API permissions in Entra with docs/sources.md") from None
    roles = claims.get("roles") if isinstance(claims, dict) else None
    return {str(r) for r in roles} if isinstance(roles, list) else set()


def token_for(graph: GraphClient, scope: str | None = None) -> str:
    try:
        return graph.token(scope)
    except GraphError as exc:
        raise CheckFailed(f"Entra issued no token: {exc}",
                          "check ENTRA_TENANT_ID, ENTRA_CLIENT_ID and the app's secret or certificate") from None


def missing(granted: set[str], needs: tuple[RoleNeed, ...] | list[RoleNeed]) -> list[RoleNeed]:
    return [need for need in needs if not granted & set(need.any_of)]


def check_graph_roles(graph: GraphClient, needs: list[RoleNeed]) -> str:
    """The app's Graph token holds a permission for every need."""
    granted = token_roles(token_for(graph))
    lacking = missing(granted, needs)
    if lacking:
        raise CheckFailed("the app lacks the Microsoft Graph application permission "
                          + "; ".join(str(n) for n in lacking),
                          "add it in Entra (App registrations → API permissions → Microsoft Graph → Application "
                          "permissions) and grant admin consent")
    method = "certificate" if graph.has_certificate else "client secret"
    return f"token issued ({method}); granted {', '.join(sorted(granted)) or 'nothing'}"


def check_certificate(settings: EntraSettings, *, warn_days: int = 30) -> str:
    """The app's certificate (SharePoint REST refuses app-only tokens from a client secret) is
    there, readable and not expired."""
    path = settings.entra_client_certificate_path
    if not path:
        raise CheckFailed("SharePoint sources need the Entra app's certificate and ENTRA_CLIENT_CERTIFICATE_PATH "
                          "is not set (SharePoint refuses app-only tokens from a client secret)",
                          "upload a certificate to the app registration and point ENTRA_CLIENT_CERTIFICATE_PATH "
                          "at its PEM (key and certificate) or .pfx")
    if Path(path).suffix.lower() in (".pfx", ".p12"):
        if not Path(path).is_file():
            raise CheckFailed(f"ENTRA_CLIENT_CERTIFICATE_PATH: {path} does not exist", "fix the path")
        return f"{path} (.pfx; its dates are checked by Entra)"
    try:
        cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    except OSError as exc:
        raise CheckFailed(f"cannot read ENTRA_CLIENT_CERTIFICATE_PATH {path} ({exc.strerror})", "fix the path") from None
    except ValueError:
        raise CheckFailed(f"{path} holds no PEM certificate", "put the certificate (and its key) in it") from None
    left = cert.not_valid_after_utc - datetime.now(timezone.utc)
    if left.total_seconds() <= 0:
        raise CheckFailed(f"the app's certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}",
                          "make a new one, upload it to the app registration and replace the file")
    if left.days < warn_days:
        raise CheckWarning(f"the app's certificate expires in {left.days} days ({cert.not_valid_after_utc:%Y-%m-%d})",
                           "make a new one and upload it before then")
    return f"{path}, valid until {cert.not_valid_after_utc:%Y-%m-%d}"
