"""Tool kind ``mcp``: a Model Context Protocol server over streamable HTTP, through the official SDK.

Settings (``connectors/tools/mcp_config.py``): ``url``, ``auth`` (none, ``{bearer_env: NAME}``: a
service credential read when a call is made, or ``{oauth: per_user}``: each person's own token, from
``deps.tokens``), ``timeout``. Only one credential is ever sent: the service's bearer token, or the
caller's own access token, in ``Authorization``. A 401 to a person's token asks the token source for
a fresh one once (``rejected``); still refused, the person must connect again (``ConnectionNeeded``).

The SDK is asynchronous: its sessions are kept open and reused, on one event loop per process in a
thread of its own (``connectors/tools/mcp_sessions.py``: a session per server and credential, never
shared between two credentials, closed when idle, at most 32). A worker's thread hands each listing
or call to that loop and waits for it; everything the request needs (opening a session when there is
none: connect, ``initialize``, the listing; the request itself; one more try in a fresh session when
the server forgot the session or the connection broke) keeps to the one deadline it is given.
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar, TypeVar

import httpx2
import mcp_types as types
from mcp.shared.exceptions import MCPError

from chatops.checks import CheckFailed
from connectors.tools import oauth
from connectors.tools.base import (Caller, ConnectionNeeded, ToolConfigError, ToolDefinition, ToolDeps, ToolFailed,
                                   ToolOutput, ToolTimedOut, describe_call)
from connectors.tools.mcp_config import KIND, McpConfig, parse
from connectors.tools.mcp_sessions import (ListingFailed, Refused, SessionLost, SessionPool, Use, Work, first_error,
                                           list_all, sessions)

T = TypeVar("T")


class McpTool:
    kind: ClassVar[str] = KIND

    def __init__(self, name: str, config: McpConfig, deps: ToolDeps, *, pool: SessionPool | None = None):
        self.name = name
        self.config = config
        self.deps = deps
        self._pool = pool            # None: the process's sessions (made with the first call)

    @classmethod
    def from_config(cls, spec: Any, deps: ToolDeps) -> "McpTool":
        config = parse(spec.name, spec.kind_settings)
        if config.auth == "per_user" and deps.tokens is None:
            raise ToolConfigError("auth", "per-person authorization needs CHATOPS_TOOL_TOKEN_KEY and "
                                          "CHATOPS_PUBLIC_URL (where people's authorizations come back)")
        return cls(spec.name, config, deps)

    @property
    def url(self) -> str:
        return self.config.url

    @property
    def per_person(self) -> bool:
        """Each person calls it with their own account (``auth: {oauth: per_user}``)."""
        return self.config.auth == "per_user"

    # -- the ToolKind interface ------------------------------------------------------------------

    def definitions(self, caller: Caller | None) -> list[ToolDefinition]:
        if self.per_person and caller is None:
            raise ToolFailed(f"{self.name} lists its tools with a person's own account: name the person")
        listed = self._authorized(caller, _listing, self.config.timeout)
        return [ToolDefinition(t.name, t.description or "", dict(t.input_schema or {}),
                               t.annotations.model_dump(by_alias=True, exclude_none=True, mode="json")
                               if t.annotations is not None else None)
                for t in listed]

    def call(self, function: str, arguments: dict[str, Any], caller: Caller, *, timeout: float) -> ToolOutput:
        async def work(use: Use) -> types.CallToolResult:
            result = await use.session.call_tool(function, arguments)
            if not isinstance(result, types.CallToolResult):      # pragma: no cover - not asked for
                raise ToolFailed(f"{self.name} answered {function} with an unexpected result")
            return result

        return output_of(self._authorized(caller, work, timeout))

    def describe_call(self, function: str, arguments: dict[str, Any]) -> str:
        return describe_call(function, arguments)

    def check(self) -> str:
        if self.per_person:
            try:
                found = oauth.discover(self.deps.http, self.url, timeout=self.config.timeout)
            except oauth.OAuthFailed as exc:
                raise CheckFailed(f"{self.name}: {exc}", "check the tool's url and its authorization server") from None
            return f"per-person OAuth through {found.issuer}"
        try:
            listed = self.definitions(None)
        except ToolFailed as exc:
            fix = (f"set {self.config.bearer_env} to a valid token" if self.config.auth == "bearer"
                   else "check the tool's url and that the server is up")
            raise CheckFailed(f"{self.name}: {exc}", fix) from None
        return f"{len(listed)} tools at {self.url}"

    # -- credentials -----------------------------------------------------------------------------

    def _authorized(self, caller: Caller | None, work: Work[T], timeout: float) -> T:
        """``work`` with the one credential this tool uses. Refused in a session that was already
        open: the service's token is read again and tried once in a fresh session; a person's token
        is renewed once (``rejected``)."""
        deadline = time.monotonic() + timeout
        if not self.per_person:
            owner = self.name
            try:
                return self._run(self._service_token(), owner, work, timeout)
            except Refused as exc:
                refused = exc
            if refused.reused:
                try:
                    return self._run(self._service_token(), owner, work, self._left(deadline, timeout))
                except Refused as exc:
                    refused = exc
            what = f"the token in {self.config.bearer_env}" if self.config.bearer_env else "no credential"
            raise ToolFailed(f"{self.name} refused {what} (HTTP {refused.status})")
        assert caller is not None
        tokens = self.deps.tokens
        if tokens is None:          # from_config refuses this; kept for a kind built by hand
            raise ConnectionNeeded(self.name, "per-person tokens are not available")
        owner = f"{self.name}\x00{caller.person_id}"
        token = tokens.access_token(self.name, caller)
        try:
            return self._run(token, owner, work, timeout)
        except Refused:
            renew = getattr(tokens, "rejected", None)
            if renew is None:
                raise ConnectionNeeded(self.name, "the server refused the person's token") from None
            token = renew(self.name, caller, token)
        try:
            return self._run(token, owner, work, self._left(deadline, timeout))
        except Refused:
            raise ConnectionNeeded(self.name, "the server refused the person's token") from None

    def _left(self, deadline: float, timeout: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ToolTimedOut(f"{self.name} did not answer within {timeout:g} s")
        return left

    def _service_token(self) -> str | None:
        if self.config.bearer_env is None:
            return None
        token = self.deps.secret(self.config.bearer_env)
        if not token:
            raise ToolFailed(f"{self.name}: the environment variable {self.config.bearer_env} is not set")
        return token

    # -- the SDK ---------------------------------------------------------------------------------

    def _run(self, token: str | None, owner: str, work: Work[T], timeout: float) -> T:
        """``work`` in the pooled session of this server and ``token``; the SDK's errors as ours
        (``Refused`` is the caller's)."""
        pool = self._pool or sessions()
        try:
            return pool.run(self.url, token, owner, work, timeout)
        except Refused:
            raise
        except BaseException as exc:   # the SDK's task groups wrap what happened in exception groups
            error = first_error(exc)
            if isinstance(error, (ToolFailed, ConnectionNeeded)):
                raise error from None
            if isinstance(error, TimeoutError):
                raise ToolTimedOut(f"{self.name} did not answer within {timeout:g} s") from None
            if isinstance(error, ListingFailed):
                raise ToolFailed(f"{self.name}: {error}") from None
            if isinstance(error, SessionLost):
                raise ToolFailed(f"{self.name}: {error}", transient=True) from None
            if isinstance(error, MCPError):
                raise ToolFailed(f"{self.name}: {error.message}",
                                 transient=error.code in (types.INTERNAL_ERROR, types.CONNECTION_CLOSED)) from None
            if isinstance(error, (httpx2.HTTPError, OSError)):
                raise ToolFailed(f"{self.name} is unreachable ({type(error).__name__})", transient=True) from None
            if isinstance(error, Exception):
                raise ToolFailed(f"{self.name} failed: {type(error).__name__}", transient=True) from error
            raise


async def _listing(use: Use) -> list[types.Tool]:
    """The server's tools as it lists them now: the listing made when this request opened the
    session, or a new ``tools/list`` (every page) in the open one."""
    return use.listed if use.listed is not None else await list_all(use.session)


def output_of(result: types.CallToolResult) -> ToolOutput:
    """A tool result as the model reads it: the text content joined; ``structuredContent`` as compact
    JSON when there is no text; ``isError`` kept."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        elif isinstance(block, types.EmbeddedResource) and isinstance(block.resource, types.TextResourceContents):
            parts.append(block.resource.text)
        elif isinstance(block, types.ResourceLink):
            parts.append(f"{block.name}: {block.uri}")
        else:
            parts.append(f"[{getattr(block, 'type', 'other')} content left out]")
    text = "\n".join(p for p in parts if p)
    if not text.strip() and result.structured_content is not None:
        text = json.dumps(result.structured_content, separators=(",", ":"), ensure_ascii=False, default=str)
    return ToolOutput(text=text, is_error=bool(result.is_error))
