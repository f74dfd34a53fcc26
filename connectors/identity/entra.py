"""Microsoft Entra ID through msal (client credentials) and Microsoft Graph.

An email (the chat side supplies it) -> Graph ``/users/{email}`` -> ``/users/{id}/transitiveMemberOf/microsoft.graph.group``
following ``@odata.nextLink``. A person's groups are the groups' **object ids**
only, never their display names: in a default tenant anyone may create a group
and name it after a real one (configuration names groups through the alias
table, chatops/groups.py). Throttling (429 with Retry-After) and 5xx are
retried a bounded number of times; anything else that goes wrong raises
``IdentityUnavailable`` so the caller fails closed.
"""

from __future__ import annotations

import time
from typing import Callable
from urllib.parse import quote

import requests

from chatops.access import Principal
from chatops.errors import ConfigError, IdentityUnavailable
from chatops.settings import Settings
from connectors.identity.base import UnknownUser
from connectors.microsoft.app_roles import IDENTITY, check_graph_roles
from connectors.microsoft.credentials import app_credential
from connectors.microsoft.graph import GRAPH_SCOPE, GraphClient, GraphError, GraphNotFound
from connectors.microsoft.settings import EntraSettings

__all__ = ["EntraProvider", "GRAPH_SCOPE"]


class EntraProvider:
    name = "entra"

    @classmethod
    def from_settings(cls, settings: Settings, http: requests.Session | None = None) -> "EntraProvider":
        s = settings.of(EntraSettings)
        if not (s.configured and s.has_credential):
            raise ConfigError("Entra needs ENTRA_TENANT_ID, ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET "
                              "(or ENTRA_CLIENT_CERTIFICATE_PATH)")
        return cls(s.entra_tenant_id, s.entra_client_id, app_credential(s),
                   authority_host=s.entra_authority_host, graph_url=s.graph_url,
                   instance_discovery=s.entra_instance_discovery, http_client=http)

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        client_secret: str | dict,
        *,
        authority_host: str = "https://login.microsoftonline.com",
        graph_url: str = "https://graph.microsoft.com/v1.0",
        http_client: requests.Session | None = None,
        instance_discovery: bool = True,
        max_attempts: int = 4,
        max_retry_after: float = 10.0,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        # The Graph client builds the msal app on first use: an unreachable Entra is then
        # a failed lookup, not a failed start.
        self._client = GraphClient(
            tenant_id, client_id, client_secret,
            authority_host=authority_host, graph_url=graph_url, http_client=http_client,
            instance_discovery=instance_discovery, max_attempts=max_attempts,
            max_retry_after=max_retry_after, timeout=timeout, sleep=sleep,
        )

    # -- public -----------------------------------------------------------

    def check(self) -> str:
        """``chatops doctor``: a token, holding the permissions people's lookups need."""
        return "Entra: " + check_graph_roles(self._client, list(IDENTITY))

    def by_email(self, email: str) -> Principal:
        user = self._find_user(email)
        path = f"/users/{quote(user['id'], safe='')}/transitiveMemberOf/microsoft.graph.group?$select=id&$top=999"
        try:
            groups = self._client.get_all(path)   # every page, following @odata.nextLink
        except GraphNotFound:  # deleted between the two calls
            raise UnknownUser(email) from None
        except GraphError as exc:
            raise IdentityUnavailable(str(exc)) from None
        return Principal.of(email, {str(g["id"]).lower() for g in groups if g.get("id")},
                            display_name=user.get("displayName"), object_id=user.get("id"))

    # -- internals --------------------------------------------------------

    def _find_user(self, email: str) -> dict:
        try:
            user = self._client.find_user(email)
        except GraphError as exc:
            raise IdentityUnavailable(str(exc)) from None
        if user is None:
            raise UnknownUser(email)
        return user
