"""Tool kind ``mcp``: a Model Context Protocol server over streamable HTTP, through the official SDK.

Settings (``connectors/tools/mcp_config.py``): ``url``, ``auth`` (none, ``{bearer_env: NAME}``: a
service credential read when a call is made, or ``{oauth: per_user}``: each person's own token, from
``deps.tokens``), ``timeout``. Only one credential is ever sent: the service's bearer token, or the
caller's own access token, in ``Authorization``. A 401 to a person's token asks the token source for
a fresh one once (``rejected``); still refused, the person must connect again (``ConnectionNeeded``).

The SDK is asynchronous: each listing or call runs in an event loop of its own (``anyio.run``), so it
works from a worker's threads, and everything it does (connect, ``initialize``, the request, closing
the session) keeps to the one deadline it is given.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Awaitable, Callable, ClassVar, TypeVar

import anyio
import httpx2
import mcp_types as types
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from chatops.checks import CheckFailed
from connectors.tools import oauth
from connectors.tools.base import (Caller, ConnectionNeeded, ToolConfigError, ToolDefinition, ToolDeps, ToolFailed,
                                   ToolOutput, ToolTimedOut, describe_call)
from connectors.tools.mcp_config import KIND, McpConfig, parse

T = TypeVar("T")
MAX_PAGES = 50                      # tools/list pages followed before the server is called broken


class _Unauthorized(Exception):
    def __init__(self, status: int, challenge: str | None):
        super().__init__(f"HTTP {status}")
        self.status, self.challenge = status, challenge


class McpTool:
    kind: ClassVar[str] = KIND

    def __init__(self, name: str, config: McpConfig, deps: ToolDeps):
        self.name = name
        self.config = config
        self.deps = deps

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
        listed = self._authorized(caller, self._list_all, self.config.timeout)
        return [ToolDefinition(t.name, t.description or "", dict(t.input_schema or {}),
                               t.annotations.model_dump(by_alias=True, exclude_none=True, mode="json")
                               if t.annotations is not None else None)
                for t in listed]

    def call(self, function: str, arguments: dict[str, Any], caller: Caller, *, timeout: float) -> ToolOutput:
        async def work(session: ClientSession) -> types.CallToolResult:
            result = await session.call_tool(function, arguments)
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

    def _authorized(self, caller: Caller | None, work: Callable[[ClientSession], Awaitable[T]],
                    timeout: float) -> T:
        """``work`` with the one credential this tool uses; a person's rejected token renewed once."""
        deadline = time.monotonic() + timeout
        if not self.per_person:
            try:
                return self._run(self._service_token(), work, timeout)
            except _Unauthorized as exc:
                what = f"the token in {self.config.bearer_env}" if self.config.bearer_env else "no credential"
                raise ToolFailed(f"{self.name} refused {what} (HTTP {exc.status})") from None
        assert caller is not None
        tokens = self.deps.tokens
        if tokens is None:          # from_config refuses this; kept for a kind built by hand
            raise ConnectionNeeded(self.name, "per-person tokens are not available")
        token = tokens.access_token(self.name, caller)
        try:
            return self._run(token, work, timeout)
        except _Unauthorized:
            renew = getattr(tokens, "rejected", None)
            if renew is None:
                raise ConnectionNeeded(self.name, "the server refused the person's token") from None
            token = renew(self.name, caller, token)
        left = deadline - time.monotonic()
        if left <= 0:
            raise ToolTimedOut(f"{self.name} did not answer within {timeout:g} s")
        try:
            return self._run(token, work, left)
        except _Unauthorized:
            raise ConnectionNeeded(self.name, "the server refused the person's token") from None

    def _service_token(self) -> str | None:
        if self.config.bearer_env is None:
            return None
        token = self.deps.secret(self.config.bearer_env)
        if not token:
            raise ToolFailed(f"{self.name}: the environment variable {self.config.bearer_env} is not set")
        return token

    # -- the SDK ---------------------------------------------------------------------------------

    def _run(self, token: str | None, work: Callable[[ClientSession], Awaitable[T]], timeout: float) -> T:
        refused: list[tuple[int, str | None]] = []

        async def note(response: httpx2.Response) -> None:
            if response.status_code in (401, 403):      # this client talks to the MCP server's origin only
                refused.append((response.status_code, response.headers.get("www-authenticate")))

        async def session() -> T:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            with anyio.fail_after(timeout):
                async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(timeout),
                                              follow_redirects=False, event_hooks={"response": [note]}) as http, \
                        streamable_http_client(self.url, http_client=http) as (read, write), \
                        ClientSession(read, write, read_timeout_seconds=timeout) as mcp:
                    await mcp.initialize()
                    return await work(mcp)

        try:
            return anyio.run(session)
        except BaseException as exc:   # the SDK's task groups wrap what happened in exception groups
            error = _first(exc)
            if refused:
                raise _Unauthorized(*refused[0]) from None
            if isinstance(error, (ToolFailed, ConnectionNeeded)):
                raise error from None
            if isinstance(error, TimeoutError):
                raise ToolTimedOut(f"{self.name} did not answer within {timeout:g} s") from None
            if isinstance(error, MCPError):
                raise ToolFailed(f"{self.name}: {error.message}", transient=error.code == types.INTERNAL_ERROR) from None
            if isinstance(error, (httpx2.HTTPError, OSError)):
                raise ToolFailed(f"{self.name} is unreachable ({type(error).__name__})", transient=True) from None
            if isinstance(error, Exception):
                raise ToolFailed(f"{self.name} failed: {type(error).__name__}", transient=True) from error
            raise

    @staticmethod
    async def _list_all(session: ClientSession) -> list[types.Tool]:
        tools: list[types.Tool] = []
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            result = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
            tools.extend(result.tools)
            cursor = result.next_cursor
            if not cursor:
                return tools
            if cursor in seen:
                raise ToolFailed("the server's tool list pages go round in a circle")
            seen.add(cursor)
        raise ToolFailed(f"the server's tool list has more than {MAX_PAGES} pages")


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


def _first(exc: BaseException) -> BaseException:
    """The first error inside (nested) exception groups that is not a cancellation."""
    if isinstance(exc, BaseExceptionGroup):
        found = [_first(e) for e in exc.exceptions]
        for e in found:
            if not isinstance(e, asyncio.CancelledError):
                return e
        return found[0] if found else exc
    return exc
