"""A running chatops for end-to-end tests: web app + real worker process + stand-ins.

``System.start(...)`` writes a corpus and a directory, ingests through the CLI,
starts ``chatops worker`` as a subprocess (real Celery on the real Redis, a
unique queue and key prefix per system) and serves the real FastAPI/Bolt app
with uvicorn on a loopback port. Slack and the LLM are stand-ins on loopback.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import redis
import requests

from standins.fake_openai import FakeOpenAI
from standins.fake_slack import (FakeSlack, block_actions_body, event_body, home_block_actions_body, sign,
                                 view_submission_body)

SECRET = "e2e-signing-secret"
BOT = "UBOT"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    """The first truthy value of ``predicate()``, polled until ``timeout`` seconds pass."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not met within {timeout}s")


def text_of(params: dict) -> str:
    """All visible text of a message payload: its fallback text and every block's text."""
    parts = [params.get("text") or ""]

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    parts.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(params.get("blocks") or [])
    return "\n".join(parts)


_counter = iter(range(1_000_000))


def new_ts() -> str:
    return f"{int(time.time())}.{next(_counter):06d}"


class System:
    def __init__(self, root: Path, slack: FakeSlack, llm: FakeOpenAI, env: dict):
        self.root, self.slack, self.llm, self.env = root, slack, llm, env
        self.worker: subprocess.Popen | None = None
        self.server = None
        self.url = ""
        self.log_path = root / "worker.log"

    @classmethod
    def start(cls, root: Path, *, corpus: dict[str, str], directory: str, users: dict, channels: dict,
              reply, extra_env: dict | None = None, ingest: bool = True) -> "System":
        """``ingest=False``: the worker starts on an empty index (the test ingests)."""
        try:
            redis.Redis.from_url("redis://127.0.0.1:6379/0").ping()
        except redis.RedisError:
            pytest.skip("Redis is not running on 127.0.0.1:6379")
        for rel, text in corpus.items():
            (root / "corpus" / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / "corpus" / rel).write_text(text)
        (root / "directory.yml").write_text(directory)
        run = uuid.uuid4().hex[:8]
        slack = FakeSlack(users=users, channels=channels, bot_user_id=BOT).start()
        llm = FakeOpenAI(reply=reply).start()
        env = {
            **{k: v for k, v in os.environ.items()
               if not k.startswith(("SLACK_", "OPENAI_", "CHATOPS_", "QDRANT_", "ENTRA_", "DATABASE_"))},
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "CHATOPS_QUEUE": f"chatops-e2e-{run}",
            "CHATOPS_KEY_PREFIX": f"chatops-e2e-{run}",
            "CHATOPS_DATA_DIR": str(root / "data"),
            "CHATOPS_DIRECTORY_FILE": str(root / "directory.yml"),
            "SLACK_BOT_TOKEN": "xoxb-e2e-token",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.url,
            "OPENAI_BASE_URL": llm.base_url,
            "OPENAI_API_KEY": "sk-e2e-not-a-real-key",
            "CHATOPS_LLM_TIMEOUT": "3",
            "CHATOPS_LLM_MAX_RETRIES": "0",
            "CHATOPS_LOG_FORMAT": "json",
            # Each test asks afresh and posts at once: the cache and the per-channel pacing have
            # their own tests (tests/handlers/test_service.py, tests/standins/test_slack_gateway.py).
            "CHATOPS_CACHE_TTL": "0",
            "CHATOPS_SLACK_CHANNEL_PACE": "0",
            **(extra_env or {}),
        }
        system = cls(root, slack, llm, env)
        if ingest:
            system._ingest()
        system.start_worker()
        system._start_web()
        return system

    def chatops(self) -> str:
        return str(Path(sys.executable).parent / "chatops")

    def _ingest(self) -> None:
        done = self.cli("ingest", str(self.root / "corpus"))
        assert done.returncode == 0, done.stderr

    def cli(self, *args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
        """``chatops ARGS`` as its own process, with this system's settings (and ``env`` on top)."""
        return subprocess.run([self.chatops(), *args], env={**self.env, **env}, capture_output=True, text=True,
                              timeout=timeout)

    def start_worker(self) -> None:
        self._log_file = open(self.log_path, "a")
        self.worker = subprocess.Popen([self.chatops(), "worker", "--concurrency", "2"], env=self.env,
                                       stdout=self._log_file, stderr=subprocess.STDOUT)

    def stop_worker(self) -> None:
        """Stop the worker (and so release the embedded index it holds)."""
        if self.worker is None:
            return
        self.worker.terminate()
        try:
            self.worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.worker.kill()
            self.worker.wait()
        self.worker = None
        self._log_file.close()

    def _start_web(self) -> None:
        import uvicorn

        from chatops_app.cli.serve import build_web
        from chatops.settings import Settings

        names = ("SLACK_", "CHATOPS_", "REDIS_", "DATABASE_")
        settings = Settings.load(**{k: v for k, v in self.env.items() if k.startswith(names)})
        # Secrets that actions name by environment variable (the web process checks the catalogue).
        self._exported = [k for k in self.env if k.endswith("_SECRET") and not k.startswith(names)
                          and k not in os.environ]
        for key in self._exported:
            os.environ[key] = self.env[key]
        port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(build_web(settings), host="127.0.0.1", port=port,
                                                    log_level="warning"))
        threading.Thread(target=self.server.run, daemon=True).start()
        deadline = time.time() + 15
        while not self.server.started and time.time() < deadline:
            time.sleep(0.05)
        assert self.server.started, "web app did not start"
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        for key in getattr(self, "_exported", []):
            os.environ.pop(key, None)
        if self.server is not None:
            self.server.should_exit = True
        self.stop_worker()
        self.slack.stop()
        self.llm.stop()
        r = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        for key in r.scan_iter(f"{self.env['CHATOPS_KEY_PREFIX']}:*"):
            r.delete(key)
        r.delete(self.env["CHATOPS_QUEUE"], f"{self.env['CHATOPS_QUEUE']}.ingest")

    # -- Slack traffic ---------------------------------------------------------------

    def post_event(self, event: dict, *, secret: str = SECRET, retry: int | None = None,
                   timestamp: int | None = None) -> requests.Response:
        body = event_body(event, event_id=f"Ev{uuid.uuid4().hex[:10]}")
        headers = {"Content-Type": "application/json", **sign(body, secret, timestamp)}
        if retry is not None:
            headers["X-Slack-Retry-Num"] = str(retry)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return requests.post(f"{self.url}/slack/events", data=body, headers=headers, timeout=10)

    def click(self, user: str, channel: str, button: dict, message: dict | None = None,
              action_ts: str | None = None) -> requests.Response:
        action = {**button, "block_id": button.get("block_id", "b1"), "action_ts": action_ts or new_ts()}
        body = block_actions_body(user, channel, action, message)
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, SECRET)}
        return requests.post(f"{self.url}/slack/events", data=body, headers=headers, timeout=10)

    def click_home(self, user: str, button: dict, view: dict, action_ts: str | None = None) -> requests.Response:
        """A click on a button of the App Home tab ``view`` (as the stand-in stored it)."""
        action = {**button, "block_id": button.get("block_id", "b1"), "action_ts": action_ts or new_ts()}
        body = home_block_actions_body(user, view, action)
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, SECRET)}
        return requests.post(f"{self.url}/slack/events", data=body, headers=headers, timeout=10)

    def submit_view(self, user: str, view: dict, values: dict) -> requests.Response:
        body = view_submission_body(user, view, values)
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, SECRET)}
        return requests.post(f"{self.url}/slack/events", data=body, headers=headers, timeout=10)

    def mention(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> dict:
        event = {"type": "app_mention", "channel": channel, "user": user, "text": f"<@{BOT}> {text}",
                 "ts": new_ts(), "channel_type": "channel"}
        if thread_ts:
            event["thread_ts"] = thread_ts
        return event

    def is_answer_in(self, channel: str, thread_ts: str, message: dict) -> bool:
        """``message`` (one of FakeSlack.shown()) is an answer in this thread: streamed there, in
        place of the working message, or (streaming on, an answer not streamed) posted there."""
        if message.get("channel") != channel or "Looking into it" in text_of(message):
            return False
        if message.get("streamed"):
            return message.get("thread_ts") == thread_ts
        if "ts" in message:          # a chat.update
            return self.thread_of(message) == thread_ts
        return message.get("thread_ts") == thread_ts and not any(     # not a proposal
            e.get("action_id") == "proposal_approve" for b in message.get("blocks") or []
            if b.get("type") == "actions" for e in b.get("elements", []))

    def answers_in_thread(self, channel: str, thread_ts: str) -> list[dict]:
        return [m for m in self.slack.shown() if self.is_answer_in(channel, thread_ts, m)]

    def final_reply(self, channel: str, thread_ts: str, timeout: float = 30.0) -> str:
        """The text of the (first) answer in this thread (see :meth:`is_answer_in`)."""
        return text_of(self.slack.wait_for_shown(lambda m: self.is_answer_in(channel, thread_ts, m), timeout=timeout))

    def answer_in(self, channel: str, since: int, timeout: float = 45.0) -> dict:
        """The first answer in ``channel`` after Slack call number ``since``: a streamed message as it
        ended, a chat.update, an ephemeral message or a reply that is not a working step ("Looking
        into it…", "Checking …"), a proposal nor a Connect button."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for call in list(self.slack.calls)[since:]:
                p = call["params"]
                if call["method"] == "chat.stopStream" and (call.get("response") or {}).get("ok"):
                    message = call["response"]["message"]         # a streamed answer, as it ended
                    p = {**message, "channel": p.get("channel"), "blocks": message.get("blocks") or [],
                         "streamed": True}
                text = text_of(p)
                proposal = any(e.get("action_id") == "proposal_approve" for b in p.get("blocks") or []
                               if b.get("type") == "actions" for e in b.get("elements", []))
                # chat.postMessage: with streaming on, an answer not streamed is posted as a reply
                if call["method"] in ("chat.update", "chat.postEphemeral", "chat.stopStream", "chat.postMessage") \
                        and p.get("channel") == channel and not proposal \
                        and "Checking" not in text and "Looking into it" not in text and "Connect " not in text:
                    return p
            time.sleep(0.1)
        raise AssertionError(f"no answer in {channel}: {[c['method'] for c in self.slack.calls[since:]]}")

    def thread_of(self, update_params: dict) -> str | None:
        """Which thread a chat.update belongs to: the thread of the message it updates."""
        for call in list(self.slack.calls):
            if call["method"] == "chat.postMessage" and call.get("response_ts") == update_params.get("ts"):
                return call["params"].get("thread_ts")
        return None

    def log_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.startswith("{")]
