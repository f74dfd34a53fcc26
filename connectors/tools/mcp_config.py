"""The ``mcp`` kind's settings, checked (``connectors/tools/mcp.py`` is the kind).

Apart from the kind so that the web process, which completes people's OAuth authorizations
(``usecases/tool_auth.py``), learns which tools have per-person authorization without loading the
``mcp`` SDK (half a second of imports).

    url: https://mcp.pagerduty.internal/mcp     # streamable HTTP; http only to a loopback host
    auth: {bearer_env: PAGERDUTY_MCP_TOKEN}     # a service credential; or
    auth: {oauth: per_user, client_id: ..., client_secret_env: ..., scopes: [...]}   # each person's own
    auth: {oauth: per_user, identity: link}     # an authorization server without OpenID Connect
    timeout: 10                                 # seconds for listing the tools (calls: the caller's)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Literal
from urllib.parse import urlsplit

from chatops.tools import ToolSpec
from connectors.tools.base import ToolConfigError
from connectors.tools.oauth import OAuthTarget, is_loopback

KIND = "mcp"
SETTINGS = ("url", "auth", "timeout")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")      # RFC 6749 3.3 scope-token

AuthMode = Literal["none", "bearer", "per_user"]


@dataclass(frozen=True)
class McpConfig:
    url: str
    auth: AuthMode = "none"
    bearer_env: str | None = None
    oauth: OAuthTarget | None = None          # per_user: how people authorize
    timeout: float = 10.0


def parse(name: str, settings: dict[str, Any]) -> McpConfig:
    """The settings of one ``kind: mcp`` entry; :class:`ToolConfigError` naming the bad key."""
    for key in settings:
        if key not in SETTINGS:
            raise ToolConfigError(key, f"unknown setting of an mcp tool (known: {', '.join(SETTINGS)})")
    url = settings.get("url")
    if not isinstance(url, str) or not url:
        raise ToolConfigError("url", "the MCP server's streamable HTTP URL is required")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ToolConfigError("url", f"{url!r} is not an http(s) URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ToolConfigError("url", "must be https (http only to 127.0.0.1, ::1 or localhost)")
    if parts.username or parts.password or parts.fragment:
        raise ToolConfigError("url", "must not carry credentials or a fragment")
    timeout = settings.get("timeout", 10.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 300:
        raise ToolConfigError("timeout", "must be a number of seconds, above 0 and at most 300")
    auth = settings.get("auth")
    if auth is None:
        return McpConfig(url, timeout=float(timeout))
    if not isinstance(auth, dict):
        raise ToolConfigError("auth", "must be {bearer_env: NAME} or {oauth: per_user}")
    if "bearer_env" in auth:
        extra = sorted(set(auth) - {"bearer_env"})
        if extra:
            raise ToolConfigError(f"auth.{extra[0]}", "bearer_env takes no other setting")
        env = auth["bearer_env"]
        if not isinstance(env, str) or not _ENV_NAME.fullmatch(env):
            raise ToolConfigError("auth.bearer_env", "must name an environment variable (e.g. PAGERDUTY_MCP_TOKEN)")
        return McpConfig(url, "bearer", bearer_env=env, timeout=float(timeout))
    if "oauth" in auth:
        extra = sorted(set(auth) - {"oauth", "client_id", "client_secret_env", "scopes", "identity"})
        if extra:
            raise ToolConfigError(f"auth.{extra[0]}",
                                  "unknown setting (known: oauth, client_id, client_secret_env, scopes, identity)")
        if auth["oauth"] != "per_user":
            raise ToolConfigError("auth.oauth", "must be per_user (each person authorizes with their own account)")
        client_id = auth.get("client_id")
        if client_id is not None and (not isinstance(client_id, str) or not client_id.strip()):
            raise ToolConfigError("auth.client_id", "must be the client id the authorization server gave")
        secret_env = auth.get("client_secret_env")
        if secret_env is not None:
            if not isinstance(secret_env, str) or not _ENV_NAME.fullmatch(secret_env):
                raise ToolConfigError("auth.client_secret_env", "must name an environment variable")
            if client_id is None:
                raise ToolConfigError("auth.client_secret_env", "needs client_id")
        scopes = auth.get("scopes", ())
        if isinstance(scopes, str):
            scopes = scopes.split()
        if not isinstance(scopes, (list, tuple)) or not all(isinstance(s, str) and _SCOPE.fullmatch(s)
                                                             for s in scopes):
            raise ToolConfigError("auth.scopes", "must be a list of OAuth scopes")
        identity = auth.get("identity", "verified")
        if identity not in ("verified", "link"):
            raise ToolConfigError("auth.identity", "must be verified (the sign-in must show it is the person; "
                                                   "the default) or link (where the authorization server has no "
                                                   "OpenID Connect: trust the Connect link alone)")
        target = OAuthTarget(tool=name, server_url=url, client_id=client_id, client_secret_env=secret_env,
                             scopes=tuple(scopes), timeout=float(timeout),
                             identity="link" if identity == "link" else "verified")
        return McpConfig(url, "per_user", oauth=target, timeout=float(timeout))
    raise ToolConfigError("auth", "must be {bearer_env: NAME} or {oauth: per_user}")


def per_user_targets(specs: Iterable[ToolSpec]) -> dict[str, OAuthTarget]:
    """The tools whose people authorize with their own accounts, by tool name (entries with errors
    are left out here: building the tools reports them)."""
    out: dict[str, OAuthTarget] = {}
    for spec in specs:
        if spec.kind != KIND:
            continue
        try:
            config = parse(spec.name, spec.kind_settings)
        except ToolConfigError:
            continue
        if config.oauth is not None:
            out[spec.name] = config.oauth
    return out
