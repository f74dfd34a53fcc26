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

Groups (optional, ``groups={object_id: {"displayName", "owners": [...], "members": [...]}}``)
add ``POST /v1.0/groups/{id}/members/$ref`` (204; Graph's 400 "One or more added
object references already exist" for a member; memberships are recorded in the
group's ``members`` list of user ids) and ``GET /v1.0/groups/{id}/owners``
(paged like the group listing). An owner is a dict of its directory object:
``{"id", "mail", "userPrincipalName"}`` and optionally ``"@odata.type"``
(default ``#microsoft.graph.user``).

Signing people in (OpenID Connect, the authorisation-code flow with PKCE, as msal's
``initiate_auth_code_flow`` / ``acquire_token_by_auth_code_flow`` run it for the operator
console): ``GET /<tenant>/oauth2/v2.0/authorize`` shows an account picker (an HTML page with a
link per user; ``login_hint`` or ``sign_in_as`` skips it) and sends the browser back to
``redirect_uri`` with a one-time ``code`` and the ``state``; the token endpoint's
``authorization_code`` grant checks the app's secret (or certificate), the redirect URI and the
PKCE ``code_verifier`` against the S256 ``code_challenge``, and answers with an ``id_token`` (RS256,
the key at ``/<tenant>/discovery/v2.0/keys``) whose claims are aud, iss, tid, oid, sub,
preferred_username, name, nonce (as the authorize request sent it), iat, nbf, exp and ``groups``
(the user's group ids). A user with ``"overage": True`` gets ``_claim_names.groups`` instead of
``groups``, as Entra does past 200 groups. The browser reaches it only with ``direct=True`` (and
``tls`` set: msal takes https authorities only).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import html
import itertools
import json
import re
import secrets
import time
from urllib.parse import parse_qsl, unquote, urlencode

import requests
from requests.adapters import HTTPAdapter

from standins._loopback import LoopbackServer, Reply, Request

LOGIN = "https://login.microsoftonline.com"
GRAPH = "https://graph.microsoft.com"
_MAIL_FILTER = re.compile(r"^mail eq '((?:[^']|'')*)'$", re.IGNORECASE)
_OBJECT_REF = re.compile(r"^https://graph\.microsoft\.com/(?:v1\.0|beta)/directoryObjects/([^/?#]+)$")
ALREADY_EXISTS = ("One or more added object references already exist for the following "
                  "modified properties: 'members'.")


# What a fully set-up chatops app registration holds (docs/sources.md, "Permissions").
DEFAULT_APP_ROLES = {
    "graph": ["User.Read.All", "GroupMember.Read.All", "Sites.Read.All", "Files.ReadWrite.All",
              "GroupMember.ReadWrite.All"],
    "sharepoint": ["Sites.Read.All"],
}


class FakeEntra(LoopbackServer):
    def __init__(self, tenant_id: str = "tenant-1", users: dict[str, dict] | None = None, page_size: int = 2,
                 *, client_id: str = "client-1", client_secret: str = "secret-1",
                 groups: dict[str, dict] | None = None, certificate: str | None = None, direct: bool = False,
                 app_roles: dict[str, list[str]] | None = None):
        super().__init__()
        # The application permissions granted to the app (admin-consented), by resource: "graph",
        # "sharepoint" (every SharePoint host). Access tokens are JWTs that carry them in ``roles``,
        # as Entra's app-only tokens do; in direct mode one token serves every resource and carries all.
        self.app_roles = {k: list(v) for k, v in (app_roles or DEFAULT_APP_ROLES).items()}
        # direct: the URLs it hands out are its own (http://127.0.0.1:<port>/graph ...), for
        # processes that cannot be given a rerouting session (the demo, benchmarks, a worker
        # process); then one token is good for Graph and SharePoint alike.
        self.direct = direct
        # The app's certificate (PEM): msal's client assertions are checked against its key.
        self.certificate = certificate
        # More of Microsoft's services on the same server (SharePoint: standins/fake_sharepoint.py):
        # each may answer Graph paths and owns other hosts.
        self.extensions: list = []
        self._token_info: dict[str, tuple[str, str]] = {}   # token -> (audience, "secret" | "certificate")
        self.tenant_id = tenant_id
        self.users = dict(users or {})
        self.page_size = page_size
        # Where its next links point: None, its own Graph; a test sets another origin to play a
        # tampered (or misrouted) answer, which a client must not follow with its token.
        self.next_link_base: str | None = None
        self.groups = copy.deepcopy(groups or {})
        for group in self.groups.values():
            group.setdefault("owners", [])
            group.setdefault("members", [])
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_requests = 0
        self.graph_requests = 0
        self.paths: list[str] = []  # "GET /graph/v1.0/users/..." in arrival order, query decoded
        self._tokens: set[str] = set()
        self._token_numbers = itertools.count(1)
        self._throttle: list[tuple[int, int, str | None]] = []
        # Signing in: codes handed out by /authorize (one use each), who the next sign-in is without
        # the account picker, and the key id tokens are signed with (made on first use).
        self._codes: dict[str, dict] = {}
        self.sign_in_as: str | None = None
        self.sign_ins: list[str] = []
        self._signing_key = None

    def throttle_next(self, count: int, retry_after: int = 0, status: int = 429, *,
                      match: str | None = None) -> None:
        """The next ``count`` Graph requests (whose path contains ``match``, if given)
        answer ``status``; a 429 carries ``Retry-After: retry_after``."""
        with self.lock:
            self._throttle.extend([(status, retry_after, match)] * count)

    @property
    def graph_base(self) -> str:
        return f"{self.origin}/graph" if self.direct else GRAPH

    @property
    def login_base(self) -> str:
        return f"{self.origin}/login" if self.direct else LOGIN

    def host_url(self, host: str) -> str:
        """The base URL of another host it serves, as it hands it out."""
        return f"{self.origin}/host/{host}" if self.direct else f"https://{host}"

    def extend(self, extension) -> None:
        """Serve another service from this server (it answers Graph paths and its own hosts)."""
        extension.entra = self
        self.extensions.append(extension)

    def session(self) -> requests.Session:
        s = requests.Session()
        s.mount(LOGIN + "/", Reroute(LOGIN, self.origin + "/login"))
        s.mount(GRAPH + "/", Reroute(GRAPH, self.origin + "/graph"))
        for ext in self.extensions:
            for host in ext.hosts:
                s.mount(f"https://{host}/", Reroute(f"https://{host}", f"{self.origin}/host/{host}"))
        return s

    def token_info(self, authorization: str) -> tuple[str, str] | None:
        """(audience, how the app proved itself) of a ``Bearer`` token this server issued."""
        token = authorization[len("Bearer "):] if authorization.startswith("Bearer ") else ""
        with self.lock:
            return self._token_info.get(token)

    # -- HTTP ---------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        with self.lock:
            query = "&".join(f"{k}={v}" for k, v in request.query.items())
            self.paths.append(f"{request.method} {unquote(request.path)}" + (f"?{query}" if query else ""))
        if request.path.startswith("/login/"):
            return self._login(request, request.path[len("/login"):])
        if request.path.startswith("/graph/"):
            return self._graph(request, request.path[len("/graph"):])
        if request.path.startswith("/host/"):
            host, _, rest = request.path[len("/host/"):].partition("/")
            for ext in self.extensions:
                if host in ext.hosts:
                    return ext.handle_host(host, request, "/" + rest)
        return Reply(404, "not found")

    # -- login.microsoftonline.com ------------------------------------------

    def _login(self, request: Request, path: str) -> Reply:
        tenant = f"{self.login_base}/{self.tenant_id}"
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
                "jwks_uri": f"{self.login_base}/{self.tenant_id}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                          "client_secret_basic"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "tenant_region_scope": "EU",
            })
        if path == f"/{self.tenant_id}/oauth2/v2.0/token" and request.method == "POST":
            form = request.form()
            if form.get("grant_type") == "authorization_code":
                return self._redeem(form)
            return self._token(form)
        if path == f"/{self.tenant_id}/oauth2/v2.0/authorize" and request.method == "GET":
            return self._authorize(request)
        if path == f"/{self.tenant_id}/discovery/v2.0/keys":
            return Reply(200, {"keys": [self._jwk()]})
        if path.endswith("/.well-known/openid-configuration") or path.endswith("/token"):
            return Reply(400, {"error": "invalid_tenant",
                               "error_description": "AADSTS90002: Tenant not found."})
        return Reply(404, {"error": "not_found"})

    def _token(self, form: dict[str, str]) -> Reply:
        with self.lock:
            self.token_requests += 1
        if form.get("grant_type") != "client_credentials":
            return Reply(400, {"error": "unsupported_grant_type"})
        if form.get("client_id") != self.client_id:
            return Reply(400, {"error": "unauthorized_client",
                               "error_description": "AADSTS700016: Application not found in the directory."})
        if "client_assertion" in form:
            method = self._check_assertion(form)
            if method is None:
                return Reply(401, {"error": "invalid_client",
                                   "error_description": "AADSTS700027: Client assertion failed signature validation."})
        elif form.get("client_secret") == self.client_secret:
            method = "secret"
        else:
            return Reply(401, {"error": "invalid_client",
                               "error_description": "AADSTS7000215: Invalid client secret provided."})
        scopes = form.get("scope", "").split()
        resources = {f"{GRAPH}/.default": GRAPH} | {f"https://{h}/.default": f"https://{h}"
                                                     for ext in self.extensions for h in ext.hosts}
        if self.direct:
            resources[f"{self.origin}/.default"] = "direct"
        audience = next((resources[s] for s in scopes if s in resources), None)
        if audience is None:
            return Reply(400, {"error": "invalid_scope"})
        number = next(self._token_numbers)
        roles = (self.app_roles.get("graph", []) if audience == GRAPH else
                 [r for k in ("graph", "sharepoint") for r in self.app_roles.get(k, [])] if audience == "direct" else
                 self.app_roles.get("sharepoint", []))
        now = int(time.time())
        token = self._sign({
            "aud": self.origin if audience == "direct" else audience, "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": now, "nbf": now, "exp": now + 3600, "appid": self.client_id, "appidacr": "1" if method == "secret" else "2",
            "idtyp": "app", "oid": f"sp-{self.client_id}", "sub": f"sp-{self.client_id}", "tid": self.tenant_id,
            "roles": sorted(set(roles)), "ver": "1.0", "uti": f"fake-{number}"})
        with self.lock:
            self._tokens.add(token)
            self._token_info[token] = (audience, method)
        return Reply(200, {"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600,
                           "access_token": token})

    # -- signing people in (authorisation code + PKCE) -------------------------------------

    def _authorize(self, request: Request) -> Reply:
        q = request.query
        if q.get("client_id") != self.client_id:
            return Reply(400, "AADSTS700016: Application not found in the directory.")
        if q.get("response_type") != "code" or not q.get("redirect_uri") or "openid" not in q.get("scope", "").split():
            return Reply(400, "AADSTS900144: the request needs response_type=code, a redirect_uri and the openid scope.")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return Reply(400, "AADSTS50148: PKCE with S256 is required.")
        who = q.get("login_as") or q.get("login_hint") or self.sign_in_as
        if not who:
            return self._account_picker(request)
        if who.lower() not in {e.lower() for e in self.users}:
            return Reply(400, f"AADSTS50034: no account {who} in this directory.")
        code = secrets.token_urlsafe(24)
        email = next(e for e in self.users if e.lower() == who.lower())
        with self.lock:
            self._codes[code] = {"email": email, "redirect_uri": q["redirect_uri"], "challenge": q["code_challenge"],
                                 "nonce": q.get("nonce"), "client_id": q["client_id"]}
        back = {"code": code, "state": q.get("state", ""), "session_state": "fake-session"}
        sep = "&" if "?" in q["redirect_uri"] else "?"
        return Reply(302, b"", {"Location": f"{q['redirect_uri']}{sep}{urlencode(back)}"})

    def _account_picker(self, request: Request) -> Reply:
        rows = []
        for email, user in self.users.items():
            query = urlencode({**request.query, "login_as": email})
            rows.append(f'<li><a class="account" href="?{html.escape(query)}">{html.escape(email)}</a> '
                        f"{html.escape(user.get('displayName') or '')}</li>")
        page = ("<!doctype html><html><head><title>Sign in to your account</title></head><body>"
                f"<h1>Pick an account</h1><ul>{''.join(rows)}</ul></body></html>")
        return Reply(200, page.encode(), {"Content-Type": "text/html; charset=utf-8"})

    def _redeem(self, form: dict[str, str]) -> Reply:
        with self.lock:
            self.token_requests += 1
            grant = self._codes.pop(form.get("code", ""), None)
        if form.get("client_id") != self.client_id:
            return Reply(400, {"error": "unauthorized_client"})
        if "client_assertion" in form:
            if self._check_assertion(form) is None:
                return Reply(401, {"error": "invalid_client"})
        elif form.get("client_secret") != self.client_secret:
            return Reply(401, {"error": "invalid_client",
                               "error_description": "AADSTS7000215: Invalid client secret provided."})
        if grant is None:
            return Reply(400, {"error": "invalid_grant",
                               "error_description": "AADSTS70008: The provided authorization code is expired or used."})
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return Reply(400, {"error": "invalid_grant", "error_description": "AADSTS50011: redirect URI mismatch."})
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not verifier or challenge != grant["challenge"]:
            return Reply(400, {"error": "invalid_grant",
                               "error_description": "AADSTS501481: The Code_Verifier does not match the code_challenge."})
        user = self.users[grant["email"]]
        now = int(time.time())
        claims = {"aud": self.client_id, "iss": f"{self.login_base}/{self.tenant_id}/v2.0", "tid": self.tenant_id,
                  "oid": user["id"], "sub": f"sub-{user['id']}", "preferred_username": user.get("upn", grant["email"]),
                  "name": user.get("displayName"), "iat": now, "nbf": now, "exp": now + 3600, "ver": "2.0"}
        if grant["nonce"] is not None:
            claims["nonce"] = grant["nonce"]
        if user.get("overage"):
            claims["_claim_names"] = {"groups": "src1"}
            claims["_claim_sources"] = {"src1": {"endpoint": f"{self.graph_base}/v1.0/users/{user['id']}/getMemberObjects"}}
        else:
            claims["groups"] = [g["id"] for g in user.get("groups", [])]
        token = f"fake-user-token-{next(self._token_numbers)}"
        with self.lock:
            self._tokens.add(token)
            self._token_info[token] = (GRAPH, "user")
            self.sign_ins.append(grant["email"])
        client_info = base64.urlsafe_b64encode(json.dumps({"uid": user["id"], "utid": self.tenant_id}).encode())
        return Reply(200, {"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "scope": form.get("scope", ""),
                           "access_token": token, "id_token": self._sign(claims),
                           "client_info": client_info.rstrip(b"=").decode()})

    def _key(self):
        from cryptography.hazmat.primitives.asymmetric import rsa

        with self.lock:
            if self._signing_key is None:
                self._signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return self._signing_key

    def _sign(self, claims: dict) -> str:
        import jwt

        return jwt.encode(claims, self._key(), algorithm="RS256", headers={"kid": "fake-entra-1"})

    def _jwk(self) -> dict:
        from jwt.algorithms import RSAAlgorithm

        return {**json.loads(RSAAlgorithm.to_jwk(self._key().public_key())), "kid": "fake-entra-1", "use": "sig"}

    def _check_assertion(self, form: dict[str, str]) -> str | None:
        """A certificate's client assertion (RFC 7523), as msal signs it: "certificate" if valid."""
        import jwt
        from cryptography import x509

        if self.certificate is None or form.get("client_assertion_type") != \
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return None
        key = x509.load_pem_x509_certificate(self.certificate.encode()).public_key()
        try:
            claims = jwt.decode(form["client_assertion"], key, algorithms=["PS256", "RS256"],
                                audience=f"{self.login_base}/{self.tenant_id}/oauth2/v2.0/token")
        except jwt.PyJWTError:
            return None
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id:
            return None
        return "certificate"

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
        if (self.token_info(auth) or (GRAPH, ""))[0] not in (GRAPH, "direct"):
            return Reply(401, _error("InvalidAuthenticationToken", "Invalid audience."))
        if path.strip("/") == "v1.0/$batch" and request.method == "POST":
            return self._batch(request)
        return self._route(request, path)

    def _batch(self, request: Request) -> Reply:
        """JSON batching: each sub-request served on its own (and throttled on its own)."""
        try:
            subs = request.json().get("requests") or []
        except (ValueError, AttributeError):
            return Reply(400, _error("BadRequest", "Invalid batch payload."))
        if len(subs) > 20:
            return Reply(400, _error("BadRequest", "Number of batch requests exceeds the limit of 20."))
        responses = []
        for sub in subs:
            url = "/v1.0/" + str(sub.get("url", "")).lstrip("/")
            target, _, query = url.partition("?")
            with self.lock:
                self.graph_requests += 1
                self.paths.append(f"{sub.get('method', 'GET')} {unquote(target)}" + (f"?{unquote(query)}" if query else ""))
                throttle = next((t for t in self._throttle if t[2] is None or t[2] in unquote(target)), None)
                if throttle:
                    self._throttle.remove(throttle)
            if throttle:
                status, retry_after, _ = throttle
                reply = Reply(status, _error("TooManyRequests" if status == 429 else "ServiceUnavailable"),
                              {"Retry-After": str(retry_after)} if status == 429 else {})
            else:
                inner = Request(method=str(sub.get("method", "GET")).upper(), path="/graph" + target,
                                query=dict(parse_qsl(query, keep_blank_values=True)),
                                headers={k.lower(): v for k, v in (sub.get("headers") or {}).items()},
                                body=json.dumps(sub["body"]).encode() if "body" in sub else b"")
                reply = self._route(inner, target)
            body = reply.body if isinstance(reply.body, (dict, list)) else None
            responses.append({"id": sub.get("id"), "status": reply.status,
                              "headers": {"Content-Type": "application/json", **reply.headers}, "body": body})
        return Reply(200, {"responses": responses})

    def _route(self, request: Request, path: str) -> Reply:
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
        if len(parts) == 5 and parts[:2] == ["v1.0", "groups"] and parts[3:] == ["members", "$ref"] \
                and request.method == "POST":
            return self._add_member(parts[2], request)
        if len(parts) == 4 and parts[:2] == ["v1.0", "groups"] and parts[3] == "owners" \
                and request.method == "GET":
            group = self.groups.get(parts[2])
            if group is None:
                return Reply(404, _not_found(parts[2]))
            owners = [{"@odata.type": o.get("@odata.type", "#microsoft.graph.user"), "id": o["id"],
                       **_pick({k: v for k, v in o.items() if k not in ("@odata.type", "id")}, select)}
                      for o in group["owners"]]
            return Reply(200, self._page(owners, path, request.query))
        for ext in self.extensions:
            reply = ext.handle_graph(request, parts)
            if reply is not None:
                return reply
        return Reply(400, _error("BadRequest"))

    def _add_member(self, group_id: str, request: Request) -> Reply:
        group = self.groups.get(group_id)
        if group is None:
            return Reply(404, _not_found(group_id))
        try:
            ref = request.json()
        except ValueError:
            return Reply(400, _error("BadRequest", "Unable to read JSON request payload."))
        match = _OBJECT_REF.match(ref.get("@odata.id", "")) if isinstance(ref, dict) else None
        if not match:
            return Reply(400, _error("Request_BadRequest", "Invalid object identifier."))
        user_id = unquote(match.group(1))
        if not any(u["id"] == user_id for u in self.users.values()):
            return Reply(404, _not_found(user_id))
        with self.lock:
            if user_id in group["members"]:
                return Reply(400, _error("Request_BadRequest", ALREADY_EXISTS))
            group["members"].append(user_id)
        return Reply(204, b"")

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
        return self._page([{"@odata.type": "#microsoft.graph.group", **_pick(g, select)} for g in groups],
                          path, query)

    def _page(self, items: list[dict], path: str, query: dict[str, str]) -> dict:
        """One page of directory objects (``page_size`` at most), with ``@odata.nextLink`` if more."""
        start = int(base64.urlsafe_b64decode(query["$skiptoken"])) if "$skiptoken" in query else 0
        end = start + min(int(query.get("$top") or 100), self.page_size)
        page = {"@odata.context": f"{GRAPH}/v1.0/$metadata#directoryObjects", "value": items[start:end]}
        if end < len(items):
            rest = {k: v for k, v in query.items() if k != "$skiptoken"}
            rest["$skiptoken"] = base64.urlsafe_b64encode(str(end).encode()).decode()
            page["@odata.nextLink"] = f"{self.next_link_base or self.graph_base}{path}?{urlencode(rest, safe='$,=')}"
        return page


class Reroute(HTTPAdapter):
    """Sends requests for one https origin to a loopback http prefix instead."""

    def __init__(self, origin: str, target: str):
        super().__init__()
        self._origin, self._target = origin, target

    def send(self, request, **kwargs):
        request.url = self._target + request.url[len(self._origin):]
        return super().send(request, **kwargs)


def _pick(obj: dict, select: list[str]) -> dict:
    return {k: v for k, v in obj.items() if k in select} if select else dict(obj)


def _error(code: str, message: str | None = None) -> dict:
    return {"error": {"code": code, "message": message or f"fake Graph: {code}"}}


def _not_found(object_id: str) -> dict:
    return _error("Request_ResourceNotFound",
                  f"Resource '{object_id}' does not exist or one of its queried reference-property "
                  "objects are not present.")
