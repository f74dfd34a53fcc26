"""Streamed answers (issue 22) against the post-and-update path: first visible sign, first answer
text, total time and Slack calls per answer, as the whole system.

    .venv/bin/python benchmarks/streaming.py [--questions 40] [--warmup 3] \\
        [--first-token-delay 0.3] [--token-delay 0.02] [--json]

Two systems run side by side in one sitting, each the whole product as processes: ``chatops serve``
(one web worker) and ``chatops worker --pool threads --concurrency 2``, on real Redis and Celery
(a queue and key prefix of their own), an embedded index of a few small documents (ingested here
once, then copied, so each worker opens its own), the directory identity provider, a loopback Slack
(``standins/fake_slack.py``) and a streaming model stub (``standins/fake_openai.py``) each. One runs
with ``CHATOPS_STREAMING=true``, the other with ``false``: the setting is read when the worker
starts, so switching it needs a restart; two systems at once avoid one per question. Questions go
to them alternately, one at a time (the other system idle meanwhile), the order swapped every
pair; ``--warmup`` questions per system first, not counted.

The model stub answers every question with the same five-sentence answer citing [1], streaming it
after ``--first-token-delay`` seconds, a word every ``--token-delay`` seconds. A request that does
not stream (the post-and-update path asks for the whole answer) is answered after the time the
same answer takes to stream (``FakeOpenAI.pace_whole``), as a real model's whole answer is.

Each question is a signed ``message`` event in a DM (``channel_type: im``) POSTed to
``/slack/events``; the next is sent once the answer is final and the system has been quiet for
``--settle`` seconds. Measured per answer, from the moment the event is POSTed, with the stand-ins'
receive times (``time.time()`` in this process, the same clock):

1. first visible sign: the first Slack call that shows something in the DM
   (``assistant.threads.setStatus`` or ``chat.postMessage``);
2. first answer text: the first ``chat.startStream`` / ``chat.appendStream`` carrying answer text
   (``markdown_text``; task updates carry none), minus the time the stub sent the answer's first
   token (``FakeOpenAI.first_token_at``). Words are appended as soon as no state claim can include
   them (``usecases/streaming.py``), so the floor is the time to the first whole word (the stub's
   next piece); the time to the first append carrying the first sentence's last words (``MARK``)
   is reported as well: appends are paced at one per 250 ms. On the post-and-update path there is
   no streamed text, and the answer text first appears with the final ``chat.update``;
3. total: to the final message, ``chat.stopStream`` (streamed) or the ``chat.update`` carrying the
   answer (post-and-update);
4. Slack Web API calls per answer, by method (every call the stand-in received between this
   question and the next).

Reported: p50/p95 of each per path, the ratios streamed / post-and-update, and the calls per
answer (mean per method, and total p50/p95).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import redis
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.pipeline import free_port, pct, progress, wait_live  # noqa: E402
from standins.fake_openai import FakeOpenAI  # noqa: E402
from standins.fake_slack import FakeSlack, event_body, sign  # noqa: E402

SECRET = "bench-secret"
ASKER = ("UASK", "asker@bench.example")
DM = "DUASK"
MARK = "Vaultwarden"     # in the answer's first sentence only: where answer text first shows
LAST = "within the hour" # in its last sentence: the answer is whole
REPLY = ("To rotate the deploy keys, open the Vaultwarden console and choose Rotate [1]. "
         "The old key stays valid for one hour, so deploys already running can finish [1]. "
         "Then restart the deploy runner so that it reads the new key from the vault [1]. "
         "If a deploy fails with an authentication error, check that the runner picked up the new key. "
         "Ask in the SRE channel if the rotation does not finish within the hour.")
QUESTIONS = ["how do I rotate the deploy keys?", "what happens to running deploys when keys rotate?",
             "where is the deploy key kept?", "how long is an old deploy key valid?",
             "what do I do when a deploy fails after a key rotation?"]
DOCUMENTS = {
    "deploy-keys.md": "# Deploy keys\n\nDeploy keys live in the vault. To rotate them, open the vault console "
                      "and choose Rotate. The old key stays valid for one hour so that running deploys can "
                      "finish. Restart the deploy runner afterwards so it reads the new key.\n",
    "runner.md": "# The deploy runner\n\nThe runner reads its key from the vault when it starts. A deploy that "
                 "fails with an authentication error after a rotation usually means the runner was not "
                 "restarted.\n",
    "oncall.md": "# On call\n\nThe SRE channel is where to ask when a rotation does not finish within the hour. "
                 "The on-call engineer can extend the old key's validity.\n",
    "backups.md": "# Backups\n\nDatabase backups run nightly and are kept for thirty days. Restores are "
                  "requested through the SRE channel.\n",
}
SHOWS = ("assistant.threads.setStatus", "chat.postMessage")


def _ingest(work: Path) -> int:
    """The documents into an embedded index at work/index (closed again: a worker opens it)."""
    from chatops.settings import Settings
    from chatops_app.container import Container
    from connectors.sources.filesystem.connector import FilesystemSource
    from usecases.ingest import ingest

    corpus = work / "docs"
    corpus.mkdir()
    for name, text in DOCUMENTS.items():
        (corpus / name).write_text(text)
    (corpus / ".acl.yml").write_text('- match: "**"\n  groups: [sre]\n')
    settings = Settings.load(CHATOPS_DATA_DIR=str(work / "ingest-data"), QDRANT_PATH=str(work / "index"),
                             CHATOPS_DIRECTORY_FILE=str(work / "directory.yml"),
                             CHATOPS_KEY_PREFIX=f"chatops-bench-ingest-{uuid.uuid4().hex[:8]}")
    container = Container(settings)
    try:
        ingest(FilesystemSource(corpus, groups=settings.group_names), container.index, container.embedder)
        return container.index.count()
    finally:
        container.close()


class System:
    """One whole system (web + worker processes, its own Slack and model stand-ins)."""

    def __init__(self, name: str, streaming: bool, work: Path, index: Path, first_token_delay: float,
                 token_delay: float) -> None:
        self.name, self.streaming = name, streaming
        self.run = uuid.uuid4().hex[:8]
        self.work = work / name
        self.work.mkdir()
        shutil.copytree(index, self.work / "index")
        self.slack = FakeSlack(users={ASKER[0]: {"id": ASKER[0], "profile": {"email": ASKER[1]}}},
                               channels={DM: [ASKER[0], "UBOT"]}, bot_user_id="UBOT").start()
        self.llm = FakeOpenAI(reply=REPLY).start()
        self.llm.first_token_delay, self.llm.token_delay, self.llm.pace_whole = first_token_delay, token_delay, True
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATOPS_", "SLACK_", "OPENAI_", "OTEL_",
                                                                           "QDRANT_"))}
        env.update({"SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": self.slack.url,
                    "OPENAI_BASE_URL": self.llm.base_url, "OPENAI_API_KEY": "bench",
                    "REDIS_URL": "redis://127.0.0.1:6379/0", "QDRANT_PATH": str(self.work / "index"),
                    "CHATOPS_QUEUE": f"chatops-bench-{self.run}", "CHATOPS_KEY_PREFIX": f"chatops-bench-{self.run}",
                    "CHATOPS_DATA_DIR": str(self.work / "data"),
                    "CHATOPS_DIRECTORY_FILE": str(work / "directory.yml"), "CHATOPS_LOG_LEVEL": "WARNING",
                    "CHATOPS_CACHE_TTL": "0", "CHATOPS_MIN_SIMILARITY": "0",
                    "CHATOPS_STREAMING": "true" if streaming else "false"})
        self.env = env
        self.log = (self.work / "processes.log").open("w")
        chatops = str(Path(sys.executable).parent / "chatops")
        self.procs = [
            subprocess.Popen([chatops, "serve", "--port", str(self.port), "--workers", "1"], cwd=ROOT, env=env,
                             stdout=self.log, stderr=subprocess.STDOUT),
            subprocess.Popen([chatops, "worker", "--pool", "threads", "--concurrency", "2"], cwd=ROOT, env=env,
                             stdout=self.log, stderr=subprocess.STDOUT),
        ]
        self.asked = 0

    def ask(self, text: str, settle: float, timeout: float = 90.0) -> dict[str, Any]:
        """One DM question, POSTed signed; its measures once the answer is final."""
        self.asked += 1
        ts = f"{int(time.time())}.{self.asked:06d}"
        event = {"type": "message", "channel": DM, "channel_type": "im", "user": ASKER[0], "text": text, "ts": ts,
                 "team": "T123", "event_ts": ts}
        body = event_body(event, event_id=f"Ev{self.run}{self.asked}")
        with self.slack.lock:
            first_call = len(self.slack.calls)
        with self.llm.lock:
            first_token = len(self.llm.first_token_at)
            first_request = len(self.llm.requests)
        sent = time.time()
        status = requests.post(f"{self.url}/slack/events", data=body, timeout=10,
                               headers={"Content-Type": "application/json", **sign(body, SECRET)}).status_code
        assert status == 200, status
        deadline = time.time() + timeout
        final = None
        while final is None:
            if time.time() > deadline:
                raise AssertionError(f"{self.name}: no final answer within {timeout}s; calls: "
                                     f"{[c['method'] for c in self.slack.calls[first_call:]]}")
            time.sleep(0.01)
            with self.slack.lock:
                calls = list(self.slack.calls[first_call:])
            final = next((c for c in calls if self._is_final(c)), None)
        time.sleep(settle)                       # trailing calls (a status cleared, a reaction) count too
        with self.slack.lock:
            calls = list(self.slack.calls[first_call:])
        with self.llm.lock:
            tokens = self.llm.first_token_at[first_token:]
            llm_requests = self.llm.requests[first_request:]
        shown = next((c for c in calls if c["method"] in SHOWS), None)
        text_call = next((c for c in calls if c["method"] in ("chat.startStream", "chat.appendStream")
                          and (c["params"].get("markdown_text") or "").strip()), None)
        mark_call = next((c for c in calls if c["method"] in ("chat.startStream", "chat.appendStream")
                          and MARK in json.dumps(c["params"])), None)
        out: dict[str, Any] = {
            "first_sign_ms": (shown["at"] - sent) * 1000 if shown else None,
            "first_sign_method": shown["method"] if shown else None,
            "total_ms": (final["at"] - sent) * 1000,
            "final_method": final["method"],
            "calls": Counter(c["method"] for c in calls),
            "llm_requests": len(llm_requests),
            "llm_streamed": sum(1 for r in llm_requests if r.get("stream")),
            "errors": [c["method"] + ":" + str(c.get("response", {}).get("error")) for c in calls
                       if isinstance(c.get("response"), dict) and not c["response"].get("ok", True)],
        }
        if text_call is not None:
            before = [t for t in tokens if t <= text_call["at"]]
            out["first_text_ms"] = (text_call["at"] - sent) * 1000
            out["first_text_after_token_ms"] = (text_call["at"] - before[-1]) * 1000 if before else None
            if mark_call is not None and before:
                out["first_sentence_text_after_token_ms"] = (mark_call["at"] - before[0]) * 1000
        else:
            answer = next((c for c in calls if c["method"] in ("chat.update", "chat.postMessage")
                           and MARK in json.dumps(c["params"])), None)
            out["first_text_ms"] = (answer["at"] - sent) * 1000 if answer else None
        return out

    def _is_final(self, call: dict) -> bool:
        if self.streaming:
            if call["method"] == "chat.stopStream":
                return True
        return call["method"] in ("chat.update", "chat.postMessage") and LAST in json.dumps(call["params"])

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.log.close()
        self.slack.stop()
        self.llm.stop()
        r = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        r.delete(self.env["CHATOPS_QUEUE"], f"{self.env['CHATOPS_QUEUE']}.ingest")
        for key in r.scan_iter(f"chatops-bench-{self.run}:*"):
            r.delete(key)

    def tail(self) -> str:
        self.log.flush()
        return (self.work / "processes.log").read_text()[-2000:]


def _first_sentence_pieces() -> int:
    """Pieces the stub sends after the first one before the first sentence is whole."""
    first = REPLY[:REPLY.index(". ") + 1]
    return len(re.findall(r"\s*\S+\s*|\s+", first)) - 1


def summarize(samples: list[dict]) -> dict[str, Any]:
    def stat(key: str) -> dict[str, float] | None:
        values = [s[key] for s in samples if s.get(key) is not None]
        if not values:
            return None
        return {"p50": round(pct(values, 0.5), 1), "p95": round(pct(values, 0.95), 1), "n": len(values)}

    methods = Counter[str]()
    for s in samples:
        methods.update(s["calls"])
    totals = [sum(s["calls"].values()) for s in samples]
    return {
        "answers": len(samples),
        "first_sign_ms": stat("first_sign_ms"),
        "first_sign_by": dict(Counter(s["first_sign_method"] for s in samples)),
        "first_text_ms": stat("first_text_ms"),
        "first_text_after_stub_first_token_ms": stat("first_text_after_token_ms"),
        "first_sentence_text_after_stub_first_token_ms": stat("first_sentence_text_after_token_ms"),
        "total_ms": stat("total_ms"),
        "slack_calls_per_answer": {"p50": pct(totals, 0.5), "p95": pct(totals, 0.95),
                                   "mean_by_method": {m: round(n / len(samples), 2)
                                                      for m, n in sorted(methods.items())}},
        "llm_requests_per_answer": round(sum(s["llm_requests"] for s in samples) / len(samples), 2),
        "llm_streamed_per_answer": round(sum(s["llm_streamed"] for s in samples) / len(samples), 2),
        "slack_errors": dict(Counter(e for s in samples for e in s["errors"])),
    }


def run(questions: int, warmup: int, first_token_delay: float, token_delay: float, settle: float) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="chatops-bench-streaming-"))
    (work / "directory.yml").write_text(f"users:\n  - {{email: {ASKER[1]}, slack_id: {ASKER[0]}, groups: [sre]}}\n")
    systems: list[System] = []
    try:
        progress("indexing the documents")
        chunks = _ingest(work)
        progress("starting two systems (web + worker each): CHATOPS_STREAMING=true and =false")
        systems = [System("streamed", True, work, work / "index", first_token_delay, token_delay),
                   System("posted", False, work, work / "index", first_token_delay, token_delay)]
        for system in systems:
            wait_live(system.url, system.procs[0])
        samples: dict[str, list[dict]] = {s.name: [] for s in systems}
        try:
            for i in range(warmup):
                for system in systems:
                    system.ask(QUESTIONS[i % len(QUESTIONS)], settle)
            progress(f"{questions} questions, alternately")
            for i in range(questions):
                order = systems if (i // 2) % 2 == 0 else systems[::-1]
                system = order[i % 2]
                samples[system.name].append(system.ask(QUESTIONS[i % len(QUESTIONS)], settle))
                if (i + 1) % 10 == 0:
                    progress(f"{i + 1}/{questions}")
        except Exception:
            for system in systems:
                progress(f"{system.name} processes' output: {system.tail()}")
            raise
        streamed, posted = summarize(samples["streamed"]), summarize(samples["posted"])

        def ratio(key: str, q: str) -> float | None:
            a, b = streamed.get(key), posted.get(key)
            return round(a[q] / b[q], 2) if a and b and b[q] else None

        return {
            "setup": {"questions": questions, "warmup_per_system": warmup, "chunks": chunks,
                      "stub_first_token_delay_s": first_token_delay, "stub_token_delay_s": token_delay,
                      "answer_pieces": len(re.findall(r"\s*\S+\s*|\s+", REPLY)),
                      "first_sentence_floor_ms": round(_first_sentence_pieces() * token_delay * 1000, 1),
                      "settle_s": settle, "systems": "two at once, questions alternated (a restart per switch otherwise)"},
            "streamed": streamed, "posted": posted,
            "ratio_streamed_over_posted": {f"{k}_{q}": ratio(k, q) for k in ("first_sign_ms", "first_text_ms",
                                                                               "total_ms") for q in ("p50", "p95")}
            | {"slack_calls_p50": round(streamed["slack_calls_per_answer"]["p50"]
                                        / posted["slack_calls_per_answer"]["p50"], 2)},
        }
    finally:
        for system in systems:
            system.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=40, help="in all, half to each path")
    parser.add_argument("--warmup", type=int, default=3, help="questions per system first, not counted")
    parser.add_argument("--first-token-delay", type=float, default=0.3)
    parser.add_argument("--token-delay", type=float, default=0.02)
    parser.add_argument("--settle", type=float, default=0.5, help="quiet seconds after an answer before the next")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = run(args.questions, args.warmup, args.first_token_delay, args.token_delay, args.settle)
    print(json.dumps(out, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
