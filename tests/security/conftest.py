"""Fixtures for the security and fault suite.

``web``: the real web app (FastAPI + Bolt, ``chatops_app.cli.serve.build_web``-shaped) served by
uvicorn on a loopback port, talking to a loopback Slack; what it enqueues is recorded
instead of sent to Celery. Its duplicate claims live in the real Redis under a key
prefix of its own.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

import pytest
import redis
import requests

from tests.integration.harness import free_port
from standins.fake_slack import FakeSlack, event_body, sign

SECRET = "security-signing-secret"
BOT = "UBOT"
APP_ID = "A123"
TEAM = "T123"


def redis_or_skip() -> redis.Redis:
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    return client


@dataclass
class Web:
    url: str
    slack: FakeSlack
    prefix: str
    enqueued: list[tuple[str, dict]] = field(default_factory=list)
    broker: dict = field(default_factory=lambda: {"down": False})   # set "down": the enqueue fails

    def post(self, body: bytes, *, content_type: str = "application/json", signed: bool = True,
             headers: dict | None = None) -> requests.Response:
        h = {"Content-Type": content_type, **(sign(body, SECRET) if signed else {}), **(headers or {})}
        return requests.post(f"{self.url}/slack/events", data=body, headers=h, timeout=10)

    def event(self, event: dict, **envelope) -> requests.Response:
        return self.post(event_body(event, event_id=f"Ev{uuid.uuid4().hex[:10]}", **envelope))


def serve_web(slack: FakeSlack, env: dict, enqueued: list, broker: dict | None = None) -> tuple[str, object]:
    import uvicorn

    from bot.app import build_app
    from bot.settings import SlackSettings
    from bot.web import create_web_app
    from chatops.settings import Settings
    from chatops.state import State

    settings = Settings.load(**env)
    state = State(redis.Redis.from_url(settings.redis_url), settings.key_prefix)
    def dispatch(kind: str, payload: dict) -> None:
        if broker and broker.get("down"):
            raise ConnectionError("the broker is down")
        enqueued.append((kind, payload))

    bolt = build_app(settings, state=state, dispatch=dispatch)
    app = create_web_app(bolt, ready=lambda: (True, "ok"), max_body_bytes=settings.max_body_bytes,
                         signing_secret=settings.of(SlackSettings).slack_signing_secret.get_secret_value())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.time() + 15
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    assert server.started
    return f"http://127.0.0.1:{port}", server


@pytest.fixture
def web_env():
    """Settings for the web fixture; a test may change them before asking for ``web``."""
    return {"SLACK_BOT_TOKEN": "xoxb-security", "SLACK_SIGNING_SECRET": SECRET, "SLACK_APP_ID": APP_ID,
            "CHATOPS_KEY_PREFIX": f"chatops-sec-{uuid.uuid4().hex[:8]}", "REDIS_URL": "redis://127.0.0.1:6379/0"}


@pytest.fixture
def web(web_env):
    client = redis_or_skip()
    slack = FakeSlack(users={}, channels={}, bot_user_id=BOT, team_id=TEAM).start()
    enqueued: list = []
    broker = {"down": False}
    env = {**web_env, "SLACK_API_URL": slack.url}
    url, server = serve_web(slack, env, enqueued, broker)
    try:
        yield Web(url=url, slack=slack, prefix=env["CHATOPS_KEY_PREFIX"], enqueued=enqueued, broker=broker)
    finally:
        server.should_exit = True
        slack.stop()
        for key in client.scan_iter(f"{env['CHATOPS_KEY_PREFIX']}:*"):
            client.delete(key)
