"""MCP sessions kept open and reused by the ``mcp`` tool kind (``connectors/tools/mcp.py``).

Opening a streamable HTTP session costs an HTTP client, ``initialize`` and a listing of the
server's tools (without which the SDK's ``call_tool`` lists them again to check each result): about
40 ms against a loopback server, where a call in an open session takes 3 ms. So sessions are kept:

* **One event loop per process**, in a daemon thread started with the first call (``SessionPool``;
  the process's pool is ``sessions()``). Every session lives there, so one thread serves every tool
  and every worker thread, and the cap and the idle rule hold for the whole process. A worker thread
  hands its coroutine to the loop and waits for it with the call's timeout.
* **A session per server and credential**: the key is the URL and a hash of the exact credential
  sent (the service's bearer token, or the person's access token; none). Two credentials never
  share a session; a refreshed token is a new key, and the session of the token it replaced (same
  server, same owner: the person, or the service) is closed as soon as it is not in use.
* **Closed when idle** for ``idle`` seconds (60), or older than ``max_age`` (10 minutes), and at
  most ``cap`` (32) open: beyond it, the least recently used are closed. Closing sends the session's
  ``DELETE`` and takes at most ``CLOSE_SECONDS``.
* **A session in doubt is dropped**: a 401/403 (``Refused``: the caller decides whether to try a
  fresh session or a renewed token), a 404 to its ``Mcp-Session-Id`` (the server forgot it: a
  restart, its own idle timeout), a broken connection. A call that failed so in a session that was
  already open is tried once more in a fresh one (tool calls here are reads). A call cut by its
  timeout leaves its session to be closed once nobody uses it.
* **After ``initialize``**, the tools are listed in the session (every page) so the SDK knows each
  tool's output schema; that listing is handed to the request that opened the session
  (``Use.listed``), and any other listing is a real ``tools/list`` request.
* At exit, every session is closed best effort, within ``CLOSE_SECONDS``; the thread is a daemon
  and a worker's exit never waits for it. A forked child starts a pool of its own.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar

import anyio
import httpx2
import mcp_types as types
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

T = TypeVar("T")
log = logging.getLogger(__name__)

IDLE_SECONDS = 60.0          # a session nobody used for this long is closed
MAX_AGE_SECONDS = 600.0      # nor is one kept longer than this (its listing of output schemas ages)
MAX_SESSIONS = 32            # open at once in a process; beyond it the least recently used are closed
CLOSE_SECONDS = 2.0          # closing a session (its DELETE), and all of them at exit, takes at most this
WAIT_GRACE = 2.0             # a worker waits this much past the call's timeout for the loop's answer
CONNECT_SECONDS = 10.0       # the HTTP client's connect and write timeouts (each call has its own deadline)
STREAM_READ_SECONDS = 300.0  # its read timeout: the server's message stream may be quiet that long
MAX_PAGES = 50               # tools/list pages followed before the server is called broken


class Refused(Exception):
    """The server answered 401/403 to the credential of this session (which is dropped).
    ``reused``: the session had been open before this request (a credential may have expired)."""

    def __init__(self, status: int, challenge: str | None, reused: bool):
        super().__init__(f"HTTP {status}")
        self.status, self.challenge, self.reused = status, challenge, reused


class SessionLost(Exception):
    """The server forgot the session or the connection broke, and no fresh session could be tried."""


class ListingFailed(Exception):
    """The server's ``tools/list`` pages never end."""


@dataclass(frozen=True)
class Use:
    """What a request gets: the open SDK session, and the tools listed when it was opened for this
    request (None in a session that was already open when the request came)."""

    session: ClientSession
    listed: list[types.Tool] | None


Work = Callable[[Use], Awaitable[T]]


def key_of(url: str, token: str | None) -> tuple[str, str]:
    """A session's key: the server and a hash of the exact credential sent (never the token itself)."""
    return url, hashlib.sha256(token.encode()).hexdigest() if token else ""


async def list_all(session: ClientSession) -> list[types.Tool]:
    """Every page of the server's tools (the SDK keeps each one's output schema)."""
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
            raise ListingFailed("the server's tool list pages go round in a circle")
        seen.add(cursor)
    raise ListingFailed(f"the server's tool list has more than {MAX_PAGES} pages")


def first_error(exc: BaseException) -> BaseException:
    """The first error inside (nested) exception groups that is not a cancellation."""
    if isinstance(exc, BaseExceptionGroup):
        found = [first_error(e) for e in exc.exceptions]
        for e in found:
            if not isinstance(e, asyncio.CancelledError):
                return e
        return found[0] if found else exc
    return exc


def _transport_failure(error: BaseException) -> bool:
    if isinstance(error, MCPError):
        return error.code == types.CONNECTION_CLOSED
    return isinstance(error, (httpx2.TransportError, OSError, anyio.ClosedResourceError,
                              anyio.BrokenResourceError, anyio.EndOfStream))


class _Session:
    """One open session, owned by a task of its own on the pool's loop (the SDK's context managers
    are entered and left there); requests use ``client`` from their own tasks."""

    def __init__(self, pool: "SessionPool", key: tuple[str, str], owner: tuple[str, str], token: str | None):
        self.pool, self.key, self.owner = pool, key, owner
        self.url = key[0]
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client: ClientSession | None = None
        self.listed: list[types.Tool] | None = None
        self.error: BaseException | None = None          # why it could not be opened
        self.refused: tuple[int, str | None] | None = None
        self.gone = False                                  # the server answered 404 to its session id
        self.dead = False                                  # its task has ended
        self.retired = False                               # to be closed once nobody uses it
        self.in_use = 0
        self.opened_at = self.last_used = time.monotonic()
        self.opened = anyio.Event()
        self._closing = anyio.Event()
        self._scope: anyio.CancelScope | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self.client is not None and not self.dead

    def usable(self, now: float) -> bool:
        return (self.ready and not self.retired and self.refused is None and not self.gone
                and now - self.opened_at < self.pool.max_age)

    async def _note(self, response: httpx2.Response) -> None:
        """Every response to this session's HTTP client (the MCP server's origin only). Only the
        POSTs that carry messages count: a server may refuse the optional GET stream its own way."""
        if response.request.method != "POST":
            return
        if response.status_code in (401, 403):
            if self.refused is None:
                self.refused = (response.status_code, response.headers.get("www-authenticate"))
        elif response.status_code == 404 and "mcp-session-id" in response.request.headers:
            self.gone = True

    async def serve(self, open_within: float) -> None:
        try:
            with anyio.CancelScope() as self._scope:
                async with httpx2.AsyncClient(headers=self._headers, follow_redirects=False,
                                              timeout=httpx2.Timeout(CONNECT_SECONDS, read=STREAM_READ_SECONDS),
                                              event_hooks={"response": [self._note]}) as http, \
                        streamable_http_client(self.url, http_client=http) as (read, write), \
                        ClientSession(read, write) as client:
                    with anyio.fail_after(max(open_within, 0.001)):
                        await client.initialize()
                        listed = await list_all(client)
                    self.client, self.listed = client, listed
                    self.opened.set()
                    await self._closing.wait()
                    self._scope.deadline = anyio.current_time() + CLOSE_SECONDS
        except BaseException as exc:      # the SDK's task groups wrap what happened in exception groups
            if self.client is None:
                self.error = exc
            elif not self._closing.is_set():
                log.debug("an MCP session to %s ended: %r", self.url, first_error(exc))
            if not isinstance(exc, Exception) and not isinstance(first_error(exc), Exception):
                raise
        finally:
            self.dead = True
            self.opened.set()
            self.pool._forget(self)

    def close(self) -> None:
        """Leave the session (its DELETE is sent) now; it is no longer offered."""
        self.retired = True
        self._closing.set()
        self.pool._forget(self)

    def retire(self) -> None:
        """Close it once the requests using it are done."""
        self.retired = True
        self.pool._forget(self)
        if self.in_use == 0:
            self.close()


class SessionPool:
    """Open MCP sessions of one process, on an event loop in a daemon thread (started lazily)."""

    def __init__(self, *, idle: float = IDLE_SECONDS, cap: int = MAX_SESSIONS, max_age: float = MAX_AGE_SECONDS):
        self.idle, self.cap, self.max_age = idle, cap, max_age
        self._start_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sessions: OrderedDict[tuple[str, str], _Session] = OrderedDict()    # least recently used first
        self._all: set[_Session] = set()                                         # open or closing
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False

    # -- from any thread -------------------------------------------------------------------------

    def run(self, url: str, token: str | None, owner: str, work: Work[T], timeout: float) -> T:
        """``work`` in this server's session for ``token`` (opened if needed), within ``timeout``
        seconds. Raises ``Refused``, ``TimeoutError``, ``SessionLost``, or what the SDK or ``work``
        raised (the first error of an exception group)."""
        loop = self._started()
        if threading.current_thread() is self._thread:
            raise RuntimeError("an MCP call was made from the sessions' own event loop")
        deadline = time.monotonic() + timeout
        future = asyncio.run_coroutine_threadsafe(self._run(url, token, owner, work, deadline), loop)
        try:
            return future.result(timeout + WAIT_GRACE)
        except concurrent.futures.TimeoutError:
            if not future.done():          # the loop did not answer in time: give up on the call
                future.cancel()
            raise TimeoutError() from None
        except concurrent.futures.CancelledError:
            raise TimeoutError() from None

    def close(self, timeout: float = CLOSE_SECONDS) -> None:
        """Close every session (in use or not) and stop the loop; waits at most ``timeout``."""
        with self._start_lock:
            loop, thread, self._closed = self._loop, self._thread, True
        if loop is None or thread is None or not thread.is_alive():
            return
        try:
            done = asyncio.run_coroutine_threadsafe(self._close_all(timeout), loop)
            done.result(timeout + 0.5)
        except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError, RuntimeError):
            pass
        finally:
            try:
                loop.call_soon_threadsafe(loop.stop)
            except RuntimeError:            # already closed
                pass
            thread.join(0.5)

    def open_sessions(self) -> int:
        """How many sessions are open (or opening) and offered now."""
        loop = self._loop
        if loop is None:
            return 0
        async def count() -> int:
            return len(self._sessions)
        return asyncio.run_coroutine_threadsafe(count(), loop).result(5)

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._start_lock:
            if self._closed:
                raise RuntimeError("the MCP sessions of this process are closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    try:
                        loop.run_forever()
                    finally:
                        loop.close()

                thread = threading.Thread(target=serve, name="mcp-sessions", daemon=True)
                thread.start()
                ready.wait(5)
                self._loop, self._thread = loop, thread
            return self._loop

    # -- on the loop -----------------------------------------------------------------------------

    async def _run(self, url: str, token: str | None, owner: str, work: Work[T], deadline: float) -> T:
        key = key_of(url, token)
        with anyio.fail_after(max(deadline - time.monotonic(), 0.001)):
            for attempt in (1, 2):
                session, reused = await self._acquire(key, (url, owner), token, deadline)
                try:
                    assert session.client is not None
                    return await work(Use(session.client, None if reused else session.listed))
                except BaseException as exc:
                    error = first_error(exc)
                    if not isinstance(exc, Exception) or isinstance(error, TimeoutError):
                        session.retire()        # cut in the middle of a request: its state is unknown
                        raise
                    if session.refused is not None:
                        session.retire()
                        raise Refused(*session.refused, reused=reused) from None
                    if session.gone or session.dead or _transport_failure(error):
                        session.retire()
                        if reused and attempt == 1:
                            log.info("an MCP session to %s was lost (%s); trying a fresh one", url,
                                     "forgotten by the server" if session.gone else type(error).__name__)
                            continue
                        if session.gone:
                            raise SessionLost("the server closed the session") from None
                    raise
                finally:
                    session.in_use -= 1
                    session.last_used = time.monotonic()
                    if session.retired and session.in_use == 0:
                        session.close()
            raise AssertionError("unreachable")      # pragma: no cover

    async def _acquire(self, key: tuple[str, str], owner: tuple[str, str], token: str | None,
                       deadline: float) -> tuple[_Session, bool]:
        """The key's open session (True: it was open before), or a new one opened now; counted as
        in use (the caller gives it back)."""
        self._start_reaper()
        now = time.monotonic()
        session = self._sessions.get(key)
        if session is not None and session.ready and session.usable(now):
            self._sessions.move_to_end(key)
            session.in_use += 1
            return session, True
        if session is not None and not session.ready and not session.dead and not session.retired:
            await session.opened.wait()          # another request is opening it
            return self._opened(session), False
        if session is not None:
            session.retire()
        session = _Session(self, key, owner, token)
        self._sessions[key] = session
        self._all.add(session)
        session.task = asyncio.get_running_loop().create_task(session.serve(deadline - time.monotonic()))
        await session.opened.wait()
        opened = self._opened(session)
        for other in list(self._sessions.values()):       # the credential it replaced
            if other is not opened and other.owner == owner:
                other.retire()
        self._trim()
        return opened, False

    @staticmethod
    def _opened(session: _Session) -> _Session:
        if session.ready and not session.retired:
            session.in_use += 1
            return session
        if session.refused is not None:
            raise Refused(*session.refused, reused=False)
        if session.error is not None:
            raise session.error
        raise SessionLost("the session ended while it was being opened")

    def _trim(self) -> None:
        """At most ``cap`` sessions: the least recently used closed first (idle ones before those in
        use, which close when their requests are done)."""
        while len(self._sessions) > self.cap:
            ready = [s for s in self._sessions.values() if s.ready]
            if not ready:
                return
            min(ready, key=lambda s: (s.in_use > 0, s.last_used)).retire()

    def _forget(self, session: _Session) -> None:
        if self._sessions.get(session.key) is session:
            del self._sessions[session.key]
        if session.dead:
            self._all.discard(session)

    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        every = max(min(self.idle / 4, 5.0), 0.05)
        while True:
            await anyio.sleep(every)
            now = time.monotonic()
            for session in list(self._sessions.values()):
                if not session.ready:
                    continue
                if session.in_use == 0 and (now - session.last_used >= self.idle or not session.usable(now)):
                    session.close()
                elif not session.usable(now):
                    session.retire()

    async def _close_all(self, timeout: float) -> None:
        for session in list(self._all):
            session.close()
        if self._reaper is not None:
            self._reaper.cancel()
        tasks = [s.task for s in list(self._all) if s.task is not None and not s.task.done()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()


_pool: SessionPool | None = None
_pool_lock = threading.Lock()
_left_behind: list[SessionPool] = []     # a parent's pool in a forked child: never used, never collected


def sessions() -> SessionPool:
    """This process's pool (made with the first call; closed at exit)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = SessionPool()
        return _pool


def _close_at_exit() -> None:
    pool = _pool
    if pool is not None:
        # a server that went away meanwhile cannot take its DELETE: no news while the process ends
        logging.getLogger("mcp.client.streamable_http").setLevel(logging.ERROR)
        try:
            pool.close()
        except Exception:        # noqa: BLE001 - best effort while the process ends
            pass


def _after_fork_in_child() -> None:
    global _pool, _pool_lock
    if _pool is not None:
        _left_behind.append(_pool)      # its loop thread does not exist here; its sockets are the parent's
    _pool, _pool_lock = None, threading.Lock()


atexit.register(_close_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
