"""A loopback OAuth 2.1 authorization server, as the MCP authorization specification uses one.

What it speaks:

* RFC 8414 metadata at ``/.well-known/oauth-authorization-server`` (path-aware: an issuer with a
  path ``/t1`` serves it at ``/.well-known/oauth-authorization-server/t1``), or, with
  ``discovery="openid"``, only OpenID Connect discovery at ``<issuer>/.well-known/openid-configuration``;
* RFC 7591 dynamic client registration (``POST <issuer>/register``; ``registration=False`` turns it
  off and drops ``registration_endpoint`` from the metadata);
* ``GET <issuer>/authorize``: the authorization code grant with PKCE (S256 only), ``state`` and the
  RFC 8707 ``resource`` required; a bad ``client_id`` or ``redirect_uri`` is answered 400 here (never
  redirected, RFC 6749 4.1.2.1), every other error is redirected with ``error`` and ``state``; the
  answer is a 302 to ``redirect_uri?code=..&state=..&iss=..`` (RFC 9207);
* ``POST <issuer>/token``: ``authorization_code`` (code, client, redirect_uri, code_verifier against the
  challenge, resource) and ``refresh_token`` (rotated: an old refresh token is refused); client
  authentication by HTTP Basic, by ``client_secret`` in the form, or none for public clients;
  errors are 400 ``{"error": "invalid_grant", "error_description": ...}`` (401 ``invalid_client``);
* OpenID Connect (``oidc=True``, the default, as Entra, Okta, Keycloak, Auth0 and Google are): the
  metadata lists ``openid`` in ``scopes_supported`` and publishes ``jwks_uri`` (``GET <issuer>/jwks``),
  and a grant whose scope holds ``openid`` also returns an ``id_token``: a JWT signed RS256 with
  ``iss``, ``aud`` (the client), ``sub``, ``email``, ``email_verified``, ``oid`` (where one is set for
  the person), ``nonce`` (the authorization request's), ``iat``, ``exp``, ``auth_time``. ``oidc=False``:
  a plain OAuth 2.1 server that never says who signed in (``openid`` is an unknown scope there).

Who is signed in at ``/authorize``: ``as_user(email, oid=..., email_verified=...)`` (the browser's
session; ``oid`` and ``email_verified`` are remembered for that person), else a ``login_hint`` (the
person typing their name at the sign-in page). Test hooks: ``expires_in`` (access tokens' lifetime),
``revoke_user(email)``, ``deny_consent``, ``id_token_claims`` (claims overriding what the next ID
tokens say, a None value drops the claim), ``issue_id_tokens`` (False: none, even for ``openid``),
``token_requests`` / ``refresh_requests`` (counters), ``introspect(token)`` for a resource server
(the MCP stand-in) in the same process. Tokens are issued for one ``resource`` (the audience) each.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from standins._loopback import LoopbackServer, Reply, Request

AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")
OIDC_SCOPES = ("openid", "email", "profile", "offline_access")
ID_TOKEN_LIFETIME = 3600
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_KEY_LOCK = threading.Lock()
_SIGNING_KEY: list[rsa.RSAPrivateKey] = []       # one RSA key per process (generating one takes 0.1 s)


def signing_key() -> rsa.RSAPrivateKey:
    with _KEY_LOCK:
        if not _SIGNING_KEY:
            _SIGNING_KEY.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return _SIGNING_KEY[0]


@dataclass
class Client:
    client_id: str
    secret: str | None
    auth_method: str
    redirect_uris: list[str]
    grant_types: list[str]
    metadata: dict = field(default_factory=dict)


@dataclass
class Code:
    client_id: str
    redirect_uri: str
    challenge: str
    resource: str
    user: str
    scope: str | None
    expires_at: float
    nonce: str | None = None
    auth_time: float = 0.0
    used: bool = False
    issued: list[str] = field(default_factory=list)   # tokens issued with it (revoked if it is replayed)


@dataclass(frozen=True)
class Grant:
    """What an access token stands for: introspection's answer."""

    user: str
    client_id: str
    resource: str
    scope: str | None
    expires_at: float


@dataclass
class _Refresh:
    user: str
    client_id: str
    resource: str
    scope: str | None


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


class FakeAuthorizationServer(LoopbackServer):
    def __init__(self, *, path: str = "", expires_in: int = 3600, discovery: str = "oauth",
                 registration: bool = True, scopes: list[str] | None = None, code_ttl: float = 60.0,
                 oidc: bool = True):
        super().__init__()
        self.path = path.rstrip("/")
        self.oidc = oidc
        self.issue_id_tokens = True
        self.id_token_claims: dict[str, Any] = {}
        self.people: dict[str, dict[str, Any]] = {}     # email -> {"oid": ..., "email_verified": ...}
        self.kid = "fake-oauth-" + secrets.token_hex(4)
        self.expires_in = expires_in
        self.discovery = discovery
        self.registration = registration
        self.scopes = scopes
        self.code_ttl = code_ttl
        self.deny_consent = False
        self.signed_in: str | None = None
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, Code] = {}
        self.access: dict[str, Grant] = {}
        self.refreshes: dict[str, _Refresh] = {}
        self.resources: set[str] = set()
        self.token_requests = 0      # authorization_code grants asked for
        self.refresh_requests = 0    # refresh_token grants asked for
        self.registrations = 0
        self.requests: list[Request] = []

    # -- what tests and the resource server use -------------------------------------------------

    @property
    def issuer(self) -> str:
        return self.origin + self.path

    def as_user(self, email: str | None, *, oid: str | None = None,
                email_verified: bool | None = None) -> "FakeAuthorizationServer":
        """The person signed in to the authorization server in "the browser"; ``oid`` (their object
        id, Entra's claim) and ``email_verified`` are remembered for them."""
        self.signed_in = email
        if email is not None:
            with self.lock:
                person = self.people.setdefault(email, {})
                if oid is not None:
                    person["oid"] = oid
                if email_verified is not None:
                    person["email_verified"] = email_verified
        return self

    def add_resource(self, url: str) -> None:
        """A resource (an MCP server's canonical URL) tokens may be issued for."""
        with self.lock:
            self.resources.add(url.rstrip("/"))

    def register(self, redirect_uris: list[str], *, client_id: str | None = None, secret: str | None = None,
                 auth_method: str | None = None) -> Client:
        """A client registered out of band (an operator's configured ``client_id``)."""
        client = Client(client_id or "pre-" + secrets.token_hex(6), secret,
                        auth_method or ("client_secret_basic" if secret else "none"), list(redirect_uris),
                        ["authorization_code", "refresh_token"])
        with self.lock:
            self.clients[client.client_id] = client
        return client

    def revoke_user(self, email: str) -> int:
        """Every token of this person revoked (an administrator's action): how many."""
        with self.lock:
            dead = [t for t, g in self.access.items() if g.user == email]
            dead_refresh = [t for t, r in self.refreshes.items() if r.user == email]
            for t in dead:
                del self.access[t]
            for t in dead_refresh:
                del self.refreshes[t]
        return len(dead) + len(dead_refresh)

    def introspect(self, token: str) -> Grant | None:
        """The grant an access token stands for, None when unknown, revoked or expired."""
        with self.lock:
            grant = self.access.get(token)
        if grant is None or grant.expires_at <= time.time():
            return None
        return grant

    def tokens_of(self, email: str) -> list[str]:
        with self.lock:
            return [t for t, g in self.access.items() if g.user == email]

    # -- HTTP ------------------------------------------------------------------------------------

    def metadata(self) -> dict:
        doc = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "authorization_response_iss_parameter_supported": True,
        }
        if self.registration:
            doc["registration_endpoint"] = f"{self.issuer}/register"
        if self.scopes is not None:
            doc["scopes_supported"] = list(self.scopes)
        if self.oidc:
            doc["scopes_supported"] = list(dict.fromkeys([*OIDC_SCOPES, *(self.scopes or ())]))
            doc.update(jwks_uri=f"{self.issuer}/jwks", subject_types_supported=["public"],
                       id_token_signing_alg_values_supported=["RS256"],
                       claims_supported=["iss", "aud", "sub", "exp", "iat", "auth_time", "nonce", "email",
                                         "email_verified", "oid"])
        return doc

    def jwks(self) -> dict:
        jwk = json.loads(RSAAlgorithm.to_jwk(signing_key().public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def _known_scopes(self) -> set[str] | None:
        if self.scopes is None:
            return None
        return set(self.scopes) | (set(OIDC_SCOPES) if self.oidc else set())

    def handle(self, request: Request) -> Reply:
        with self.lock:
            self.requests.append(request)
        path = request.path
        if request.method == "GET" and self.discovery == "oauth" and \
                path == "/.well-known/oauth-authorization-server" + self.path:
            return Reply(200, self.metadata())
        if request.method == "GET" and self.discovery == "openid" and \
                path == self.path + "/.well-known/openid-configuration":
            return Reply(200, self.metadata())
        if request.method == "GET" and self.oidc and path == self.path + "/jwks":
            return Reply(200, self.jwks())
        if not path.startswith(self.path + "/"):
            return Reply(404, {"error": "not_found"})
        endpoint = path[len(self.path):]
        try:
            if endpoint == "/register" and self.registration:
                return self._only("POST", request) or self._register(request)
            if endpoint == "/authorize":
                return self._only("GET", request) or self._authorize(request)
            if endpoint == "/token":
                return self._only("POST", request) or self._token(request)
        except OAuthError as exc:
            headers = dict(_NO_STORE)
            if exc.status == 401:
                headers["WWW-Authenticate"] = 'Basic realm="token"'
            return Reply(exc.status, {"error": exc.error, "error_description": exc.description}, headers)
        return Reply(404, {"error": "not_found"})

    @staticmethod
    def _only(method: str, request: Request) -> Reply | None:
        return None if request.method == method else Reply(405, {"error": "method not allowed"}, {"Allow": method})

    # RFC 7591
    def _register(self, request: Request) -> Reply:
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise OAuthError("invalid_client_metadata", "send the client metadata as JSON")
        try:
            meta = request.json()
        except ValueError:
            raise OAuthError("invalid_client_metadata", "the body is not JSON") from None
        if not isinstance(meta, dict):
            raise OAuthError("invalid_client_metadata", "the body is not a JSON object")
        uris = meta.get("redirect_uris")
        if not isinstance(uris, list) or not uris or not all(isinstance(u, str) and _redirect_ok(u) for u in uris):
            raise OAuthError("invalid_redirect_uri", "redirect_uris must list https URLs (or http on loopback)")
        method = meta.get("token_endpoint_auth_method", "client_secret_basic")
        if method not in AUTH_METHODS:
            raise OAuthError("invalid_client_metadata", f"token_endpoint_auth_method {method!r} is not supported")
        grants = meta.get("grant_types", ["authorization_code"])
        if not isinstance(grants, list) or "authorization_code" not in grants or \
                not set(grants) <= {"authorization_code", "refresh_token"}:
            raise OAuthError("invalid_client_metadata", "grant_types must be authorization_code [+ refresh_token]")
        if meta.get("response_types", ["code"]) != ["code"]:
            raise OAuthError("invalid_client_metadata", "response_types must be [\"code\"]")
        client = Client("dyn-" + secrets.token_hex(8), None if method == "none" else secrets.token_urlsafe(24),
                        method, list(uris), list(grants), dict(meta))
        with self.lock:
            self.clients[client.client_id] = client
            self.registrations += 1
        body = {**meta, "client_id": client.client_id, "client_id_issued_at": int(time.time()),
                "token_endpoint_auth_method": method, "grant_types": grants, "redirect_uris": uris}
        if client.secret:
            body.update(client_secret=client.secret, client_secret_expires_at=0)
        return Reply(201, body, dict(_NO_STORE))

    # RFC 6749 4.1.1, RFC 7636, RFC 8707
    def _authorize(self, request: Request) -> Reply:
        q = request.query
        client = self.clients.get(q.get("client_id", ""))
        if client is None:
            return Reply(400, "invalid_request: unknown client_id")
        redirect_uri = q.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            return Reply(400, "invalid_request: redirect_uri is not registered for this client")
        state = q.get("state")

        def refuse(error: str, description: str) -> Reply:
            params = {"error": error, "error_description": description, "iss": self.issuer}
            if state is not None:
                params["state"] = state
            return Reply(302, "", {"Location": _with_query(redirect_uri, params)})

        if q.get("response_type") != "code":
            return refuse("unsupported_response_type", "response_type must be code")
        if not state:
            return refuse("invalid_request", "state is required")
        if not q.get("code_challenge"):
            return refuse("invalid_request", "code_challenge is required (PKCE)")
        if q.get("code_challenge_method") != "S256":
            return refuse("invalid_request", "code_challenge_method must be S256")
        resource = q.get("resource", "").rstrip("/")
        if not resource:
            return refuse("invalid_request", "resource is required")
        if resource not in self.resources:
            return refuse("invalid_target", "unknown resource")
        scope = q.get("scope") or None
        known = self._known_scopes()
        if scope and known is not None and not set(scope.split()) <= known:
            return refuse("invalid_scope", "unknown scope")
        if scope and not self.oidc and "openid" in scope.split():
            return refuse("invalid_scope", "openid is not a scope of this server")
        user = self.signed_in or q.get("login_hint")
        if not user:
            return refuse("access_denied", "no one is signed in")
        if self.deny_consent:
            return refuse("access_denied", "the user declined")
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = Code(client.client_id, redirect_uri, q["code_challenge"], resource, user, scope,
                                    time.time() + self.code_ttl, nonce=q.get("nonce"), auth_time=time.time())
        return Reply(302, "", {"Location": _with_query(redirect_uri, {"code": code, "state": state,
                                                                      "iss": self.issuer})})

    def _client(self, request: Request, form: dict[str, str]) -> Client:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                raw = base64.b64decode(header[6:], validate=True).decode()
                client_id, _, secret = raw.partition(":")
                client_id, secret = unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))
            except ValueError:
                raise OAuthError("invalid_client", "malformed Basic credentials", 401) from None
            client = self.clients.get(client_id)
            if client is None or client.auth_method != "client_secret_basic" or \
                    not secrets.compare_digest(client.secret or "", secret):
                raise OAuthError("invalid_client", "client authentication failed", 401)
            return client
        client = self.clients.get(form.get("client_id", ""))
        if client is None:
            raise OAuthError("invalid_client", "unknown client", 401)
        if client.auth_method == "client_secret_post":
            if not secrets.compare_digest(client.secret or "", form.get("client_secret", "")):
                raise OAuthError("invalid_client", "client authentication failed", 401)
        elif client.auth_method != "none":
            raise OAuthError("invalid_client", "client authentication required", 401)
        return client

    def _token(self, request: Request) -> Reply:
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            raise OAuthError("invalid_request", "send the token request as form data")
        form = request.form()
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            with self.lock:
                self.token_requests += 1
        elif grant_type == "refresh_token":
            with self.lock:
                self.refresh_requests += 1
        else:
            raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
        client = self._client(request, form)
        if grant_type == "authorization_code":
            return self._code_grant(client, form)
        return self._refresh_grant(client, form)

    def _code_grant(self, client: Client, form: dict[str, str]) -> Reply:
        with self.lock:
            code = self.codes.get(form.get("code", ""))
            if code is None:
                raise OAuthError("invalid_grant", "unknown authorization code")
            if code.used:   # a replayed code: what it gave is revoked too (RFC 6749 4.1.2)
                for token in code.issued:
                    self.access.pop(token, None)
                    self.refreshes.pop(token, None)
                raise OAuthError("invalid_grant", "authorization code already used")
            code.used = True
        if code.expires_at <= time.time():
            raise OAuthError("invalid_grant", "authorization code expired")
        if code.client_id != client.client_id:
            raise OAuthError("invalid_grant", "authorization code was issued to another client")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
        verifier = form.get("code_verifier", "")
        if not 43 <= len(verifier) <= 128 or not secrets.compare_digest(_s256(verifier), code.challenge):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
        resource = form.get("resource", code.resource).rstrip("/")
        if resource != code.resource:
            raise OAuthError("invalid_target", "resource differs from the authorization request")
        return self._issue(client, code.user, code.resource, code.scope, code, nonce=code.nonce,
                           auth_time=code.auth_time)

    def _refresh_grant(self, client: Client, form: dict[str, str]) -> Reply:
        token = form.get("refresh_token", "")
        with self.lock:
            grant = self.refreshes.get(token)
            if grant is None:
                raise OAuthError("invalid_grant", "refresh token is invalid, expired or revoked")
            if grant.client_id != client.client_id:
                raise OAuthError("invalid_grant", "refresh token was issued to another client")
            resource = form.get("resource", grant.resource).rstrip("/")
            if resource != grant.resource:
                raise OAuthError("invalid_target", "resource differs from the original grant")
            scope = form.get("scope") or grant.scope
            if scope and grant.scope and not set(scope.split()) <= set(grant.scope.split()):
                raise OAuthError("invalid_scope", "a refresh may not widen the scope")
            del self.refreshes[token]           # rotation: this refresh token is spent
        return self._issue(client, grant.user, grant.resource, scope, None)

    def _issue(self, client: Client, user: str, resource: str, scope: str | None, code: Code | None, *,
               nonce: str | None = None, auth_time: float | None = None) -> Reply:
        access = "at-" + secrets.token_urlsafe(24)
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": self.expires_in}
        if self.oidc and self.issue_id_tokens and scope and "openid" in scope.split():
            body["id_token"] = self._id_token(client, user, scope, nonce, auth_time)
        with self.lock:
            self.access[access] = Grant(user, client.client_id, resource, scope, time.time() + self.expires_in)
            issued = [access]
            if "refresh_token" in client.grant_types:
                refresh = "rt-" + secrets.token_urlsafe(24)
                self.refreshes[refresh] = _Refresh(user, client.client_id, resource, scope)
                body["refresh_token"] = refresh
                issued.append(refresh)
            if code is not None:
                code.issued.extend(issued)
        if scope:
            body["scope"] = scope
        return Reply(200, body, dict(_NO_STORE))


    def _id_token(self, client: Client, user: str, scope: str, nonce: str | None, auth_time: float | None) -> str:
        """OpenID Connect Core 2: who signed in, for this client (a refresh's has no nonce)."""
        now = int(time.time())
        with self.lock:
            person = dict(self.people.get(user, {}))
            overrides = dict(self.id_token_claims)
        claims: dict[str, Any] = {"iss": self.issuer, "aud": client.client_id,
                                  "sub": "sub-" + hashlib.sha256(f"{self.issuer} {user}".encode()).hexdigest()[:24],
                                  "iat": now, "exp": now + ID_TOKEN_LIFETIME}
        if auth_time is not None:
            claims["auth_time"] = int(auth_time)
        if nonce is not None:
            claims["nonce"] = nonce
        if "email" in scope.split():
            claims.update(email=user, email_verified=person.get("email_verified", True))
        if person.get("oid"):
            claims["oid"] = person["oid"]
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return jwt.encode(claims, signing_key(), algorithm="RS256", headers={"kid": self.kid})


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def _redirect_ok(uri: str) -> bool:
    parts = urlsplit(uri)
    if parts.fragment or not parts.netloc:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"))


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))
