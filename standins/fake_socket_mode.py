"""Slack's Socket Mode server on 127.0.0.1: the WebSocket end of ``apps.connections.open``.

The protocol (https://api.slack.com/apis/socket-mode): the app asks the Web API for a URL
(``apps.connections.open``, served by ``FakeSlack`` when its ``socket_url`` is set to this
server's ``url``), opens a WebSocket to it and gets a ``hello``. Slack then sends envelopes
(``{"envelope_id", "type": "events_api" | "interactive" | "slash_commands", "payload", ...}``)
and the app acknowledges each by sending ``{"envelope_id": ...}`` back (with an optional
``payload``) within 3 seconds, or Slack retries it. From time to time Slack sends
``{"type": "disconnect", "reason": "refresh_requested"}``: the app opens a new connection (a new
``apps.connections.open``) and Slack may deliver on it at once. ``reason: "warning"`` means the
connection closes in about 10 seconds; ``reason: "link_disabled"`` that Socket Mode was turned
off for the app, which should not reconnect.

This server records every connection and, for every envelope it sends, when it was sent and
when (and on which connection) its acknowledgement arrived, so a test or a benchmark can hold
the app to the 3-second deadline; with ``retry_unacknowledged`` it also retries, as Slack does,
an envelope not acknowledged in time (a new envelope id, the same payload, ``retry_attempt`` + 1,
``retry_reason: "timeout"``, up to 3 times). It imports nothing else of ours.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

ACK_DEADLINE_SECONDS = 3.0  # Slack retries an envelope that is not acknowledged within this
MAX_RETRIES = 3


@dataclass
class Connection:
    number: int                  # 1, 2, ... in the order the app opened them
    requested_at: float          # time.perf_counter() when the app's upgrade request arrived
    opened_at: float             # ... when the hello went out
    closed_at: float | None = None
    ws: ServerConnection | None = field(default=None, repr=False)

    @property
    def open(self) -> bool:
        return self.closed_at is None


@dataclass
class Delivery:
    envelope_id: str
    connection: int              # Connection.number it was sent on
    sent_at: float               # time.perf_counter() as the frame was written
    acked_at: float | None = None
    acked_on: int | None = None  # the connection the acknowledgement came back on
    ack: dict | None = None
    attempt: int = 0             # the envelope's retry_attempt
    retry_of: str | None = None  # the first delivery's envelope id, for a retry

    @property
    def ack_seconds(self) -> float | None:
        return None if self.acked_at is None else self.acked_at - self.sent_at


class FakeSocketMode:
    """A Socket Mode endpoint: ``hello`` on connect, envelopes on demand, acknowledgements
    recorded, and the server-initiated disconnects (refresh, warning, link disabled)."""

    def __init__(self, app_id: str = "A123", *, connection_seconds: int = 18060,
                 retry_unacknowledged: bool = False, ack_deadline: float = ACK_DEADLINE_SECONDS):
        self.app_id = app_id
        self.retry_unacknowledged = retry_unacknowledged
        self.ack_deadline = ack_deadline            # when a retry goes out (Slack: 3 s)
        self.connection_seconds = connection_seconds  # hello's debug_info.approximate_connection_time
        self.connections: list[Connection] = []
        self.deliveries: list[Delivery] = []
        self.received: list[dict] = []              # every message the app sent, in order
        self.disabled = False
        self._stopped = False
        self._next: list[dict] = []                  # envelopes for the next connection, after its hello
        self._requested: dict[int, float] = {}       # id(ServerConnection) -> when its upgrade request came
        self._lock = threading.Condition()
        self._server = serve(self._session, "127.0.0.1", 0, process_request=self._check_path)
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-socket-mode", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """What apps.connections.open hands out (Slack's has a one-time ticket too)."""
        return f"ws://127.0.0.1:{self.port}/link/?app_id={self.app_id}"

    # -- the app's side of the socket -------------------------------------------------------

    def _check_path(self, connection, request):
        if not request.path.startswith("/link"):
            return connection.respond(404, "Not Found\n")
        if self.disabled:  # Socket Mode turned off for the app
            return connection.respond(403, "link_disabled\n")
        self._requested[id(connection)] = time.perf_counter()
        return None

    def _session(self, ws: ServerConnection) -> None:
        conn = Connection(number=0, ws=ws, requested_at=self._requested.pop(id(ws), time.perf_counter()),
                          opened_at=0.0)
        try:
            with self._lock:  # nothing else goes out on it before the hello and the pending envelopes
                conn.number = len(self.connections) + 1
                hello = {"type": "hello", "num_connections": sum(c.open for c in self.connections) + 1,
                         "debug_info": {"host": self._host(conn.number), "build_number": 1,
                                        "approximate_connection_time": self.connection_seconds},
                         "connection_info": {"app_id": self.app_id}}
                self.connections.append(conn)
                pending, self._next = self._next, []
                ws.send(json.dumps(hello))
                conn.opened_at = time.perf_counter()
                for envelope in pending:  # delivered the moment the connection is open
                    self._send(conn, envelope)
                self._lock.notify_all()
            for raw in ws:
                try:
                    message = json.loads(raw)
                except ValueError:
                    continue  # not JSON: Slack ignores it
                now = time.perf_counter()
                with self._lock:
                    self.received.append(message)
                    envelope_id = message.get("envelope_id")
                    for delivery in reversed(self.deliveries):
                        if delivery.envelope_id == envelope_id and delivery.acked_at is None:
                            delivery.acked_at, delivery.acked_on, delivery.ack = now, conn.number, message
                            break
                    self._lock.notify_all()
        except ConnectionClosed:
            pass  # the app (or disconnect(), or stop()) closed the connection
        finally:
            with self._lock:
                conn.closed_at = time.perf_counter()
                self._lock.notify_all()

    def _send(self, conn: Connection, envelope: dict, retry_of: str | None = None) -> Delivery:
        # Recorded before it is written, so the record is there before the app can answer it.
        delivery = Delivery(envelope["envelope_id"], conn.number, time.perf_counter(),
                            attempt=envelope.get("retry_attempt", 0), retry_of=retry_of)
        self.deliveries.append(delivery)
        try:
            conn.ws.send(json.dumps(envelope))
        except ConnectionClosed:
            self.deliveries.remove(delivery)
            raise
        if self.retry_unacknowledged and delivery.attempt < MAX_RETRIES:
            timer = threading.Timer(self.ack_deadline, self._retry, (delivery, envelope))
            timer.daemon = True
            timer.start()
        return delivery

    def _retry(self, delivery: Delivery, envelope: dict) -> None:
        with self._lock:
            if self._stopped or delivery.acked_at is not None:
                return
            retry = dict(envelope, envelope_id=str(uuid.uuid4()), retry_attempt=delivery.attempt + 1,
                         retry_reason="timeout")
            try:
                self._send(self.current(), retry, retry_of=delivery.retry_of or delivery.envelope_id)
            except (LookupError, ConnectionClosed):
                pass  # no connection: Slack would try again later; not modelled

    def retries(self) -> list[Delivery]:
        """The retries sent for envelopes not acknowledged within the deadline."""
        with self._lock:
            return [d for d in self.deliveries if d.retry_of is not None]

    @staticmethod
    def _host(number: int) -> str:
        return f"applink-fake-{number}"

    # -- what Slack does --------------------------------------------------------------------

    def current(self) -> Connection:
        """The newest open connection."""
        with self._lock:
            for conn in reversed(self.connections):
                if conn.open:
                    return conn
        raise LookupError("no open Socket Mode connection")

    def send(self, envelope: dict, connection: Connection | None = None) -> Delivery:
        """Send an envelope on ``connection`` (the newest open one by default)."""
        with self._lock:
            conn = connection or self.current()
            return self._send(conn, envelope)

    def send_on_next_connection(self, envelope: dict) -> None:
        """Queue an envelope to go out on the next connection right after its hello."""
        with self._lock:
            self._next.append(envelope)

    def disconnect(self, reason: str, connection: Connection | None = None,
                   close_after: float | None = None) -> Connection:
        """Send ``{"type": "disconnect", "reason": ...}`` and, after ``close_after`` seconds,
        close the connection from this side if the app has not."""
        conn = connection or self.current()
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": self._host(conn.number)}}
        try:
            conn.ws.send(json.dumps(message))
        except ConnectionClosed:
            pass
        if close_after is not None:
            timer = threading.Timer(close_after, conn.ws.close, kwargs={"code": 1001})
            timer.daemon = True
            timer.start()
        return conn

    def refresh(self, connection: Connection | None = None, close_after: float | None = None) -> Connection:
        """Slack's periodic connection refresh: the app should open a new connection."""
        return self.disconnect("refresh_requested", connection, close_after)

    def warn(self, connection: Connection | None = None, close_after: float = 10.0) -> Connection:
        """The connection will be closed in about ``close_after`` seconds."""
        return self.disconnect("warning", connection, close_after)

    def disable_link(self) -> None:
        """Socket Mode turned off for the app: every connection is told and closed, new ones refused."""
        self.disabled = True
        for conn in [c for c in list(self.connections) if c.open]:
            self.disconnect("link_disabled", conn, close_after=0.0)

    # -- waiting ----------------------------------------------------------------------------

    def wait_for_connections(self, count: int, timeout: float = 15.0) -> Connection:
        """Until ``count`` connections have been opened; returns the newest."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.connections) >= count, timeout):
                raise TimeoutError(f"{len(self.connections)} of {count} Socket Mode connections opened")
            return self.connections[-1]

    def wait_for_closed(self, connection: Connection, timeout: float = 15.0) -> Connection:
        with self._lock:
            if not self._lock.wait_for(lambda: not connection.open, timeout):
                raise TimeoutError(f"Socket Mode connection {connection.number} still open after {timeout} s")
        return connection

    def wait_for_ack(self, envelope_id: str, timeout: float = 15.0) -> Delivery:
        """The (newest) delivery of ``envelope_id`` once it has been acknowledged."""
        def acked():
            return next((d for d in reversed(self.deliveries)
                         if d.envelope_id == envelope_id and d.acked_at is not None), None)
        with self._lock:
            delivery = self._lock.wait_for(acked, timeout)
        if delivery is None:
            raise TimeoutError(f"envelope {envelope_id} was not acknowledged within {timeout} s")
        return delivery

    def acknowledged(self) -> list[str]:
        with self._lock:
            return [m["envelope_id"] for m in self.received if "envelope_id" in m]

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        self._server.shutdown()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeSocketMode:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def envelope(payload: dict, envelope_id: str | None = None, *, kind: str = "events_api",
             retry_attempt: int = 0, retry_reason: str = "") -> dict:
    """A Socket Mode envelope around an Events API (or interactive, slash command) payload."""
    return {"envelope_id": envelope_id or str(uuid.uuid4()), "type": kind, "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": retry_attempt, "retry_reason": retry_reason}
