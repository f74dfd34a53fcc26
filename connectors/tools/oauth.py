"""The client side of the MCP authorization specification (2025-06-18, 2025-11-25), with requests.

An MCP server with per-person authorization is an OAuth 2.1 protected resource:

1. ``discover(http, server_url)``: its protected-resource metadata (RFC 9728) — from the
   ``resource_metadata`` of the ``WWW-Authenticate`` challenge an unauthenticated request gets, else
   ``/.well-known/oauth-protected-resource`` at the server's path, then at the root — names its
   authorization server, whose metadata (RFC 8414, path-aware; then OpenID Connect discovery) gives
   the endpoints. PKCE's S256 must be offered (the specification: refuse a server that does not).
2. A client: the operator's (``client_id``, ``client_secret_env``) or, when the authorization server
   offers it, one registered now (RFC 7591, ``register_client``).
3. ``authorization_url``: the authorization code request with PKCE S256, ``state`` and ``resource``
   (RFC 8707: the canonical URL of the MCP server; the token is for it alone), ``scope`` if configured.
4. ``exchange_code`` / ``refresh``: the token endpoint, ``resource`` sent again. A refusal
   (``invalid_grant`` …) is :class:`GrantRefused`: the person must connect again.
5. Who signed in: an authorization server that speaks OpenID Connect (``AuthServer.oidc``) is also
   asked for ``openid email`` with a ``nonce``, and the ID token its token endpoint returns is read by
   ``id_token_claims`` (issuer, audience, expiry, nonce), so that the use case can refuse a sign-in
   by someone other than the person the Connect link was made for.

Pure functions over an HTTP session; nothing is stored here (``usecases/tool_auth.py`` keeps the
pending authorizations and the sealed tokens). Deliberately free of the ``mcp`` SDK, which the web
process (the OAuth callback) never loads.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Iterable, Literal
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import requests
import requests.auth
from pydantic import BaseModel, Field, ValidationError

from connectors.tools.base import ToolFailed

# The MCP protocol version a discovery probe announces (the spec asks clients to send it).
PROTOCOL_VERSION = "2025-06-18"


class OAuthFailed(ToolFailed):
    """The authorization server or the resource's metadata could not be used (message for people)."""

    def __init__(self, message: str, *, error: str | None = None, transient: bool = False):
        super().__init__(message, transient=transient)
        self.error = error


class GrantRefused(OAuthFailed):
    """The token endpoint refused the grant (``invalid_grant``, ``invalid_client`` …): the code or
    refresh token is dead; the person must authorize again."""


class IdTokenInvalid(OAuthFailed):
    """The ID token of a token response is missing, malformed, or not for this sign-in (another
    issuer or client, expired, another nonce)."""


# How a tool whose authorization server cannot say who signed in (no OpenID Connect) is treated:
# ``verified`` (the default) refuses to connect it; ``link`` trusts that the Connect link, sent to
# the person alone, is opened by that person only.
Identity = Literal["verified", "link"]
IDENTITY_SCOPES = ("openid", "email")


@dataclass(frozen=True)
class OAuthTarget:
    """A tool whose people authorize with their own accounts (``auth: {oauth: per_user}``)."""

    tool: str
    server_url: str                       # the MCP server (the protected resource)
    client_id: str | None = None          # None: registered dynamically
    client_secret_env: str | None = None
    scopes: tuple[str, ...] = ()
    timeout: float = 10.0
    identity: Identity = "verified"


@dataclass(frozen=True)
class AuthServer:
    """What discovery found: the resource (the MCP server) and its authorization server's endpoints."""

    resource: str                         # the canonical URL tokens are asked for (RFC 8707)
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    registration_endpoint: str | None = None
    revocation_endpoint: str | None = None
    scopes_supported: tuple[str, ...] | None = None      # the resource's, else the server's
    auth_methods: tuple[str, ...] | None = None          # token_endpoint_auth_methods_supported
    iss_parameter: bool = False                          # RFC 9207: redirects carry ``iss``
    challenge_scope: str | None = None                   # the ``scope`` of the 401's challenge
    oidc: bool = False                                   # OpenID Connect: it issues ID tokens
    server_scopes: tuple[str, ...] | None = None         # the authorization server's own scopes_supported

    def as_json(self) -> dict[str, Any]:
        """What exchanging a code and refreshing need (kept with a pending authorization and tokens)."""
        return {"resource": self.resource, "issuer": self.issuer, "authorization_endpoint": self.authorization_endpoint,
                "token_endpoint": self.token_endpoint, "revocation_endpoint": self.revocation_endpoint,
                "iss_parameter": self.iss_parameter}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "AuthServer":
        return cls(resource=str(data["resource"]), issuer=str(data["issuer"]),
                   authorization_endpoint=str(data["authorization_endpoint"]),
                   token_endpoint=str(data["token_endpoint"]), revocation_endpoint=data.get("revocation_endpoint"),
                   iss_parameter=bool(data.get("iss_parameter")))


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str | None = None
    auth_method: str = "none"             # none | client_secret_basic | client_secret_post

    def as_json(self) -> dict[str, Any]:
        return {"client_id": self.client_id, "client_secret": self.client_secret, "auth_method": self.auth_method}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ClientCredentials":
        return cls(str(data["client_id"]), data.get("client_secret"), str(data.get("auth_method") or "none"))


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str | None
    expires_at: float | None              # seconds since the epoch; None: the server did not say
    scope: str | None = None
    id_token: str | None = None           # OpenID Connect: who signed in (read, never stored)

    def expiring(self, now: float, margin: float = 60.0) -> bool:
        return self.expires_at is not None and self.expires_at - margin <= now


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> "Pkce":
        verifier = secrets.token_urlsafe(64)[:96]      # 43..128 unreserved characters (RFC 7636 4.1)
        return cls(verifier, s256(verifier))


class _NoNetrc(requests.auth.AuthBase):
    """No credential of requests' own finding (``~/.netrc``) on requests to these servers."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


NO_NETRC = _NoNetrc()


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def new_state() -> str:
    return secrets.token_urlsafe(32)


# -- URLs ---------------------------------------------------------------------------------------

def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str) -> str:
    """``url`` if it is https, or http to a loopback host; else :class:`OAuthFailed`."""
    parts = urlsplit(url)
    if not parts.netloc or parts.scheme not in ("https", "http") or \
            (parts.scheme == "http" and not is_loopback(parts.hostname)):
        raise OAuthFailed(f"{what} {url!r} is not an https URL")
    return url


def canonical_resource(url: str) -> str:
    """The server's URL as a resource indicator: lower-case scheme and host, no fragment, no trailing
    slash (the MCP specification's canonical form)."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def _within(resource: str, server_url: str) -> bool:
    """Whether the metadata's ``resource`` covers ``server_url`` (same origin, a parent path)."""
    a, b = urlsplit(canonical_resource(resource)), urlsplit(canonical_resource(server_url))
    if (a.scheme, a.netloc) != (b.scheme, b.netloc):
        return False
    return (b.path + "/").startswith(a.path + "/")


_SCHEME = re.compile(r"(?:^|,)\s*Bearer(?=\s|,|$)", re.IGNORECASE)
_PARAM = re.compile(r'\s*,?\s*([A-Za-z0-9_\-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)')


def bearer_challenge(header: str | None) -> dict[str, str] | None:
    """The parameters of the ``Bearer`` challenge in a ``WWW-Authenticate`` value (names lower-cased),
    None without one. Parsing stops at the next challenge's scheme."""
    match = _SCHEME.search(header or "")
    if match is None:
        return None
    out: dict[str, str] = {}
    at = match.end()
    while (param := _PARAM.match(header or "", at)) is not None and param.end() > at:
        raw = param.group(2)
        value = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
        out.setdefault(param.group(1).lower(), value)
        at = param.end()
    return out


def protected_resource_urls(server_url: str, challenge_url: str | None = None) -> list[str]:
    """Where the protected-resource metadata may be, in the order the specification says."""
    parts = urlsplit(server_url)
    base = f"{parts.scheme}://{parts.netloc}"
    urls = [challenge_url] if challenge_url else []
    path = parts.path.rstrip("/")
    if path:
        urls.append(f"{base}/.well-known/oauth-protected-resource{path}")
    urls.append(f"{base}/.well-known/oauth-protected-resource")
    return list(dict.fromkeys(urls))


def authorization_server_urls(issuer: str) -> list[str]:
    """RFC 8414's path-aware metadata address, then OpenID Connect discovery's two forms."""
    parts = urlsplit(issuer)
    base = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    if not path:
        return [f"{base}/.well-known/oauth-authorization-server", f"{base}/.well-known/openid-configuration"]
    return [f"{base}/.well-known/oauth-authorization-server{path}", f"{base}/.well-known/openid-configuration{path}",
            f"{base}{path}/.well-known/openid-configuration"]


# -- the documents, as far as they are used ------------------------------------------------------

class _ResourceMetadata(BaseModel):
    resource: str
    authorization_servers: list[str] = Field(min_length=1)
    scopes_supported: list[str] | None = None


class _ServerMetadata(BaseModel):
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    registration_endpoint: str | None = None
    revocation_endpoint: str | None = None
    scopes_supported: list[str] | None = None
    response_types_supported: list[str] = ["code"]
    userinfo_endpoint: str | None = None
    jwks_uri: str | None = None
    code_challenge_methods_supported: list[str] | None = None
    token_endpoint_auth_methods_supported: list[str] | None = None
    authorization_response_iss_parameter_supported: bool | None = None


class _TokenResponse(BaseModel):
    access_token: str = Field(min_length=1)
    token_type: str
    expires_in: int | None = None
    refresh_token: str | None = None
    scope: str | None = None
    id_token: str | None = None


def _get_json(http: requests.Session, url: str, timeout: float) -> tuple[int, Any]:
    try:
        response = http.get(url, timeout=timeout, allow_redirects=False, auth=NO_NETRC,
                            headers={"Accept": "application/json", "MCP-Protocol-Version": PROTOCOL_VERSION})
    except requests.RequestException as exc:
        raise OAuthFailed(f"could not reach {urlsplit(url).netloc}: {type(exc).__name__}", transient=True) from None
    if response.status_code >= 500:
        raise OAuthFailed(f"{urlsplit(url).netloc} answered {response.status_code}", transient=True)
    if response.status_code != 200:
        return response.status_code, None
    try:
        return 200, response.json()
    except ValueError:
        return 200, None


def challenge(http: requests.Session, server_url: str, timeout: float = 10.0) -> dict[str, str] | None:
    """What the MCP server says to a request without credentials: its ``Bearer`` challenge (an
    ``initialize`` with no ``Authorization``; a server that needs none answers it, and None is returned)."""
    body = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                       "clientInfo": {"name": "chatops", "version": "1"}}}
    try:
        response = http.post(server_url, json=body, timeout=timeout, allow_redirects=False, stream=True, auth=NO_NETRC,
                             headers={"Accept": "application/json, text/event-stream",
                                      "MCP-Protocol-Version": PROTOCOL_VERSION})
    except requests.RequestException as exc:
        raise OAuthFailed(f"could not reach {urlsplit(server_url).netloc}: {type(exc).__name__}",
                          transient=True) from None
    with response:
        if response.status_code != 401:
            return None
        return bearer_challenge(response.headers.get("WWW-Authenticate")) or {}


def discover(http: requests.Session, server_url: str, *, www_authenticate: str | None = None,
             probe: bool = True, timeout: float = 10.0) -> AuthServer:
    """The resource's metadata and its authorization server's. ``www_authenticate``: a 401's header
    already in hand; else (``probe``) one unauthenticated request asks for it."""
    check_url(server_url, "the MCP server URL")
    params = bearer_challenge(www_authenticate) if www_authenticate else None
    if params is None and probe:
        params = challenge(http, server_url, timeout)
    params = params or {}
    hinted = params.get("resource_metadata")
    if hinted:
        check_url(hinted, "the resource_metadata URL")
    resource_doc = None
    for url in protected_resource_urls(server_url, hinted):
        status, data = _get_json(http, url, timeout)
        if status == 200 and data is not None:
            try:
                resource_doc = _ResourceMetadata.model_validate(data)
            except ValidationError as exc:
                raise OAuthFailed(f"the protected-resource metadata at {url} is invalid: "
                                  f"{exc.errors()[0].get('loc')}") from None
            break
    if resource_doc is None:
        raise OAuthFailed(f"{server_url} publishes no OAuth protected-resource metadata (RFC 9728): "
                          "it does not support per-person authorization")
    if not _within(resource_doc.resource, server_url):
        raise OAuthFailed(f"the protected-resource metadata is for {resource_doc.resource}, not {server_url}")
    issuer = check_url(resource_doc.authorization_servers[0], "the authorization server")
    server_doc = None
    openid_discovery = False
    for url in authorization_server_urls(issuer):
        status, data = _get_json(http, url, timeout)
        if status == 200 and data is not None:
            try:
                server_doc = _ServerMetadata.model_validate(data)
            except ValidationError as exc:
                raise OAuthFailed(f"the authorization server metadata at {url} is invalid: "
                                  f"{exc.errors()[0].get('loc')}") from None
            openid_discovery = "/.well-known/openid-configuration" in urlsplit(url).path
            break
    if server_doc is None:
        raise OAuthFailed(f"the authorization server {issuer} publishes no metadata (RFC 8414 or OpenID discovery)")
    if server_doc.issuer.rstrip("/") != issuer.rstrip("/"):
        raise OAuthFailed(f"the authorization server metadata names issuer {server_doc.issuer}, not {issuer}")
    if "S256" not in (server_doc.code_challenge_methods_supported or []):
        raise OAuthFailed(f"the authorization server {issuer} does not offer PKCE with S256")
    if "code" not in server_doc.response_types_supported:
        raise OAuthFailed(f"the authorization server {issuer} does not offer the authorization code grant")
    for name in ("authorization_endpoint", "token_endpoint"):
        check_url(getattr(server_doc, name), f"the {name.replace('_', ' ')}")
    if server_doc.registration_endpoint:
        check_url(server_doc.registration_endpoint, "the registration endpoint")
    scopes = resource_doc.scopes_supported or server_doc.scopes_supported
    # OpenID Connect: found through its discovery, or the metadata says so (RFC 8414 documents of
    # OpenID providers list ``openid`` and carry the OpenID fields)
    oidc = openid_discovery or "openid" in (server_doc.scopes_supported or ()) or \
        bool(server_doc.userinfo_endpoint) or bool(server_doc.jwks_uri)
    return AuthServer(
        resource=canonical_resource(resource_doc.resource), issuer=server_doc.issuer,
        authorization_endpoint=server_doc.authorization_endpoint, token_endpoint=server_doc.token_endpoint,
        registration_endpoint=server_doc.registration_endpoint, revocation_endpoint=server_doc.revocation_endpoint,
        scopes_supported=tuple(scopes) if scopes is not None else None,
        auth_methods=tuple(server_doc.token_endpoint_auth_methods_supported)
        if server_doc.token_endpoint_auth_methods_supported is not None else None,
        iss_parameter=bool(server_doc.authorization_response_iss_parameter_supported),
        challenge_scope=params.get("scope"), oidc=oidc,
        server_scopes=tuple(server_doc.scopes_supported) if server_doc.scopes_supported is not None else None)


def identity_scopes(server: AuthServer, scopes: Iterable[str] | None) -> tuple[str, ...]:
    """``scopes`` (else the 401 challenge's) with ``openid email`` added, ``email`` only where the
    server does not say it lacks it: what asks an OpenID provider to say who signs in."""
    base = list(scopes) if scopes else (server.challenge_scope or "").split()
    extra = [s for s in IDENTITY_SCOPES
             if s == "openid" or server.server_scopes is None or s in server.server_scopes]
    return tuple(dict.fromkeys(base + extra))


# -- the client ---------------------------------------------------------------------------------

def register_client(http: requests.Session, server: AuthServer, *, redirect_uri: str, client_name: str = "chatops",
                    scopes: Iterable[str] | None = None, timeout: float = 10.0) -> ClientCredentials:
    """A client registered with the authorization server now (RFC 7591): a confidential one when the
    server takes client secrets (RFC 8414's default is ``client_secret_basic``), else a public one."""
    if not server.registration_endpoint:
        raise OAuthFailed(f"the authorization server {server.issuer} has no dynamic client registration: "
                          "configure the tool's client_id (and client_secret_env)")
    methods = server.auth_methods if server.auth_methods is not None else ("client_secret_basic",)
    method = next((m for m in ("client_secret_basic", "client_secret_post", "none") if m in methods), None)
    if method is None:
        raise OAuthFailed(f"the authorization server {server.issuer} supports no client authentication "
                          f"this client has ({', '.join(methods)})")
    body: dict[str, Any] = {"client_name": client_name, "redirect_uris": [redirect_uri],
                            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
                            "token_endpoint_auth_method": method, "application_type": "web"}
    if scopes:
        body["scope"] = " ".join(scopes)
    try:
        response = http.post(server.registration_endpoint, json=body, timeout=timeout, allow_redirects=False,
                             auth=NO_NETRC)
    except requests.RequestException as exc:
        raise OAuthFailed(f"could not reach the authorization server: {type(exc).__name__}", transient=True) from None
    data = _json_or_none(response)
    if response.status_code not in (200, 201) or not isinstance(data, dict) or not data.get("client_id"):
        detail = _error_text(data) or f"HTTP {response.status_code}"
        raise OAuthFailed(f"client registration refused by {server.issuer}: {detail}",
                          transient=response.status_code >= 500)
    granted = str(data.get("token_endpoint_auth_method") or method)
    secret = data.get("client_secret")
    if granted != "none" and not secret:
        granted = "none"
    return ClientCredentials(str(data["client_id"]), str(secret) if secret else None, granted)


def authorization_url(server: AuthServer, client: ClientCredentials, *, redirect_uri: str, state: str,
                      code_challenge: str, scopes: Iterable[str] | None = None, nonce: str | None = None) -> str:
    """Where the person's browser goes to authorize (PKCE S256, ``state``, ``resource``; with a
    ``nonce``, an OpenID Connect request: ``scopes`` should then hold ``identity_scopes``)."""
    params = {"response_type": "code", "client_id": client.client_id, "redirect_uri": redirect_uri,
              "state": state, "code_challenge": code_challenge, "code_challenge_method": "S256",
              "resource": server.resource}
    scope = " ".join(scopes) if scopes else server.challenge_scope
    if scope:
        params["scope"] = scope
    if nonce is not None:
        params["nonce"] = nonce
    parts = urlsplit(server.authorization_endpoint)
    query = "&".join(q for q in (parts.query, urlencode(params, quote_via=quote)) if q)
    return urlunsplit(parts._replace(query=query))


def exchange_code(http: requests.Session, server: AuthServer, client: ClientCredentials, *, code: str,
                  redirect_uri: str, code_verifier: str, timeout: float = 10.0) -> Tokens:
    return _token(http, server, client, {"grant_type": "authorization_code", "code": code,
                                         "redirect_uri": redirect_uri, "code_verifier": code_verifier,
                                         "resource": server.resource}, timeout)


def refresh(http: requests.Session, server: AuthServer, client: ClientCredentials, refresh_token: str, *,
            timeout: float = 10.0) -> Tokens:
    """New tokens for a refresh token. A server that rotates refresh tokens sends a new one; one that
    does not keeps the old one valid (it is kept)."""
    tokens = _token(http, server, client, {"grant_type": "refresh_token", "refresh_token": refresh_token,
                                           "resource": server.resource}, timeout)
    if tokens.refresh_token is None:
        return Tokens(tokens.access_token, refresh_token, tokens.expires_at, tokens.scope)
    return tokens


def revoke(http: requests.Session, server: AuthServer, client: ClientCredentials, token: str, *,
           hint: str = "refresh_token", timeout: float = 5.0) -> bool:
    """Ask the authorization server to revoke a token (RFC 7009), where it has the endpoint. Best
    effort: whether it said yes."""
    if not server.revocation_endpoint:
        return False
    form, auth = _client_auth(client, {"token": token, "token_type_hint": hint})
    try:
        response = http.post(server.revocation_endpoint, data=form, auth=auth, timeout=timeout, allow_redirects=False)
    except requests.RequestException:
        return False
    return response.status_code == 200


def _client_auth(client: ClientCredentials, form: dict[str, str]
                 ) -> tuple[dict[str, str], tuple[str, str] | requests.auth.AuthBase]:
    """The form and the ``auth`` of a request to the token endpoint, by the client's method."""
    if client.auth_method == "client_secret_basic" and client.client_secret:
        # RFC 6749 2.3.1: each part form-encoded before Basic's encoding
        return form, (quote(client.client_id, safe=""), quote(client.client_secret, safe=""))
    form = {**form, "client_id": client.client_id}
    if client.auth_method == "client_secret_post" and client.client_secret:
        form["client_secret"] = client.client_secret
    return form, NO_NETRC


def _token(http: requests.Session, server: AuthServer, client: ClientCredentials, form: dict[str, str],
           timeout: float) -> Tokens:
    form, auth = _client_auth(client, form)
    try:
        response = http.post(server.token_endpoint, data=form, auth=auth, timeout=timeout, allow_redirects=False,
                             headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        raise OAuthFailed(f"could not reach the authorization server: {type(exc).__name__}", transient=True) from None
    data = _json_or_none(response)
    if response.status_code >= 500 or response.status_code == 429:
        raise OAuthFailed(f"the authorization server answered {response.status_code}", transient=True)
    if response.status_code != 200:
        error = data.get("error") if isinstance(data, dict) else None
        message = f"the authorization server refused: {_error_text(data) or f'HTTP {response.status_code}'}"
        raise GrantRefused(message, error=str(error) if error else None)
    try:
        parsed = _TokenResponse.model_validate(data)
    except ValidationError:
        raise OAuthFailed("the authorization server's token response is not valid") from None
    if parsed.token_type.lower() != "bearer":
        raise OAuthFailed(f"the authorization server issued a {parsed.token_type!r} token, not a bearer token")
    expires_at = time.time() + parsed.expires_in if parsed.expires_in is not None else None
    return Tokens(parsed.access_token, parsed.refresh_token, expires_at, parsed.scope, parsed.id_token)


# -- OpenID Connect: who signed in ---------------------------------------------------------------

CLOCK_SKEW = 60.0           # seconds an ID token's ``exp`` may lag our clock


def id_token_claims(id_token: str | None, *, issuer: str, client_id: str, nonce: str,
                    now: float | None = None) -> dict[str, Any]:
    """The claims of the ID token a token response carried, checked as OpenID Connect Core 3.1.3.7
    says for this flow; :class:`IdTokenInvalid` otherwise.

    The signature is not checked, on purpose: the token came straight from the token endpoint
    over TLS (``check_url``: https, or loopback), in answer to our own authenticated request with
    the code and its PKCE verifier, and 3.1.3.7 (6) lets "the TLS server validation" of that
    channel stand in for the signature. Everything else is checked: the issuer is the authorization
    server discovery found, our client is an audience (and the authorized party, if one is named),
    it has not expired, and it carries the ``nonce`` the authorization request sent."""
    if not id_token:
        raise IdTokenInvalid("the authorization server sent no ID token")
    parts = id_token.split(".")
    if len(parts) != 3:
        raise IdTokenInvalid("the ID token is not a signed JWT" + (" (encrypted ID tokens are not supported)"
                                                                   if len(parts) == 5 else ""))
    header, claims = _jwt_part(parts[0]), _jwt_part(parts[1])
    if not isinstance(header.get("alg"), str) or header["alg"].lower() == "none":
        raise IdTokenInvalid("the ID token is unsigned (alg none)")
    if claims.get("iss") != issuer:
        raise IdTokenInvalid("the ID token was issued by another issuer")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
    if client_id not in audiences:
        raise IdTokenInvalid("the ID token is not for this client")
    if "azp" in claims and claims["azp"] != client_id:
        raise IdTokenInvalid("the ID token was issued to another client (azp)")
    expires = claims.get("exp")
    if isinstance(expires, bool) or not isinstance(expires, (int, float)):
        raise IdTokenInvalid("the ID token has no expiry")
    if expires + CLOCK_SKEW <= (time.time() if now is None else now):
        raise IdTokenInvalid("the ID token has expired")
    sent = claims.get("nonce")
    if not isinstance(sent, str) or not secrets.compare_digest(sent.encode(), nonce.encode()):
        raise IdTokenInvalid("the ID token is not for this sign-in (nonce)")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise IdTokenInvalid("the ID token names no subject")
    return claims


def _jwt_part(part: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, binascii.Error):
        raise IdTokenInvalid("the ID token is not a JWT") from None
    if not isinstance(data, dict):
        raise IdTokenInvalid("the ID token is not a JWT")
    return data


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_text(data: Any) -> str:
    if not isinstance(data, dict) or not data.get("error"):
        return ""
    description = data.get("error_description")
    return f"{data['error']}" + (f" ({str(description)[:200]})" if description else "")
