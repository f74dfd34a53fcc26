"""The plumbing every stand-in shares: an HTTP server on 127.0.0.1:<free port>.

A subclass implements ``handle(request) -> Reply``; this module does the rest
(threads, keep-alive, Content-Length, shutting down open connections).
"""

from __future__ import annotations

import json
import socket
import ssl  # noqa: F401 - the type of LoopbackServer.tls
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    method: str
    path: str  # without the query string, still percent-encoded
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    pairs: list[tuple[str, str]] = field(default_factory=list)  # every query parameter, repeated ones too

    def json(self):
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))


@dataclass
class Stream:
    """A body sent chunk by chunk as the client takes it: with ``length`` as its Content-Length,
    else chunked. ``on_sent(n)`` is told each chunk that went out (a client that hangs up stops it)."""

    chunks: Iterable[bytes]
    length: int | None = None
    on_sent: Callable[[int], None] = lambda n: None


@dataclass
class Reply:
    status: int = 200
    body: object = None  # dict/list -> JSON, str/bytes sent as is, a Stream as it is read
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode("utf-8"), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode("utf-8"), "application/json; charset=utf-8"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], OSError):  # the client hung up (timeouts, stop()): expected
            return
        super().handle_error(request, client_address)


class LoopbackServer:
    """Base class: start()/stop()/context manager around a ThreadingHTTPServer."""

    def __init__(self) -> None:
        self.tls: "ssl.SSLContext | None" = None   # set before start() to serve https
        self.lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._port = 0
        self._conns: set[socket.socket] = set()
        self.stopping = threading.Event()

    def handle(self, request: Request) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def port(self) -> int:  # still known after stop(), to test "connection refused"
        assert self._port, "call start() first"
        return self._port

    @property
    def origin(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                # Headers and body go out in two sends: without TCP_NODELAY, Nagle's algorithm
                # holds the body until the client's delayed ACK (~40 ms per request on loopback).
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with owner.lock:
                    owner._conns.add(self.connection)

            def finish(self):
                with owner.lock:
                    owner._conns.discard(self.connection)
                super().finish()

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                    pairs=parse_qsl(parts.query, keep_blank_values=True),
                )
                try:
                    reply = owner.handle(request)
                except Exception as exc:  # a bug in a stand-in must show, not hang the client
                    reply = Reply(500, f"stand-in error: {type(exc).__name__}: {exc}")
                if isinstance(reply.body, Stream):
                    self._stream(reply)
                    return
                data, content_type = reply.encode()
                self.send_response(reply.status)
                headers = {"Content-Type": content_type, **reply.headers}
                for name, value in headers.items():
                    self.send_header(name, str(value))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":   # HEAD: what GET would send, without the body
                    self.wfile.write(data)

            def _stream(self, reply: Reply):
                body = reply.body
                self.send_response(reply.status)
                for name, value in {"Content-Type": "application/octet-stream", **reply.headers}.items():
                    self.send_header(name, str(value))
                if body.length is None:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(body.length))
                self.end_headers()
                for chunk in body.chunks:
                    self.wfile.write(chunk if body.length is not None else b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    body.on_sent(len(chunk))
                if body.length is None:
                    self.wfile.write(b"0\r\n\r\n")

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

            def log_message(self, *args):  # keep test output quiet
                pass

        self.stopping.clear()
        self._httpd = _Server(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            self._httpd.socket = self.tls.wrap_socket(self._httpd.socket, server_side=True)
        self._port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         name=type(self).__name__, daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # releases handlers that deliberately hang
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        with self.lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:  # idle keep-alive connections would otherwise linger
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()

    def __enter__(self):
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def grown(content: bytes, extra: int, *, chunked: bool, on_sent: Callable[[int], None]) -> Stream:
    """``content`` and then ``extra`` bytes more, made as they are sent (a file that grew after
    it was listed, or a server that lies about a size); chunked, or with its Content-Length."""
    def chunks():
        yield content
        block = b"x" * 65536
        left = extra
        while left > 0:
            yield block[:left]
            left -= len(block)
    return Stream(chunks(), None if chunked else len(content) + extra, on_sent)
