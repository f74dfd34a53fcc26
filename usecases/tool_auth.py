"""People's own credentials for tools with per-person authorization (``auth: {oauth: per_user}``).

The flow crosses processes: a worker finds that the asker has no token and posts a Connect button
(``begin``: the authorization URL, the pending authorization kept in Redis for ten minutes under the
hash of its ``state``); the person's browser comes back to the web process
(``GET <CHATOPS_PUBLIC_URL>/tools/oauth/callback``: ``complete`` takes the pending authorization
once, exchanges the code and stores the tokens); every later question's calls ask
``access_token`` (refreshed when it expires within a minute, by one process at a time).

What is stored is sealed with Fernet under ``CHATOPS_TOOL_TOKEN_KEY`` (the tokens in the database,
keyed by the tool and the person's stable id; the pending authorizations and a dynamically
registered client in Redis), and each sealed token names the tool and the person it belongs to: a
person's token is read with that person's id only, and a row copied under another id is refused.
A token the authorization server refuses to refresh (or that cannot be opened) is deleted, and the
person must connect again (``ConnectionNeeded``).

Whoever opens a Connect link and signs in completes it, so a link forwarded to someone else (or
sent to them on purpose: "login CSRF" for account linking) would store *their* account under the
person the link was made for. The completed authorization is therefore bound to that person: where
the authorization server speaks OpenID Connect, the request also asks for ``openid email`` with a
``nonce`` kept in the pending authorization, and ``complete`` requires the ID token and that it
names the person (``signed_in_as``: Entra's ``oid`` against the directory's object id; otherwise a
verified ``email``, or for Entra ``preferred_username`` / ``upn``, against the person's email),
else nothing is kept. Where the server cannot say who signed in, the tool's ``identity`` setting
decides: ``verified`` (the default) refuses to start connecting, ``link`` trusts the link alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple

import redis
import requests
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from chatops import keys
from chatops.errors import ConfigError
from chatops.store.tools import ToolRecords
from connectors.tools import oauth
from connectors.tools.base import Caller, ConnectionNeeded, ToolFailed
from connectors.tools.oauth import AuthServer, ClientCredentials, OAuthTarget, Tokens

log = logging.getLogger(__name__)

CALLBACK_PATH = "/tools/oauth/callback"
FLOW_TTL = 600                  # seconds a Connect link stays good
EMAIL_ID_PREFIX = "email:"      # a person the directory has no object id for (``usecases.tools.caller_of``)
SOMEONE_ELSE = "This link was made for someone else. Ask the bot yourself to get your own Connect button."
REFRESH_MARGIN = 60.0           # a token expiring within this many seconds is refreshed first
_FORMAT = 1


class ConnectFailed(Exception):
    """The authorization could not be completed: the message is for the person; ``status`` the web
    answer's (400: the link is expired, used or refused; 502: the authorization server is down)."""

    def __init__(self, message: str, *, status: int = 400, tool: str | None = None):
        super().__init__(message)
        self.status = status
        self.tool = tool


class Connected(NamedTuple):
    tool: str
    person_id: str
    slack_user_id: str | None = None     # where to tell them (a DM), when the link came from Slack


@dataclass(frozen=True)
class _Held:
    """A person's tokens for a tool as stored (opened), with what refreshing them needs."""

    tokens: Tokens
    client: ClientCredentials
    configured_client: bool
    server: AuthServer


class ToolConnections:
    """Per-person OAuth for the tools in ``targets``; implements ``connectors.tools.base.TokenSource``."""

    def __init__(self, *, targets: Mapping[str, OAuthTarget], records: ToolRecords, redis_client: redis.Redis,
                 key_prefix: str, http: requests.Session, secret: Callable[[str], str | None],
                 token_keys: Sequence[str], public_url: str | None, clock: Callable[[], float] = time.time):
        self.targets = dict(targets)
        names = ", ".join(sorted(self.targets))
        if self.targets and not token_keys:
            raise ConfigError(f"CHATOPS_TOOL_TOKEN_KEY is not set: the tools {names} use each person's own "
                              "account, whose tokens are sealed with that key (a Fernet key; see "
                              "docs/configuration.md)")
        if self.targets and not public_url:
            raise ConfigError(f"CHATOPS_PUBLIC_URL is not set: the tools {names} use each person's own account, "
                              f"and their authorizations come back to <CHATOPS_PUBLIC_URL>{CALLBACK_PATH}")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in token_keys]) if token_keys else None
        self.redirect_uri = (public_url or "").rstrip("/") + CALLBACK_PATH
        self.records = records
        self.redis = redis_client
        self.prefix = key_prefix
        self.http = http
        self.secret = secret
        self.clock = clock
        self._servers: dict[str, AuthServer] = {}

    # -- connecting ------------------------------------------------------------------------------

    def per_person(self, tool: str) -> bool:
        return tool in self.targets

    def begin(self, tool: str, caller: Caller) -> str:
        """The URL the person opens to connect ``tool`` (valid ten minutes, once, for ``caller``
        alone where the server can say who signs in). Raises ``ToolFailed`` when the tool's
        authorization server cannot be used now, or cannot say who signs in (no OpenID Connect) and
        the tool's ``identity`` is ``verified``."""
        target = self._target(tool)
        server = self._server(target)
        if not server.oidc and target.identity != "link":
            raise ToolFailed(f"{tool}: its authorization server {server.issuer} cannot tell who signs in (no "
                             "OpenID Connect); set identity: link in its tools: entry to trust the Connect "
                             "link alone")
        client, configured = self._client(target, server)
        pkce = oauth.Pkce.new()
        state = oauth.new_state()
        nonce = oauth.new_state() if server.oidc else None
        flow = {"tool": tool, "person_id": caller.person_id, "email": caller.email, "slack": caller.slack_user_id,
                "verifier": pkce.verifier,
                "redirect_uri": self.redirect_uri, "client": client.as_json(), "configured_client": configured,
                "server": server.as_json(), "at": self.clock(),
                "identity": "id_token" if nonce is not None else "link", "nonce": nonce}
        self.redis.set(keys.tool_oauth_flow(self.prefix, _digest(state)), self._seal(flow), ex=FLOW_TTL)
        scopes = oauth.identity_scopes(server, target.scopes) if server.oidc else target.scopes or None
        return oauth.authorization_url(server, client, redirect_uri=self.redirect_uri, state=state,
                                       code_challenge=pkce.challenge, scopes=scopes, nonce=nonce)

    def complete(self, state: str, code: str, *, iss: str | None = None) -> Connected:
        """The authorization came back: exchange the code, keep the person's tokens. A ``state`` is
        good once. Raises :class:`ConnectFailed`."""
        flow = self._take(state)
        tool, person_id = str(flow["tool"]), str(flow["person_id"])
        if tool not in self.targets:
            raise ConnectFailed(f"The tool {tool!r} is no longer configured.", tool=tool)
        identity = flow.get("identity")
        if identity not in ("id_token", "link"):          # a link made before sign-ins were checked
            raise ConnectFailed("This link has expired. Ask your question again to get a new Connect button.",
                                tool=tool)
        if identity == "link" and self.targets[tool].identity != "link":
            raise ConnectFailed("This link was made before the tool's settings changed; nothing was kept. "
                                "Ask your question again.", tool=tool)
        server = AuthServer.from_json(flow["server"])
        if (iss is not None and iss != server.issuer) or (iss is None and server.iss_parameter):
            # RFC 9207: the answer must come from the server the person was sent to
            raise ConnectFailed("The authorization came back from another authorization server; nothing was kept.",
                                tool=tool)
        client = self._current_client(self.targets[tool], flow["client"], bool(flow["configured_client"]))
        try:
            tokens = oauth.exchange_code(self.http, server, client, code=code, redirect_uri=str(flow["redirect_uri"]),
                                         code_verifier=str(flow["verifier"]), timeout=self.targets[tool].timeout)
        except oauth.GrantRefused as exc:
            raise ConnectFailed(f"The authorization server refused the connection ({exc}). "
                                "Ask your question again to get a new link.", tool=tool) from None
        except oauth.OAuthFailed as exc:
            raise ConnectFailed(f"Could not finish connecting: {exc}. Try again in a moment.",
                                status=502 if exc.transient else 400, tool=tool) from None
        if identity == "id_token":
            self._check_sign_in(tool, flow, server, client, tokens)
        self._keep(tool, person_id, _Held(tokens, client, bool(flow["configured_client"]), server))
        log.info("tool connected", extra={"tool": tool})
        return Connected(tool, person_id, flow.get("slack"))

    def _check_sign_in(self, tool: str, flow: dict[str, Any], server: AuthServer, client: ClientCredentials,
                       tokens: Tokens) -> None:
        """The account that signed in is the person the link was made for, by the ID token the token
        endpoint returned; else the tokens are revoked (where the server can) and ConnectFailed."""
        try:
            claims = oauth.id_token_claims(tokens.id_token, issuer=server.issuer, client_id=client.client_id,
                                           nonce=str(flow.get("nonce") or ""), now=self.clock())
        except oauth.IdTokenInvalid as exc:
            self._discard(server, client, tokens)
            log.warning("a tool connection was refused: the ID token did not check out",
                        extra={"tool": tool, "error": str(exc)})
            raise ConnectFailed(f"Could not tell who signed in ({exc}), so nothing was kept. Ask your question "
                                "again to get a new link.", tool=tool) from None
        if not signed_in_as(claims, str(flow["person_id"]), str(flow["email"])):
            self._discard(server, client, tokens)
            # no identities in the log: the person's and the account's are not the operator's business here
            log.warning("a tool connection was refused: someone other than the person the link was made for "
                        "signed in", extra={"tool": tool})
            raise ConnectFailed(SOMEONE_ELSE, tool=tool)

    def _discard(self, server: AuthServer, client: ClientCredentials, tokens: Tokens) -> None:
        """Tokens that will not be kept, revoked where the server offers it (best effort)."""
        if tokens.refresh_token:
            oauth.revoke(self.http, server, client, tokens.refresh_token)
        oauth.revoke(self.http, server, client, tokens.access_token, hint="access_token")

    def abandon(self, state: str) -> str | None:
        """The authorization server answered with an error (the person declined …): the pending
        authorization is dropped; its tool, if it was known."""
        try:
            flow = self._take(state)
        except ConnectFailed:
            return None
        return str(flow["tool"])

    def disconnect(self, tool: str, person_id: str) -> bool:
        """The person's tokens for ``tool`` deleted (and revoked where the server offers it):
        whether there were any."""
        try:
            held = self._load(tool, person_id, drop_bad=False)
        except ToolFailed:            # the operator's client secret is not set: nothing to revoke with
            held = None
        dropped = self.records.drop_token(tool, person_id)
        if held is not None and held.tokens.refresh_token:
            oauth.revoke(self.http, held.server, held.client, held.tokens.refresh_token)
        return dropped

    def connected(self, person_id: str) -> list[str]:
        """The per-person tools this person has connected."""
        return [t for t in self.records.connected(person_id) if t in self.targets]

    # -- TokenSource -----------------------------------------------------------------------------

    def access_token(self, tool: str, caller: Caller) -> str:
        """A valid access token of ``caller``'s for ``tool``, refreshed first when it expires within
        a minute. Raises ``ConnectionNeeded`` (none, or the refresh was refused: the token is then
        deleted) or ``ToolFailed`` (the authorization server cannot be reached now)."""
        self._target(tool)
        held = self._load(tool, caller.person_id)
        if held is None:
            raise ConnectionNeeded(tool)
        if not held.tokens.expiring(self.clock(), REFRESH_MARGIN):
            return held.tokens.access_token
        return self._refresh(tool, caller.person_id, stale=held.tokens.access_token)

    def rejected(self, tool: str, caller: Caller, token: str) -> str:
        """The tool's server refused ``token`` (401): a fresh one, or ``ConnectionNeeded`` (the
        refresh refused: the tokens are deleted)."""
        self._target(tool)
        return self._refresh(tool, caller.person_id, stale=token)

    # -- inside ----------------------------------------------------------------------------------

    def _target(self, tool: str) -> OAuthTarget:
        target = self.targets.get(tool)
        if target is None:
            raise ToolFailed(f"{tool} does not use each person's own account")
        return target

    def _server(self, target: OAuthTarget) -> AuthServer:
        server = self._servers.get(target.tool)
        if server is None:
            server = self._servers[target.tool] = oauth.discover(self.http, target.server_url,
                                                                 timeout=target.timeout)
        return server

    def _client(self, target: OAuthTarget, server: AuthServer) -> tuple[ClientCredentials, bool]:
        """The operator's client, or the one registered for this tool (registered now if none is)."""
        if target.client_id:
            return self._configured_client(target, server.auth_methods), True
        key = keys.tool_oauth_client(self.prefix, target.tool)
        raw = self.redis.get(key)
        kept = self._open(raw.decode() if isinstance(raw, bytes) else raw) if raw else None
        if kept and kept.get("issuer") == server.issuer and kept.get("redirect_uri") == self.redirect_uri:
            return ClientCredentials.from_json(kept["client"]), False
        scopes = oauth.identity_scopes(server, target.scopes) if server.oidc and target.scopes else target.scopes
        client = oauth.register_client(self.http, server, redirect_uri=self.redirect_uri,
                                       scopes=scopes or None, timeout=target.timeout)
        self.redis.set(key, self._seal({"issuer": server.issuer, "redirect_uri": self.redirect_uri,
                                        "client": client.as_json()}))
        log.info("OAuth client registered for a tool", extra={"tool": target.tool, "issuer": server.issuer})
        return client, False

    def _configured_client(self, target: OAuthTarget, methods: Sequence[str] | None) -> ClientCredentials:
        assert target.client_id is not None
        if target.client_secret_env is None:
            return ClientCredentials(target.client_id)
        secret = self.secret(target.client_secret_env)
        if not secret:
            raise ToolFailed(f"{target.tool}: the environment variable {target.client_secret_env} is not set")
        method = "client_secret_post" if methods is not None and "client_secret_basic" not in methods \
            and "client_secret_post" in methods else "client_secret_basic"
        return ClientCredentials(target.client_id, secret, method)

    def _current_client(self, target: OAuthTarget | None, stored: dict[str, Any], configured: bool) -> ClientCredentials:
        """A kept client: an operator's secret is read from the environment now, never stored."""
        client = ClientCredentials.from_json(stored)
        if configured and target is not None and target.client_secret_env:
            secret = self.secret(target.client_secret_env)
            if not secret:
                raise ToolFailed(f"{target.tool}: the environment variable {target.client_secret_env} is not set")
            return ClientCredentials(client.client_id, secret, client.auth_method)
        return client

    def _take(self, state: str) -> dict[str, Any]:
        """The pending authorization of ``state``, removed (a state is good once)."""
        expired = ConnectFailed("This link has expired or was already used. Ask your question again "
                                "to get a new Connect button.")
        if not state or len(state) > 512:
            raise expired
        raw = self.redis.getdel(keys.tool_oauth_flow(self.prefix, _digest(state)))
        if raw is None:
            raise expired
        flow = self._open(raw.decode() if isinstance(raw, bytes) else str(raw), ttl=FLOW_TTL)
        if flow is None:
            raise expired
        return flow

    def _keep(self, tool: str, person_id: str, held: _Held) -> None:
        client = held.client.as_json()
        if held.configured_client:
            client["client_secret"] = None          # the operator's secret stays in the environment
        blob = {"v": _FORMAT, "tool": tool, "person_id": person_id, "access_token": held.tokens.access_token,
                "refresh_token": held.tokens.refresh_token, "expires_at": held.tokens.expires_at,
                "scope": held.tokens.scope, "client": client, "configured_client": held.configured_client,
                "server": held.server.as_json()}
        expires = (datetime.fromtimestamp(held.tokens.expires_at, timezone.utc)
                   if held.tokens.expires_at is not None else None)
        self.records.put_token(tool, person_id, self._seal(blob), expires)

    def _load(self, tool: str, person_id: str, *, drop_bad: bool = True) -> _Held | None:
        row = self.records.token(tool, person_id)
        if row is None:
            return None
        blob = self._open(row.sealed)
        if blob is None or blob.get("tool") != tool or blob.get("person_id") != person_id or blob.get("v") != _FORMAT:
            log.warning("a tool token could not be opened, or belongs to another person or tool: deleted",
                        extra={"tool": tool})
            if drop_bad:
                self.records.drop_token(tool, person_id)
            return None
        try:
            target = self.targets.get(tool)
            client = self._current_client(target, blob["client"], bool(blob["configured_client"]))
            tokens = Tokens(str(blob["access_token"]), blob.get("refresh_token"), blob.get("expires_at"),
                            blob.get("scope"))
            return _Held(tokens, client, bool(blob["configured_client"]), AuthServer.from_json(blob["server"]))
        except (KeyError, TypeError, ValueError):
            if drop_bad:
                self.records.drop_token(tool, person_id)
            return None

    def _refresh(self, tool: str, person_id: str, *, stale: str) -> str:
        """New tokens under a lock per person and tool: a refresh token that rotates is spent once,
        so a second process waits and takes what the first stored."""
        try:
            lock = self.redis.lock(keys.tool_token_lock(self.prefix, tool, person_id), timeout=30,
                                   blocking_timeout=15)
            if not lock.acquire():
                raise ToolFailed(f"{tool}: the token is being renewed elsewhere; try again", transient=True)
        except redis.RedisError:
            raise ToolFailed(f"{tool}: the token cannot be renewed now (Redis)", transient=True) from None
        try:
            held = self._load(tool, person_id)
            if held is None:
                raise ConnectionNeeded(tool)
            if held.tokens.access_token != stale and not held.tokens.expiring(self.clock(), REFRESH_MARGIN):
                return held.tokens.access_token          # renewed meanwhile by another process
            if not held.tokens.refresh_token:
                self.records.drop_token(tool, person_id)
                raise ConnectionNeeded(tool, "the token expired and cannot be renewed")
            try:
                tokens = oauth.refresh(self.http, held.server, held.client, held.tokens.refresh_token,
                                       timeout=self.targets[tool].timeout)
            except oauth.GrantRefused as exc:
                self.records.drop_token(tool, person_id)
                log.info("a tool token's refresh was refused: deleted", extra={"tool": tool, "error": exc.error})
                raise ConnectionNeeded(tool, "the authorization server refused to renew the token") from None
            self._keep(tool, person_id, _Held(tokens, held.client, held.configured_client, held.server))
            return tokens.access_token
        finally:
            try:
                lock.release()
            except redis.RedisError:     # expired meanwhile (30 s): nothing to release
                pass

    def _seal(self, data: dict[str, Any]) -> str:
        if self._fernet is None:
            raise ConfigError("CHATOPS_TOOL_TOKEN_KEY is not set")
        return self._fernet.encrypt(json.dumps(data, separators=(",", ":")).encode()).decode()

    def _open(self, sealed: str, ttl: int | None = None) -> dict[str, Any] | None:
        if self._fernet is None:
            return None
        try:
            data = json.loads(self._fernet.decrypt(sealed.encode(), ttl=ttl))
        except (InvalidToken, ValueError):
            return None
        return data if isinstance(data, dict) else None


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def signed_in_as(claims: Mapping[str, Any], person_id: str, email: str) -> bool:
    """Whether the ID token's ``claims`` name the person (``person_id``, ``email``) a Connect link
    was made for.

    Entra's ``oid`` (the account's object id, the same in every application of the tenant) decides
    when the person's stable id is the directory's object id: it must be equal, and no other claim
    can make up for a different one. Otherwise the ``email`` claim, unless the server says it is not
    verified (``email_verified: false``), or in an Entra token (``oid`` / ``tid``) its
    ``preferred_username`` or ``upn``, must be the person's email (case aside)."""
    oid = claims.get("oid")
    if isinstance(oid, str) and oid and not person_id.startswith(EMAIL_ID_PREFIX):
        return oid.strip().lower() == person_id.strip().lower()
    wanted = email.strip().casefold()
    if not wanted:
        return False
    names: list[Any] = []
    verified = claims.get("email_verified")
    if verified is not False and not (isinstance(verified, str) and verified.strip().lower() == "false"):
        names.append(claims.get("email"))
    if "oid" in claims or "tid" in claims:
        names += [claims.get("preferred_username"), claims.get("upn")]
    return any(isinstance(name, str) and name.strip().casefold() == wanted for name in names)
