"""Microsoft Entra ID through msal (client credentials) and Microsoft Graph.

Slack user -> email (users.info, supplied by the caller) -> Graph
``/users/{email}`` -> ``/users/{id}/transitiveMemberOf/microsoft.graph.group``
following ``@odata.nextLink``. Throttling (429 with Retry-After) and 5xx are
retried a bounded number of times; anything else that goes wrong raises
``IdentityUnavailable`` so the caller fails closed.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterable
from urllib.parse import quote

import msal
import requests

from chatops.access import Principal
from connectors.identity.base import EmailLookup, IdentityUnavailable, UnknownUser, lookup_email

log = logging.getLogger(__name__)

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class EntraProvider:
    name = "entra"

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        *,
        authority_host: str = "https://login.microsoftonline.com",
        graph_url: str = "https://graph.microsoft.com/v1.0",
        http_client: requests.Session | None = None,
        email_lookup: EmailLookup | None = None,
        group_keys: Iterable[str] = ("id", "displayName"),
        max_attempts: int = 4,
        max_retry_after: float = 10.0,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._http = http_client or requests.Session()
        # msal fetches the tenant's discovery document when the app is built, so build it on
        # first use: an unreachable Entra is then a failed lookup, not a failed start.
        self._msal_args = dict(client_id=client_id, client_credential=client_secret,
                               authority=f"{authority_host.rstrip('/')}/{tenant_id}")
        self._app: msal.ConfidentialClientApplication | None = None
        self._app_lock = threading.Lock()
        self._graph = graph_url.rstrip("/")
        self._email_lookup = email_lookup
        self._group_keys = tuple(group_keys)
        self._max_attempts = max_attempts
        self._max_retry_after = max_retry_after
        self._timeout = timeout
        self._sleep = sleep

    # -- public -----------------------------------------------------------

    def by_slack_id(self, slack_user_id: str) -> Principal:
        email = lookup_email(self._email_lookup, slack_user_id)
        if not email:
            raise UnknownUser(slack_user_id)
        p = self.by_email(email)
        return Principal(p.email, p.groups, slack_user_id, p.display_name)

    def by_email(self, email: str) -> Principal:
        user = self._find_user(email)
        groups: set[str] = set()
        url = (
            f"{self._graph}/users/{quote(user['id'], safe='')}/transitiveMemberOf/microsoft.graph.group"
            "?$select=id,displayName&$top=999"
        )
        while url:
            try:
                page = self._get(url)
            except _NotFound:  # deleted between the two calls
                raise UnknownUser(email) from None
            for g in page.get("value", []):
                for key in self._group_keys:
                    if g.get(key):
                        groups.add(str(g[key]))
            url = page.get("@odata.nextLink")
        return Principal.of(email, groups, display_name=user.get("displayName"))

    # -- internals --------------------------------------------------------

    def _msal(self) -> msal.ConfidentialClientApplication:
        with self._app_lock:
            if self._app is None:
                try:
                    self._app = msal.ConfidentialClientApplication(**self._msal_args, http_client=self._http)
                except (requests.RequestException, ValueError) as exc:
                    raise IdentityUnavailable(f"Entra authority unusable: {type(exc).__name__}") from None
            return self._app

    def _token(self) -> str:
        app = self._msal()
        try:
            result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
        except (requests.RequestException, ValueError) as exc:
            raise IdentityUnavailable(f"Entra token request failed: {type(exc).__name__}") from None
        if not result or "access_token" not in result:
            code = (result or {}).get("error", "unknown_error")
            raise IdentityUnavailable(f"Entra refused the token request ({code})")
        return result["access_token"]

    def _find_user(self, email: str) -> dict:
        try:
            return self._get(f"{self._graph}/users/{quote(email, safe='@')}?$select=id,displayName,mail,userPrincipalName")
        except _NotFound:
            pass
        # Guests and people whose UPN differs from their mail: look up by mail.
        escaped = email.replace("'", "''")
        try:
            page = self._get(
                f"{self._graph}/users?$filter=mail eq '{quote(escaped, safe='')}'&$select=id,displayName,mail"
            )
        except _NotFound:
            raise IdentityUnavailable("Graph answered 404 to a user search") from None
        if page.get("value"):
            return page["value"][0]
        raise UnknownUser(email)

    def _get(self, url: str) -> dict:
        for attempt in range(1, self._max_attempts + 1):
            headers = {"Authorization": f"Bearer {self._token()}", "Accept": "application/json"}
            try:
                resp = self._http.get(url, headers=headers, timeout=self._timeout)
            except requests.RequestException as exc:
                if attempt == self._max_attempts:
                    raise IdentityUnavailable(f"Graph unreachable: {type(exc).__name__}") from None
                self._sleep(min(2 ** attempt * 0.25, self._max_retry_after))
                continue
            if resp.status_code == 404:
                raise _NotFound(url)
            if resp.status_code == 429 or resp.status_code >= 500:
                if attempt == self._max_attempts:
                    raise IdentityUnavailable(f"Graph answered {resp.status_code} after {attempt} attempts")
                delay = _retry_after(resp, default=2 ** attempt * 0.25)
                log.warning("graph throttled or failing, retrying",
                            extra={"status": resp.status_code, "delay_s": delay})
                self._sleep(min(delay, self._max_retry_after))
                continue
            if resp.status_code >= 400:
                raise IdentityUnavailable(f"Graph answered {resp.status_code}")
            try:
                return resp.json()
            except ValueError:
                raise IdentityUnavailable("Graph answered with something that is not JSON") from None
        raise IdentityUnavailable("Graph retries exhausted")  # pragma: no cover - loop always returns


class _NotFound(Exception):
    pass



def _retry_after(resp: requests.Response, default: float) -> float:
    try:
        return max(0.0, float(resp.headers.get("Retry-After", default)))
    except ValueError:
        return default
