"""A loopback Microsoft Entra ID (login.microsoftonline.com) and Microsoft Graph.

The real msal talks to it: ``session()`` returns a ``requests.Session`` whose
transport adapters send ``https://login.microsoftonline.com/...`` and
``https://graph.microsoft.com/...`` to this server (under ``/login`` and
``/graph``) over plain HTTP. Every URL the server hands out (OIDC endpoints,
``@odata.nextLink``) is the real https one, as in production.

For ``authority=https://login.microsoftonline.com/<tenant>`` msal 1.x asks for
``GET /<tenant>/v2.0/.well-known/openid-configuration`` (when the app is built)
and ``POST /<tenant>/oauth2/v2.0/token``. It skips instance discovery for
well-known hosts, but ``/common/discovery/instance`` is served too.
"""

from __future__ import annotations

import base64
import itertools
import re
from urllib.parse import unquote, urlencode

import requests
from requests.adapters import HTTPAdapter

from tests.standins._loopback import LoopbackServer, Reply, Request

LOGIN = "https://login.microsoftonline.com"
GRAPH = "https://graph.microsoft.com"
_MAIL_FILTER = re.compile(r"^mail eq '((?:[^']|'')*)'$", re.IGNORECASE)


class FakeEntra(LoopbackServer):
    def __init__(self, tenant_id: str = "tenant-1", users: dict[str, dict] | None = None, page_size: int = 2,
                 *, client_id: str = "client-1", client_secret: str = "secret-1"):
        super().__init__()
        self.tenant_id = tenant_id
        self.users = dict(users or {})
        self.page_size = page_size
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_requests = 0
        self.graph_requests = 0
        self.paths: list[str] = []  # "GET /graph/v1.0/users/..." in arrival order, query decoded
        self._tokens: set[str] = set()
        self._token_numbers = itertools.count(1)
        self._throttle: list[tuple[int, int, str | None]] = []

    def throttle_next(self, count: int, retry_after: int = 0, status: int = 429, *,
                      match: str | None = None) -> None:
        """The next ``count`` Graph requests (whose path contains ``match``, if given)
        answer ``status``; a 429 carries ``Retry-After: retry_after``."""
        with self.lock:
            self._throttle.extend([(status, retry_after, match)] * count)

    def session(self) -> requests.Session:
        s = requests.Session()
        s.mount(LOGIN + "/", _Reroute(LOGIN, self.origin + "/login"))
        s.mount(GRAPH + "/", _Reroute(GRAPH, self.origin + "/graph"))
        return s

    # -- HTTP ---------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        with self.lock:
            query = "&".join(f"{k}={v}" for k, v in request.query.items())
            self.paths.append(f"{request.method} {unquote(request.path)}" + (f"?{query}" if query else ""))
        if request.path.startswith("/login/"):
            return self._login(request, request.path[len("/login"):])
        if request.path.startswith("/graph/"):
            return self._graph(request, request.path[len("/graph"):])
        return Reply(404, "not found")

    # -- login.microsoftonline.com ------------------------------------------

    def _login(self, request: Request, path: str) -> Reply:
        tenant = f"{LOGIN}/{self.tenant_id}"
        if path == "/common/discovery/instance":
            return Reply(200, {
                "tenant_discovery_endpoint": f"{tenant}/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [{"preferred_network": "login.microsoftonline.com",
                              "preferred_cache": "login.windows.net",
                              "aliases": ["login.microsoftonline.com", "login.windows.net",
                                          "login.microsoft.com", "sts.windows.net"]}],
            })
        if path == f"/{self.tenant_id}/v2.0/.well-known/openid-configuration":
            return Reply(200, {
                "issuer": f"{tenant}/v2.0",
                "authorization_endpoint": f"{tenant}/oauth2/v2.0/authorize",
                "token_endpoint": f"{tenant}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{tenant}/oauth2/v2.0/devicecode",
                "jwks_uri": f"{LOGIN}/{self.tenant_id}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                          "client_secret_basic"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "tenant_region_scope": "EU",
            })
        if path == f"/{self.tenant_id}/oauth2/v2.0/token" and request.method == "POST":
            return self._token(request.form())
        if path.endswith("/.well-known/openid-configuration") or path.endswith("/token"):
            return Reply(400, {"error": "invalid_tenant",
                               "error_description": "AADSTS90002: Tenant not found."})
        return Reply(404, {"error": "not_found"})

    def _token(self, form: dict[str, str]) -> Reply:
        with self.lock:
            self.token_requests += 1
        if form.get("grant_type") != "client_credentials":
            return Reply(400, {"error": "unsupported_grant_type"})
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return Reply(401, {"error": "invalid_client",
                               "error_description": "AADSTS7000215: Invalid client secret provided."})
        if f"{GRAPH}/.default" not in form.get("scope", "").split():
            return Reply(400, {"error": "invalid_scope"})
        token = f"fake-token-{next(self._token_numbers)}"
        with self.lock:
            self._tokens.add(token)
        return Reply(200, {"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600,
                           "access_token": token})

    # -- graph.microsoft.com ------------------------------------------------

    def _graph(self, request: Request, path: str) -> Reply:
        with self.lock:
            self.graph_requests += 1
            throttle = next((t for t in self._throttle if t[2] is None or t[2] in unquote(path)), None)
            if throttle:
                self._throttle.remove(throttle)
            tokens = set(self._tokens)
        if throttle:
            status, retry_after, _ = throttle
            headers = {"Retry-After": str(retry_after)} if status == 429 else {}
            return Reply(status, _error("TooManyRequests" if status == 429 else "ServiceUnavailable"), headers)
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[len("Bearer "):] not in tokens:
            return Reply(401, _error("InvalidAuthenticationToken"))
        parts = [unquote(p) for p in path.strip("/").split("/")]
        select = [f for f in request.query.get("$select", "").split(",") if f]
        if parts == ["v1.0", "users"]:
            match = _MAIL_FILTER.match(request.query.get("$filter", ""))
            if not match:
                return Reply(400, _error("BadRequest"))
            mail = match.group(1).replace("''", "'").lower()
            found = [_pick(self._user_json(e, u), select) for e, u in self.users.items() if e.lower() == mail]
            return Reply(200, {"@odata.context": f"{GRAPH}/v1.0/$metadata#users", "value": found})
        if len(parts) == 3 and parts[:2] == ["v1.0", "users"]:
            found = self._find(parts[2])
            if found is None:
                return Reply(404, _error("Request_ResourceNotFound"))
            return Reply(200, _pick(self._user_json(*found), select))
        if len(parts) == 5 and parts[:2] == ["v1.0", "users"] and parts[3:] == [
                "transitiveMemberOf", "microsoft.graph.group"]:
            found = self._find(parts[2])
            if found is None:
                return Reply(404, _error("Request_ResourceNotFound"))
            return Reply(200, self._groups_page(found[1]["groups"], path, request.query, select))
        return Reply(400, _error("BadRequest"))

    def _find(self, key: str) -> tuple[str, dict] | None:
        for email, user in self.users.items():
            if key == user["id"] or key.lower() == user.get("upn", email).lower():
                return email, user
        return None

    @staticmethod
    def _user_json(email: str, user: dict) -> dict:
        return {"id": user["id"], "displayName": user.get("displayName"), "mail": email,
                "userPrincipalName": user.get("upn", email)}

    def _groups_page(self, groups: list[dict], path: str, query: dict[str, str], select: list[str]) -> dict:
        start = int(base64.urlsafe_b64decode(query["$skiptoken"])) if "$skiptoken" in query else 0
        end = start + min(int(query.get("$top") or 100), self.page_size)
        page = {"@odata.context": f"{GRAPH}/v1.0/$metadata#directoryObjects",
                "value": [{"@odata.type": "#microsoft.graph.group", **_pick(g, select)}
                          for g in groups[start:end]]}
        if end < len(groups):
            rest = {k: v for k, v in query.items() if k != "$skiptoken"}
            rest["$skiptoken"] = base64.urlsafe_b64encode(str(end).encode()).decode()
            page["@odata.nextLink"] = f"{GRAPH}{path}?{urlencode(rest, safe='$,=')}"
        return page


class _Reroute(HTTPAdapter):
    """Sends requests for one https origin to a loopback http prefix instead."""

    def __init__(self, origin: str, target: str):
        super().__init__()
        self._origin, self._target = origin, target

    def send(self, request, **kwargs):
        request.url = self._target + request.url[len(self._origin):]
        return super().send(request, **kwargs)


def _pick(obj: dict, select: list[str]) -> dict:
    return {k: v for k, v in obj.items() if k in select} if select else dict(obj)


def _error(code: str) -> dict:
    return {"error": {"code": code, "message": f"fake Graph: {code}"}}
