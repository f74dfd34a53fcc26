"""A real Model Context Protocol server on loopback, PagerDuty-like, built with the official ``mcp``
SDK (its low-level ``Server`` and streamable HTTP transport) and served by uvicorn in a thread.

    with FakeMCP() as mcp:               # mcp.url == "http://127.0.0.1:PORT/mcp"
        ...

Its tools (``tools/list`` pages of ``page_size`` with ``nextCursor`` when set):

* ``get_oncall(service)`` - who is on call (read-only): "Dana Reyes (dana@example.com) until 18:00
  UTC" for billing; "(asked by <email>)" is added when the caller's OAuth token names a person;
* ``list_incidents(status="triggered")`` - incidents (read-only), text and ``structuredContent``;
* ``create_incident(title)`` - annotated destructive, not read-only;
* ``slow_status()`` - read-only, answers after ``slow_seconds`` (for timeouts).

Authorization, one of:

* none;
* ``bearer="TOKEN"``: every request must carry ``Authorization: Bearer TOKEN`` (401 otherwise);
* ``oauth=<FakeAuthorizationServer>``: the SDK's resource-server side of the MCP authorization
  specification: access tokens that server issued *for this server's URL* (the audience), checked by
  asking it (``introspect``); a request without one is answered 401 with
  ``WWW-Authenticate: Bearer ..., resource_metadata="<origin>/.well-known/oauth-protected-resource/mcp"``,
  and that RFC 9728 document names the authorization server.

Test hooks: ``set_description(tool, text)`` (a changed definition), ``set_output(tool, text=...,
structured=..., is_error=...)`` (what a call returns, e.g. an injection attempt), ``slow_seconds``,
``calls`` (tool, arguments, the ``Authorization`` header seen, the person the token stands for),
``authorizations`` (the ``Authorization`` header of every HTTP request, authorized or not),
``requests`` (method, ``Mcp-Session-Id`` and ``Authorization`` of every HTTP request), ``listings``
(``tools/list`` requests served), ``initializations`` (``initialize`` requests served: sessions
opened) and ``terminations`` (``DELETE`` requests: sessions a client closed).

``stop()`` ends the streams clients keep open (the ``GET`` stream of server messages) with a clean
end of stream, as the SDK's SSE responses do when uvicorn shuts down on a signal, so a stand-in
stops at once; ``start()`` after ``stop()`` listens on the same port again: a restarted server that
knows none of its earlier sessions (their ids answer 404).

Imports nothing of ours.
"""

from __future__ import annotations

import asyncio
import copy
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import mcp_types as types
import uvicorn
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.shared.exceptions import MCPError
from pydantic import AnyHttpUrl
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ONCALL = {
    "billing": "Dana Reyes (dana@example.com) until 18:00 UTC",
    "checkout": "Lee Park (lee@example.com) until 20:00 UTC",
    "search": "Ana Silva (ana@example.com) until 09:00 UTC",
}
INCIDENTS = [
    {"id": "INC-4711", "title": "Checkout latency above 2 s", "service": "checkout", "status": "triggered"},
    {"id": "INC-4712", "title": "Billing export delayed", "service": "billing", "status": "acknowledged"},
    {"id": "INC-4713", "title": "Search index lagging", "service": "search", "status": "triggered"},
    {"id": "INC-4690", "title": "VPN gateway flapping", "service": "network", "status": "resolved"},
]
READ_ONLY = {"readOnlyHint": True, "destructiveHint": False, "idempotentHint": True, "openWorldHint": True}
DESTRUCTIVE = {"readOnlyHint": False, "destructiveHint": True, "idempotentHint": False, "openWorldHint": True}


class Introspecting(Protocol):
    """What the resource server needs of its authorization server (``FakeAuthorizationServer``)."""

    @property
    def issuer(self) -> str: ...

    def add_resource(self, url: str) -> None: ...

    def introspect(self, token: str) -> Any: ...


@dataclass
class FakeTool:
    name: str
    description: str
    input_schema: dict[str, Any]
    annotations: dict[str, Any] | None
    title: str | None = None


@dataclass(frozen=True)
class Call:
    tool: str
    arguments: dict[str, Any]
    authorization: str | None     # the Authorization header as it arrived
    user: str | None              # the person the OAuth token stands for (oauth mode)


@dataclass(frozen=True)
class Seen:
    method: str                   # the HTTP method
    session_id: str | None        # the Mcp-Session-Id header as it arrived
    authorization: str | None


@dataclass
class _Output:
    text: str | None = None
    structured: dict[str, Any] | None = None
    is_error: bool = False


def default_tools() -> list[FakeTool]:
    return [
        FakeTool("get_oncall", "Who is on call for a service right now.",
                 {"type": "object", "properties": {"service": {"type": "string",
                                                               "description": "billing, checkout or search"}},
                  "required": ["service"]}, dict(READ_ONLY), "On call"),
        FakeTool("list_incidents", "Incidents by status (triggered by default).",
                 {"type": "object", "properties": {"status": {
                     "type": "string", "enum": ["triggered", "acknowledged", "resolved"], "default": "triggered"}}},
                 dict(READ_ONLY), "Incidents"),
        FakeTool("create_incident", "Open a new incident.",
                 {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]},
                 dict(DESTRUCTIVE), "Create incident"),
        FakeTool("slow_status", "Overall status of every service (slow).",
                 {"type": "object", "properties": {}}, dict(READ_ONLY), "Status"),
    ]


class FakeMCP:
    def __init__(self, *, bearer: str | None = None, oauth: Introspecting | None = None,
                 page_size: int | None = None, path: str = "/mcp", stateless: bool = False,
                 json_response: bool = False, tools: list[FakeTool] | None = None):
        if bearer and oauth:
            raise ValueError("bearer or oauth, not both")
        self.bearer = bearer
        self.oauth = oauth
        self.page_size = page_size
        self.path = path
        self.stateless = stateless
        self.json_response = json_response
        self.slow_seconds = 5.0
        self.lock = threading.Lock()
        self.tools: dict[str, FakeTool] = {t.name: t for t in (tools if tools is not None else default_tools())}
        self.outputs: dict[str, _Output] = {}
        self.calls: list[Call] = []
        self.authorizations: list[str | None] = []
        self.requests: list[Seen] = []
        self.listings = 0
        self.initializations = 0
        self.terminations = 0
        self._streams: list[tuple[asyncio.AbstractEventLoop, anyio.Event]] = []
        self._port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- where it is -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._port, "call start() first"
        return self._port

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.origin + self.path

    @property
    def resource_metadata_url(self) -> str:
        return f"{self.origin}/.well-known/oauth-protected-resource{self.path}"

    # -- test hooks ------------------------------------------------------------------------------

    def set_description(self, tool: str, description: str) -> None:
        with self.lock:
            self.tools[tool].description = description

    def set_annotations(self, tool: str, annotations: dict[str, Any] | None) -> None:
        with self.lock:
            self.tools[tool].annotations = annotations

    def set_output(self, tool: str, text: str | None = None, *, structured: dict[str, Any] | None = None,
                   is_error: bool = False) -> None:
        """What calls of ``tool`` return from now on (``reset_output`` goes back to its data)."""
        with self.lock:
            self.outputs[tool] = _Output(text, structured, is_error)

    def reset_output(self, tool: str) -> None:
        with self.lock:
            self.outputs.pop(tool, None)

    def add_tool(self, tool: FakeTool) -> None:
        with self.lock:
            self.tools[tool.name] = tool

    # -- the MCP server --------------------------------------------------------------------------

    def _user(self, authorization: str | None) -> str | None:
        if self.oauth is None or not authorization or not authorization.lower().startswith("bearer "):
            return None
        grant = self.oauth.introspect(authorization[7:])
        return getattr(grant, "user", None)

    async def _list_tools(self, ctx: ServerRequestContext[Any, Any],
                          params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        with self.lock:
            self.listings += 1
            tools = [copy.deepcopy(t) for t in self.tools.values()]
        start = 0
        cursor = params.cursor if params is not None else None
        if cursor is not None:
            if not cursor.startswith("page:") or not cursor[5:].isdigit() or int(cursor[5:]) > len(tools):
                raise MCPError(types.INVALID_PARAMS, "invalid cursor")
            start = int(cursor[5:])
        end = len(tools) if not self.page_size else min(len(tools), start + self.page_size)
        page = [types.Tool(name=t.name, title=t.title, description=t.description, input_schema=t.input_schema,
                           annotations=types.ToolAnnotations.model_validate(t.annotations) if t.annotations else None)
                for t in tools[start:end]]
        return types.ListToolsResult(tools=page, next_cursor=f"page:{end}" if end < len(tools) else None)

    async def _call_tool(self, ctx: ServerRequestContext[Any, Any],
                         params: types.CallToolRequestParams) -> types.CallToolResult:
        request = ctx.request
        authorization = request.headers.get("authorization") if request is not None else None
        user = self._user(authorization)
        arguments = dict(params.arguments or {})
        with self.lock:
            self.calls.append(Call(params.name, arguments, authorization, user))
            known = params.name in self.tools
            scripted = self.outputs.get(params.name)
        if not known:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
        if params.name == "slow_status":
            await anyio.sleep(self.slow_seconds)
        if scripted is not None:
            content = [types.TextContent(type="text", text=scripted.text)] if scripted.text is not None else []
            return types.CallToolResult(content=content, structured_content=scripted.structured,
                                        is_error=scripted.is_error)
        return self._run(params.name, arguments, user)

    @staticmethod
    def _text(text: str, *, structured: dict[str, Any] | None = None, error: bool = False) -> types.CallToolResult:
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                    structured_content=structured, is_error=error)

    def _run(self, name: str, arguments: dict[str, Any], user: str | None) -> types.CallToolResult:
        asked = f" (asked by {user})" if user else ""
        if name == "get_oncall":
            service = arguments.get("service")
            if not isinstance(service, str) or not service:
                return self._text("service is required", error=True)
            who = ONCALL.get(service.lower())
            if who is None:
                return self._text(f"No such service: {service}", error=True)
            return self._text(f"On call for {service}: {who}{asked}")
        if name == "list_incidents":
            status = arguments.get("status", "triggered")
            found = [i for i in INCIDENTS if i["status"] == status]
            lines = [f"{i['id']} [{i['status']}] {i['service']}: {i['title']}" for i in found]
            return self._text("\n".join(lines) or f"No {status} incidents.", structured={"incidents": found})
        if name == "create_incident":
            title = arguments.get("title")
            if not isinstance(title, str) or not title:
                return self._text("title is required", error=True)
            return self._text(f"Created INC-4800: {title}")
        if name == "slow_status":
            return self._text(f"All services operational{asked}")
        return self._text(f"{name}: no data", structured=None)

    async def _count_initialize(self, ctx: ServerRequestContext[Any, Any], call_next: Any) -> Any:
        if ctx.method == "initialize":
            with self.lock:
                self.initializations += 1
        return await call_next(ctx)

    def _app(self) -> ASGIApp:
        server: Server[Any] = Server("fake-pagerduty", version="1.0.0",
                                     on_list_tools=self._list_tools, on_call_tool=self._call_tool)
        server.middleware.clear()       # no OpenTelemetry spans from the stand-in
        server.middleware.append(self._count_initialize)
        if self.oauth is None:
            app = server.streamable_http_app(streamable_http_path=self.path, stateless_http=self.stateless,
                                             json_response=self.json_response)
            return _Recording(self, _Bearer(app, self.bearer, self.path) if self.bearer else app)
        oauth = self.oauth
        oauth.add_resource(self.url)
        auth = AuthSettings(issuer_url=AnyHttpUrl(oauth.issuer), resource_server_url=AnyHttpUrl(self.url),
                            validate_token_resource=True)
        app = server.streamable_http_app(streamable_http_path=self.path, stateless_http=self.stateless,
                                         json_response=self.json_response, auth=auth,
                                         token_verifier=_Verifier(oauth))
        return _Recording(self, app)

    # -- running ---------------------------------------------------------------------------------

    def start(self) -> "FakeMCP":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))        # 0 the first time; the same port on a restart
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(self._app(), log_level="warning", lifespan="on", timeout_graceful_shutdown=1,
                                timeout_keep_alive=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name="FakeMCP", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the MCP stand-in did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is None or thread is None:
            return
        with self.lock:
            streams, self._streams = self._streams, []
        for loop, ended in streams:
            try:
                loop.call_soon_threadsafe(ended.set)
            except RuntimeError:        # that loop is already closed
                pass
        server.should_exit = True
        thread.join(10)

    def __enter__(self) -> "FakeMCP":
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Verifier:
    """The SDK's ``TokenVerifier``: a token the authorization server issued, with its audience."""

    def __init__(self, oauth: Introspecting):
        self.oauth = oauth

    async def verify_token(self, token: str) -> AccessToken | None:
        grant = self.oauth.introspect(token)
        if grant is None:
            return None
        return AccessToken(token=token, client_id=grant.client_id, scopes=(grant.scope or "").split(),
                           expires_at=int(grant.expires_at), resource=grant.resource, subject=grant.user)


class _Bearer:
    """One static bearer token on the MCP endpoint; anything else is 401 (RFC 6750)."""

    def __init__(self, app: ASGIApp, token: str, path: str):
        self.app, self.expected, self.path = app, f"Bearer {token}", path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self.path:
            header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            if header != self.expected:
                error = "invalid_token" if header else "invalid_request"
                body = ('{"error": "%s", "error_description": "a valid bearer token is required"}' % error).encode()
                await send({"type": "http.response.start", "status": 401, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", f'Bearer realm="mcp", error="{error}"'.encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class _Recording:
    """Notes the Authorization header (and method, session id) of every HTTP request before the app
    sees it, and ends a ``GET`` stream when the stand-in stops."""

    def __init__(self, owner: FakeMCP, app: ASGIApp):
        self.owner, self.app = owner, app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        header, session = headers.get(b"authorization"), headers.get(b"mcp-session-id")
        authorization = header.decode("latin-1") if header is not None else None
        seen = Seen(scope["method"], session.decode("latin-1") if session is not None else None, authorization)
        with self.owner.lock:
            self.owner.authorizations.append(authorization)
            self.owner.requests.append(seen)
            if seen.method == "DELETE":
                self.owner.terminations += 1
        if seen.method != "GET":
            await self.app(scope, receive, send)
            return
        await self._stream(scope, receive, send)

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A GET stream, told the client went away when the stand-in stops, then ended cleanly (a
        last empty chunk) instead of being cut by uvicorn's graceful-shutdown timeout."""
        ended = anyio.Event()
        with self.owner.lock:
            self.owner._streams.append((asyncio.get_running_loop(), ended))
        state = {"started": False, "complete": False}

        async def receive_until_stopped() -> Message:
            message: Message = {"type": "http.disconnect"}
            async with anyio.create_task_group() as tg:
                async def take() -> None:
                    nonlocal message
                    message = await receive()
                    tg.cancel_scope.cancel()

                async def stopped() -> None:
                    await ended.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(take)
                tg.start_soon(stopped)
            return message

        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                state["complete"] = True
            await send(message)

        try:
            await self.app(scope, receive_until_stopped, noting)
            if ended.is_set() and state["started"] and not state["complete"]:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            with self.owner.lock:
                self.owner._streams = [s for s in self.owner._streams if s[1] is not ended]

    def __getattr__(self, name: str) -> Any:      # Starlette's router (routes) stays reachable
        return getattr(self.app, name)
