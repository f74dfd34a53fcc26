"""Socket Mode across Slack's connection refresh: how long an envelope that Slack delivers the
moment the new connection opens waits for its acknowledgement, with Bolt's default adapter
(``slack_bolt.adapter.socket_mode``, the SDK's built-in client), Bolt's other sync adapter
(``slack_bolt.adapter.socket_mode.websocket_client``, when the websocket-client package is
installed: it is not a dependency) and the one ``chatops socket`` uses (``bot/socket_mode.py``).

    .venv/bin/python benchmarks/socket_refresh.py [--rounds 5] [--json]

Each round, for each adapter in turn: the real Bolt app (bot/app.py, on real Redis, the loopback
Web API and Socket Mode stand-ins), connected; one envelope on the first connection, acknowledged
(the app is reading); then ``{"type": "disconnect", "reason": "refresh_requested"}``, the app asks
``apps.connections.open`` for a new URL and connects, and the stand-in sends an ``app_mention``
envelope right after that connection's ``hello``. Reported: the time from sending it to its
acknowledgement arriving (Slack retries after 3 s, and so does the stand-in here), per round, p50
and max per adapter; and, beside it, how the adapter moved connections: the time from the
disconnect to the new connection's ``hello``, how long the app had no open connection (the old one
closed before the new one opened), the retries the stand-in sent and the questions queued (the
warm-up's and the refresh envelope's: 2, whatever the retries), and the ``apps.connections.open``
calls it made.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
import uuid
from pathlib import Path

import redis
from slack_bolt.adapter.socket_mode.builtin import SocketModeHandler as BuiltinHandler

try:
    from slack_bolt.adapter.socket_mode.websocket_client import SocketModeHandler as WebsocketClientHandler
except ImportError:  # websocket-client is not installed
    WebsocketClientHandler = None

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.app import build_app  # noqa: E402
from bot.settings import SlackSettings  # noqa: E402
from bot.socket_mode import SocketModeHandler as ChatopsHandler  # noqa: E402
from chatops.settings import Settings  # noqa: E402
from chatops.state import State  # noqa: E402
from standins.fake_slack import FakeSlack  # noqa: E402
from standins.fake_socket_mode import ACK_DEADLINE_SECONDS, FakeSocketMode, envelope  # noqa: E402

ADAPTERS = {"Bolt builtin (the default)": BuiltinHandler,
            **({"Bolt websocket-client": WebsocketClientHandler} if WebsocketClientHandler else {}),
            "chatops (bot/socket_mode.py)": ChatopsHandler}


def mention(n: int) -> dict:
    ts = f"{int(time.time())}.{n:06d}"
    event = {"type": "app_mention", "channel": "C1", "channel_type": "channel", "user": "U1",
             "text": f"<@UBOT> question {n}?", "ts": ts}
    return {"token": "legacy", "team_id": "T123", "api_app_id": "A123", "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:10]}", "event_time": int(time.time()), "event": event,
            "authorizations": [{"user_id": "UBOT", "is_bot": True, "team_id": "T123"}]}


def one_refresh(handler_class, client: redis.Redis) -> dict:
    prefix = f"chatops-bench-socket-{uuid.uuid4().hex[:8]}"
    queued: list[tuple[str, dict]] = []
    with FakeSocketMode(retry_unacknowledged=True) as socket_server, FakeSlack(bot_user_id="UBOT") as slack:
        slack.socket_url = socket_server.url
        settings = Settings.load(SLACK_BOT_TOKEN="xoxb-bench", SLACK_APP_TOKEN="xapp-bench",
                                 SLACK_API_URL=slack.url, CHATOPS_KEY_PREFIX=prefix)
        app = build_app(settings, state=State(client, prefix), socket_mode=True,
                        dispatch=lambda kind, payload: queued.append((kind, payload)))
        handler = handler_class(app, settings.of(SlackSettings).slack_app_token.get_secret_value())
        handler.connect()
        try:
            socket_server.wait_for_connections(1)
            socket_server.wait_for_ack(socket_server.send(envelope(mention(1), "warm-up")).envelope_id)
            socket_server.send_on_next_connection(envelope(mention(2), "after-refresh"))
            opens_before = len(slack.calls_to("apps.connections.open"))
            old = socket_server.refresh()
            refreshed_at = time.perf_counter()
            delivery = socket_server.wait_for_ack("after-refresh", timeout=30)
            new = socket_server.connections[delivery.connection - 1]
            time.sleep(0.5)  # what the adapter still does after the acknowledgement (more opens)
            opens = len(slack.calls_to("apps.connections.open")) - opens_before
            retries = len(socket_server.retries())
        finally:
            handler.close()
            for key in client.scan_iter(f"{prefix}:*"):
                client.delete(key)
    # from the old connection's close to the app's request for the new one (0: it asked first)
    without = 0.0 if old.closed_at is None else max(0.0, new.requested_at - old.closed_at)
    return {"ack_seconds": delivery.ack_seconds, "connection": delivery.connection,
            "reconnect_seconds": new.opened_at - refreshed_at, "no_connection_seconds": without,
            "retries": retries, "questions_queued": sum(kind == "question" for kind, _ in queued),
            "connections_open_calls": opens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)  # the SDKs' reconnect chatter
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    client.ping()
    results: dict[str, list[dict]] = {name: [] for name in ADAPTERS}
    for round_ in range(1, args.rounds + 1):
        for name, handler_class in ADAPTERS.items():  # alternated: same machine load for both
            result = one_refresh(handler_class, client)
            results[name].append(result)
            if not args.json:
                print(f"round {round_}  {name:34s} ack {result['ack_seconds']:.3f} s | new connection after "
                      f"{result['reconnect_seconds']:.3f} s, none open for {result['no_connection_seconds']:.3f} s, "
                      f"retries {result['retries']}, questions queued {result['questions_queued']}, "
                      f"apps.connections.open x{result['connections_open_calls']}", flush=True)
    summary = {}
    for name, rows in results.items():
        seconds = [r["ack_seconds"] for r in rows]
        summary[name] = {"rounds": len(seconds), "p50_s": round(statistics.median(seconds), 4),
                         "max_s": round(max(seconds), 4),
                         "over_deadline": sum(s >= ACK_DEADLINE_SECONDS for s in seconds),
                         "all_s": [round(s, 4) for s in seconds],
                         "reconnect_p50_s": round(statistics.median(r["reconnect_seconds"] for r in rows), 4),
                         "no_connection_max_s": round(max(r["no_connection_seconds"] for r in rows), 4),
                         "retries": sum(r["retries"] for r in rows),
                         "connections_open_calls": [r["connections_open_calls"] for r in rows]}
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"\nenvelope delivered right after a refresh_requested disconnect; Slack's deadline "
          f"{ACK_DEADLINE_SECONDS:.0f} s")
    for name, row in summary.items():
        print(f"  {name:34s} ack p50 {row['p50_s']:.3f} s  max {row['max_s']:.3f} s  "
              f"over the deadline {row['over_deadline']}/{row['rounds']}  (retries {row['retries']}; "
              f"new connection p50 {row['reconnect_p50_s']:.3f} s after the disconnect, "
              f"none open for up to {row['no_connection_max_s']:.3f} s)")


if __name__ == "__main__":
    main()
