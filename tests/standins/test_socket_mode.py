"""Socket Mode: the same Bolt app over a WebSocket, against a loopback Socket Mode server.

slack_sdk's own Socket Mode client asks the (fake) Web API for a URL with apps.connections.open,
connects to our WebSocket server, gets an Events API envelope, runs the listener (which
claims and enqueues the question) and acknowledges the envelope by id.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
import redis

pytest.importorskip("websockets")
from slack_bolt.adapter.socket_mode import SocketModeHandler  # noqa: E402
from websockets.sync.server import serve  # noqa: E402

from bot.app import build_app  # noqa: E402
from chatops.settings import Settings  # noqa: E402
from chatops.state import State  # noqa: E402
from standins.fake_slack import FakeSlack  # noqa: E402


class FakeSocketMode:
    """Sends hello, then each queued envelope; records what the client sends back."""

    def __init__(self, envelopes: list[dict]):
        self.envelopes = envelopes
        self.received: list[dict] = []
        self.server = serve(self._session, "127.0.0.1", 0)
        self.port = self.server.socket.getsockname()[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link"

    def _session(self, ws) -> None:
        ws.send(json.dumps({"type": "hello", "num_connections": 1,
                            "connection_info": {"app_id": "A123"}, "debug_info": {"host": "fake"}}))
        for envelope in self.envelopes:
            ws.send(json.dumps(envelope))
        try:
            for message in ws:
                self.received.append(json.loads(message))
        except Exception:  # noqa: BLE001 - the client closed the connection
            pass

    def stop(self) -> None:
        self.server.shutdown()


def envelope(event: dict, envelope_id: str) -> dict:
    return {"envelope_id": envelope_id, "type": "events_api", "accepts_response_payload": False,
            "retry_attempt": 0, "retry_reason": "",
            "payload": {"token": "legacy", "team_id": "T123", "api_app_id": "A123", "type": "event_callback",
                        "event_id": f"Ev{envelope_id}", "event_time": int(time.time()), "event": event,
                        "authorizations": [{"user_id": "UBOT", "is_bot": True, "team_id": "T123"}]}}


def test_socket_mode_enqueues_a_mention_and_acknowledges_the_envelope():
    try:
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        client.ping()
    except redis.RedisError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    prefix = f"chatops-socket-{uuid.uuid4().hex[:8]}"
    ts = f"{int(time.time())}.000100"
    mention = {"type": "app_mention", "channel": "C1", "channel_type": "channel", "user": "U1",
               "text": "<@UBOT> where is the VPN guide?", "ts": ts}
    socket_server = FakeSocketMode([envelope(mention, "env-1"), envelope(mention, "env-2")])  # + a redelivery
    queued: list[tuple[str, dict]] = []
    from prometheus_client import REGISTRY

    acks_before = REGISTRY.get_sample_value("chatops_slack_ack_duration_seconds_count") or 0
    with FakeSlack(bot_user_id="UBOT") as slack:
        slack.socket_url = socket_server.url
        settings = Settings.load(SLACK_BOT_TOKEN="xoxb-socket", SLACK_APP_TOKEN="xapp-socket",
                                 SLACK_API_URL=slack.url, CHATOPS_KEY_PREFIX=prefix)
        app = build_app(settings, state=State(client, prefix), dispatch=lambda kind, p: queued.append((kind, p)),
                        socket_mode=True)  # no signing secret: Socket Mode authenticates with the app token
        handler = SocketModeHandler(app, settings.slack_app_token.get_secret_value())
        handler.connect()
        try:
            deadline = time.time() + 15
            while time.time() < deadline and len([m for m in socket_server.received if "envelope_id" in m]) < 2:
                time.sleep(0.05)
        finally:
            handler.close()
            socket_server.stop()
            for key in client.scan_iter(f"{prefix}:*"):
                client.delete(key)
    acked = sorted(m["envelope_id"] for m in socket_server.received if "envelope_id" in m)
    assert acked == ["env-1", "env-2"]
    assert [kind for kind, _ in queued] == ["question"]  # the second delivery was a duplicate
    assert queued[0][1]["text"] == "where is the VPN guide?" and queued[0][1]["thread_ts"] == ts
    assert slack.calls_to("apps.connections.open")
    assert REGISTRY.get_sample_value("chatops_slack_ack_duration_seconds_count") - acks_before == 2
