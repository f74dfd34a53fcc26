"""Finding 3: a Redis restart killed the worker, and the web kept answering Slack 200 while every
later question was lost.

A private ``redis-server`` on a free port (never the shared one) carries the whole
system: the web app, a real `chatops worker` subprocess, the duplicate claims. It is
restarted while a question is being answered; the in-flight answer is posted, the
worker survives and answers the next question, its health endpoint says so, and the
web's /healthz reports a missing worker.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

import pytest
import redis
import requests

from tests.integration.harness import BOT, System, free_port, new_ts, text_of, wait_for

pytestmark = pytest.mark.redis

ASKER = "UASK"
CORPUS = {".acl.yml": '- match: "**"\n  public: true\n',
          "handbook/vacation.md": "# Vacation policy\n\nEveryone gets 27 days of paid vacation per calendar year.\n"}
DIRECTORY = f"users:\n  - {{email: ask@corp.example, slack_id: {ASKER}, groups: [staff]}}\n"
slow = threading.Event()


class PrivateRedis:
    def __init__(self, workdir):
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


def _reply(request: dict) -> str:
    if "slowly" in request["messages"][-1]["content"]:
        slow.wait(8)
    return "Everyone gets 27 days of paid vacation [1]."


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    server = PrivateRedis(tmp_path_factory.mktemp("private-redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def system(tmp_path_factory, broker):
    health_port = free_port()
    s = System.start(
        tmp_path_factory.mktemp("broker-restart"), corpus=CORPUS, directory=DIRECTORY, reply=_reply,
        users={ASKER: {"id": ASKER, "profile": {"email": "ask@corp.example"}}, BOT: {"id": BOT, "is_bot": True}},
        channels={},
        extra_env={"REDIS_URL": broker.url, "CHATOPS_WORKER_HEALTH_PORT": str(health_port),
                   "CHATOPS_WORKER_STALE_AFTER": "15"},
    )
    s.health_url = f"http://127.0.0.1:{health_port}/healthz"
    yield s
    slow.set()
    s.stop()


def ask(system, text: str) -> str:
    event = {"type": "message", "channel": f"D{ASKER}", "channel_type": "im", "user": ASKER, "text": text,
             "ts": new_ts()}
    assert system.post_event(event).status_code == 200
    return event["ts"]


def answers(system) -> list[str]:
    return [text_of(p) for p in system.slack.shown() if "27 days" in text_of(p)]




def healthy(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_the_worker_survives_a_redis_restart_mid_answer(system, broker):
    wait_for(lambda: healthy(system.health_url), 60, "the worker's health endpoint")
    slow.clear()
    ask(system, "how many vacation days do we get? answer slowly")
    wait_for(lambda: system.llm.requests, 30, "the model was asked")
    broker.stop()                       # Redis goes away with the question in flight ...
    time.sleep(1)
    broker.start()                      # ... and comes back empty
    slow.set()
    wait_for(lambda: len(answers(system)) >= 1, 60, "the in-flight answer")
    assert system.worker.poll() is None, "the worker exited"
    # It reconnected: the next question is answered too, exactly once each.
    ask(system, "and how many vacation days again?")
    wait_for(lambda: len(answers(system)) >= 2, 60, "the next answer")
    time.sleep(2)
    assert len(answers(system)) == 2
    assert system.worker.poll() is None
    assert not [line for line in system.log_lines() if "Unrecoverable error" in line.get("msg", "")]
    wait_for(lambda: healthy(system.health_url), 30, "the worker's health after the restart")
    # The web's /healthz sees a live worker again (it records itself every few seconds).
    wait_for(lambda: healthy(f"{system.url}/healthz"), 30, "the web's /healthz")


def test_the_web_healthz_reports_when_no_worker_consumes(system):
    assert healthy(f"{system.url}/healthz")
    system.stop_worker()
    try:
        detail = wait_for(lambda: (r := requests.get(f"{system.url}/healthz", timeout=2)).status_code == 503
                          and r.text, 40, "a 503 from the web's /healthz")
        assert "no worker" in detail or "waiting" in detail
        assert requests.get(f"{system.url}/livez", timeout=2).status_code == 200
    finally:
        system.start_worker()
