"""Socket Mode: the same Bolt app over a WebSocket (``SLACK_APP_TOKEN``).

Slack refreshes a Socket Mode connection from time to time: it sends
``{"type": "disconnect", "reason": "refresh_requested"}``, the app asks ``apps.connections.open``
for a new URL and connects, and Slack may deliver envelopes on the new connection at once, each
to be acknowledged within 3 seconds or retried. Neither of Bolt's adapters for a sync ``App`` gets
through that cleanly (``benchmarks/socket_refresh.py``):

- the built-in one (``slack_bolt.adapter.socket_mode``, Bolt's default) starts reading the new
  connection only once closing the old one has waited out its blocked read, a 3-second socket
  timeout: an envelope sent as the new connection opens is acknowledged after 3.06-3.09 s, and Slack
  retries it;
- the websocket-client one closes the old connection before it opens the new one, which it
  starts on a half-second timer: no connection for 0.5 s after every refresh, and, when the old
  connection's reader misses the close, for 10.5 s (until its monitor notices).

So this module has its own client: slack_sdk's ``BaseSocketModeClient`` (the envelope queue, the
listeners, reconnecting on ``disconnect``) on websockets' threaded client, each connection read
by a thread of its own. On a refresh the new connection is open and being read before the old
one is closed, and the old one's close handshake runs in the background, waiting on nothing the
app needs. Bolt's own Socket Mode request/response helpers turn envelopes into ``App.dispatch``
calls and acknowledgements, as in every Bolt adapter (``bot/app.py``'s ``_timed_ack`` times them).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from queue import Queue

from slack_bolt import App
from slack_bolt.adapter.socket_mode.base_handler import BaseSocketModeHandler
from slack_bolt.adapter.socket_mode.internals import run_bolt_app, send_response
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientNotConnectedError
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State as WebSocketState
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as open_websocket

from chatops.settings import ConfigError

log = logging.getLogger(__name__)


class SocketModeClient(BaseSocketModeClient):
    """A Socket Mode client that never leaves the app without a connection it is reading.

    - ``connect()`` opens a connection, starts its reader thread, makes it the current one (the
      one acknowledgements go out on), and only then closes the one it replaces, in the background.
    - A ``disconnect`` message (any reason) makes the base class's message loop call
      ``connect_to_new_endpoint(force=True)``: a new URL, then ``connect()``.
    - When the current connection ends unasked (Slack closed it, the network, missed pings), its
      reader reconnects, retrying with a doubling delay up to ``max_reconnect_delay``.
    """

    def __init__(self, app_token: str, web_client: WebClient, *, logger: logging.Logger | None = None,
                 ping_interval: float = 10, concurrency: int = 10, max_reconnect_delay: float = 30.0):
        self.app_token = app_token
        self.web_client = web_client
        self.logger = logger or log
        self.ping_interval = ping_interval
        self.max_reconnect_delay = max_reconnect_delay
        self.wss_uri = None
        self.message_queue = Queue()
        self.message_listeners = []
        self.socket_mode_request_listeners = []
        self.message_workers = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="socket-mode-envelope")
        self.closed = False
        self.connect_operation_lock = threading.Lock()
        self.current_session: ClientConnection | None = None
        self._closing = threading.Event()
        self.message_processor = threading.Thread(target=self.process_messages, name="socket-mode-messages",
                                                  daemon=True)
        self.message_processor.start()

    def issue_new_wss_url(self) -> str:
        # The app's WebClient retries a 429 after Retry-After (bot/gateway.py); anything else
        # raises, and the reconnect loop tries again later.
        return self.web_client.apps_connections_open(app_token=self.app_token)["url"]

    def is_connected(self) -> bool:
        session = self.current_session
        return session is not None and session.state is WebSocketState.OPEN

    def connect(self) -> None:
        url, self.wss_uri = self.wss_uri or self.issue_new_wss_url(), None  # each URL is good for one connection
        secure = url.startswith("wss:")
        session = open_websocket(url, ssl=self.web_client.ssl if secure else None,
                                 proxy=self.web_client.proxy or True,  # True: the *_proxy environment variables
                                 ping_interval=self.ping_interval, ping_timeout=self.ping_interval,
                                 close_timeout=5, legacy=True)  # a connection, not a context: close() ends it
        old, self.current_session = self.current_session, session
        threading.Thread(target=self._read, args=(session,), name="socket-mode-connection", daemon=True).start()
        if old is not None:
            threading.Thread(target=old.close, name="socket-mode-close", daemon=True).start()
        if self.closed:  # close() ran while this connection was opening
            session.close()
            return
        self.logger.info("Socket Mode connection open (%s)", session.id)

    def _read(self, session: ClientConnection) -> None:
        try:
            for message in session:
                if isinstance(message, str):
                    self.enqueue_message(message)
        except ConnectionClosed:
            pass
        except Exception:  # noqa: BLE001 - a broken connection is replaced below, whatever broke it
            self.logger.exception("Socket Mode connection %s failed", session.id)
        if session is self.current_session and not self.closed:
            self.logger.warning("Socket Mode connection %s closed (code %s); reconnecting",
                                session.id, session.close_code)
            self._reconnect()

    def _reconnect(self) -> None:
        delay = 1.0
        while not self.closed:
            try:
                self.connect_to_new_endpoint()  # a no-op when another thread has just connected
            except Exception as e:  # noqa: BLE001 - Slack or the network unavailable: try again
                self.logger.warning("Socket Mode reconnect failed (%s: %s); retrying in %.0f s",
                                    type(e).__name__, e, delay)
            if self.is_connected() or self._closing.wait(delay):
                return
            delay = min(delay * 2, self.max_reconnect_delay)

    def send_message(self, message: str) -> None:
        session = self.current_session
        try:
            if session is None:
                raise SlackClientNotConnectedError("no Socket Mode connection")
            session.send(message)
        except (ConnectionClosed, SlackClientNotConnectedError):
            # The connection was replaced or lost as the message went out: once more on the
            # current one, after any reconnect in progress.
            with self.connect_operation_lock:
                session = self.current_session
                if session is None or session.state is not WebSocketState.OPEN:
                    raise SlackClientNotConnectedError("the Socket Mode connection is closed") from None
                session.send(message)

    def disconnect(self) -> None:
        """Close the current connection (the reader then opens a new one, unless closed)."""
        if self.current_session is not None:
            self.current_session.close()

    def close(self) -> None:
        self.closed = True
        self._closing.set()
        session, self.current_session = self.current_session, None
        if session is not None:
            session.close()
        self.message_queue.put(None)  # wakes the message loop, which then sees ``closed``
        self.message_processor.join(timeout=5)
        self.message_workers.shutdown(wait=True)


class SocketModeHandler(BaseSocketModeHandler):
    """Bolt's Socket Mode handler interface (connect, start, close) over ``SocketModeClient``."""

    def __init__(self, app: App, app_token: str, *, ping_interval: float = 10, concurrency: int = 10):
        self.app = app
        self.app_token = app_token
        self.client = SocketModeClient(app_token, app.client, logger=app.logger, ping_interval=ping_interval,
                                       concurrency=concurrency)
        self.client.socket_mode_request_listeners.append(self.handle)

    def handle(self, client: BaseSocketModeClient, req: SocketModeRequest) -> None:
        started = time.time()
        send_response(client, req, run_bolt_app(self.app, req), started)


def run_socket_mode(bolt_app, app_token) -> None:
    if not app_token:
        raise ConfigError("SLACK_APP_TOKEN (xapp-...) must be set for Socket Mode")
    SocketModeHandler(bolt_app, app_token.get_secret_value()).start()
