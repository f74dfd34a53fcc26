"""Signing people in with Microsoft Entra ID: OpenID Connect's authorisation-code flow with PKCE,
through msal, for the operator console.

``start(redirect_uri)`` returns msal's flow (a dict the caller keeps server-side until the
browser comes back; it holds the PKCE verifier, the state and the nonce) and the URL to send
the browser to. ``finish(flow, query)`` redeems the code (msal checks the state and the nonce),
checks the ID token's audience, issuer, tenant and expiry (msal no longer does; the token comes
straight from the token endpoint over TLS, so its signature need not be checked), and returns
who signed in with their groups' object ids:

* from the token's ``groups`` claim when it has one;
* from Microsoft Graph with the app's own token
  (``/users/{oid}/transitiveMemberOf/microsoft.graph.group``, every page) when the token has
  none or says there were too many to include (``_claim_names.groups``: the group overage);
* ``GroupsUnavailable`` when Graph cannot say: the caller refuses entry.

The msal app is built per call (two sign-ins share nothing), so no user's tokens stay in memory.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import quote

import msal
import requests

from chatops.errors import ConfigError, GroupsUnavailable, SignInFailed
from chatops.settings import Settings
from connectors.microsoft.credentials import app_credential, graph_client
from connectors.microsoft.graph import GraphClient, GraphError, WithTimeout
from connectors.microsoft.settings import EntraSettings

log = logging.getLogger(__name__)

CLOCK_SKEW_S = 120


@dataclass(frozen=True)
class SignedIn:
    oid: str
    username: str              # preferred_username (a UPN or an email)
    name: str | None
    tenant: str
    groups: frozenset[str]     # group object ids, lower-case
    groups_from: str           # "token" or "graph"


class EntraSignIn:
    @classmethod
    def from_settings(cls, settings: Settings, http: requests.Session | None = None) -> "EntraSignIn":
        s = settings.of(EntraSettings)
        if not s.configured:
            raise ConfigError("signing in with Entra needs ENTRA_TENANT_ID and ENTRA_CLIENT_ID")
        return cls(s.entra_tenant_id, s.entra_client_id, app_credential(s), authority_host=s.entra_authority_host,
                   instance_discovery=s.entra_instance_discovery, graph=graph_client(s, http), http=http)

    def __init__(self, tenant_id: str, client_id: str, credential: str | dict, *, graph: GraphClient,
                 authority_host: str = "https://login.microsoftonline.com", instance_discovery: bool = True,
                 http: requests.Session | None = None, timeout: float = 10.0):
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._credential = credential
        self._authority_host = authority_host.rstrip("/")
        self._instance_discovery = instance_discovery
        self._http = http or requests.Session()
        self._timeout = timeout
        self._graph = graph

    def __repr__(self) -> str:  # never the credential
        return f"EntraSignIn(tenant={self.tenant_id!r}, client={self.client_id!r})"

    def _app(self) -> msal.ConfidentialClientApplication:
        kwargs: dict[str, Any] = {}
        if not self._instance_discovery:
            kwargs["instance_discovery"] = False
        try:
            return msal.ConfidentialClientApplication(
                self.client_id, client_credential=self._credential,
                authority=f"{self._authority_host}/{self.tenant_id}",
                http_client=WithTimeout(self._http, self._timeout), **kwargs)
        except (requests.RequestException, ValueError) as exc:
            raise SignInFailed(f"the Entra authority is unusable ({type(exc).__name__})") from None

    def start(self, redirect_uri: str) -> dict:
        """msal's auth-code flow: ``flow["auth_uri"]`` is where the browser goes; keep the whole
        dict on the server until the callback."""
        app = self._app()
        try:
            with warnings.catch_warnings():
                # msal recommends response_mode=form_post; the code comes back in the query instead,
                # where a SameSite=Lax cookie comes with it. The code is useless without the PKCE
                # verifier and the app's credential, both on the server.
                warnings.filterwarnings("ignore", message="response_mode='form_post' is recommended")
                return app.initiate_auth_code_flow(scopes=[], redirect_uri=redirect_uri)
        except (requests.RequestException, ValueError) as exc:
            raise SignInFailed(f"could not start signing in ({type(exc).__name__})") from None

    def finish(self, flow: dict, query: Mapping[str, str], *, now: float | None = None) -> SignedIn:
        """Redeem the callback's code; who signed in, with their groups. Raises ``SignInFailed`` or
        ``GroupsUnavailable``."""
        if query.get("error"):
            raise SignInFailed(f"Entra answered {query.get('error')}: "
                               f"{str(query.get('error_description') or '')[:200]}")
        try:
            result = self._app().acquire_token_by_auth_code_flow(flow, dict(query))
        except (requests.RequestException, ValueError, RuntimeError) as exc:
            # ValueError: a state that does not match (a stale or forged callback); RuntimeError:
            # the ID token's nonce is not the flow's.
            raise SignInFailed(f"the sign-in could not be completed ({type(exc).__name__})") from None
        if not result or "error" in result:
            raise SignInFailed(f"Entra refused the code ({(result or {}).get('error', 'no answer')})")
        claims = result.get("id_token_claims") or {}
        self._check(claims, time.time() if now is None else now)
        oid = str(claims["oid"])
        groups, source = self._groups(claims, oid)
        return SignedIn(oid=oid, username=str(claims.get("preferred_username") or claims.get("email") or oid),
                        name=claims.get("name"), tenant=str(claims["tid"]), groups=groups, groups_from=source)

    def _check(self, claims: dict, now: float) -> None:
        aud = claims.get("aud")
        if not (aud == self.client_id or (isinstance(aud, list) and self.client_id in aud)):
            raise SignInFailed("the ID token is for another application")
        tid, oid = claims.get("tid"), claims.get("oid")
        if not tid or not oid:
            raise SignInFailed("the ID token names no tenant or no user")
        if _is_guid(self.tenant_id) and str(tid).lower() != self.tenant_id.lower():
            raise SignInFailed("the ID token is from another tenant")
        if claims.get("iss") != f"{self._authority_host}/{tid}/v2.0":
            raise SignInFailed("the ID token's issuer is not this authority")
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or exp + CLOCK_SKEW_S < now:
            raise SignInFailed("the ID token has expired")

    def _groups(self, claims: dict, oid: str) -> tuple[frozenset[str], str]:
        overage = "groups" in (claims.get("_claim_names") or {})
        if isinstance(claims.get("groups"), list) and not overage:
            return frozenset(str(g).lower() for g in claims["groups"]), "token"
        path = f"/users/{quote(oid, safe='')}/transitiveMemberOf/microsoft.graph.group?$select=id&$top=999"
        try:
            found = self._graph.get_all(path)
        except GraphError as exc:
            log.warning("a console sign-in's groups could not be read from Graph",
                        extra={"status": exc.status, "code": exc.code})
            raise GroupsUnavailable(str(exc)) from None
        return frozenset(str(g["id"]).lower() for g in found if g.get("id")), "graph"


def _is_guid(value: str) -> bool:
    parts = value.split("-")
    return [len(p) for p in parts] == [8, 4, 4, 4, 12] and all(c in "0123456789abcdefABCDEF" for c in "".join(parts))
