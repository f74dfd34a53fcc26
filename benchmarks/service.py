"""Running it as a service: what metrics and feedback add to Slack's acknowledgement, and how fast
a cached answer is posted.

    .venv/bin/python benchmarks/service.py ack --old f277cc4 [--events 600] [--rounds 3] [--json]
    .venv/bin/python benchmarks/service.py cached --corpus ../shared/data/handbook-37signals [--json]

``ack`` serves the web process of two trees side by side — ``--old`` (a git revision, checked
out into a temporary worktree) and this one — each as ``chatops serve --workers 2`` on real
Redis, and fires the same bursts at both, alternating old and new ``--rounds`` times (the
machine is shared: a side-by-side comparison in one sitting, not numbers from different days).
Two kinds of request: signed ``app_mention`` events, and signed button clicks (this tree: 👍 on
an answer; the old one: "Send me the full answer", the click it had that queues a task the same
way). Reported: client-side p50 / p99 per tree and the differences.

``cached`` runs the whole system (web app, a real ``chatops worker`` process, Redis, the loopback
Slack and a stubbed model) on a real corpus, asks each question once (the model answers and the
answer is cached), then asks them again from channels with the same members: the time from
posting the event to Slack receiving the answer (``chat.update``), for hits, and the model calls
they made (none expected).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from pipeline import _burst, free_port, pct, progress, wait_live  # noqa: E402
from standins.fake_slack import FakeSlack, block_actions_body, event_body, sign  # noqa: E402

SECRET = "bench-secret"


# --------------------------------------------------------------------------- ack


def _worktree(rev: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=f"chatops-{rev[:8]}-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev], check=True,
                   capture_output=True)
    return path


def _serve(tree: Path, port: int, env: dict) -> subprocess.Popen:
    code = ("import sys; from chatops_app.cli import main; "
            f"sys.argv = ['chatops', 'serve', '--port', '{port}', '--workers', '2']; main()")
    return subprocess.Popen([sys.executable, "-c", code], cwd=tree, env={**env, "PYTHONPATH": str(tree)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _one_round(tree: Path, action_id: str, events: int, clients: int) -> dict:
    run = uuid.uuid4().hex[:8]
    queue = f"chatops-bench-{run}"
    slack = FakeSlack(bot_user_id="UBOT").start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATOPS_", "SLACK_", "OTEL_"))}
    env.update({"SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack.url,
                "REDIS_URL": "redis://127.0.0.1:6379/0", "CHATOPS_QUEUE": queue,
                "CHATOPS_KEY_PREFIX": f"chatops-bench-{run}", "CHATOPS_LOG_LEVEL": "WARNING",
                "CHATOPS_DATA_DIR": tempfile.mkdtemp(prefix="chatops-bench-data-")})
    server = _serve(tree, port, env)
    r = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_live(url, server)

        def mention(i: int) -> bytes:
            event = {"type": "app_mention", "channel": "CBENCH", "channel_type": "channel", "user": f"U{i % 50}",
                     "text": f"<@UBOT> question number {i}", "ts": f"{int(time.time())}.{i:06d}"}
            return event_body(event, event_id=f"Ev{run}{i}")

        def click(i: int) -> bytes:
            return block_actions_body(f"U{i % 50}", "CBENCH", {"action_id": action_id, "value": f"{i:016x}",
                                                                "action_ts": f"{time.time():.6f}{i}"},
                                      {"ts": "1700000000.000100", "blocks": []})

        for i in range(40):                                   # warm both processes
            warm = mention(10_000_000 + i)
            requests.post(f"{url}/slack/events", data=warm,
                          headers={"Content-Type": "application/json", **sign(warm, SECRET)})
        mentions, _, _ = asyncio.run(_burst(port, [mention(i) for i in range(events)], clients, secret=SECRET))
        clicks, _, _ = asyncio.run(_burst(port, [click(i) for i in range(events)], clients, secret=SECRET,
                                          content_type="application/x-www-form-urlencoded"))
        return {"mention": mentions, "click": clicks}
    finally:
        server.terminate()
        server.wait(timeout=15)
        slack.stop()
        r.delete(queue)
        for key in r.scan_iter(f"chatops-bench-{run}:*"):
            r.delete(key)


def bench_ack(old: str, events: int, clients: int, rounds: int, new_tree: Path = ROOT) -> dict:
    old_tree = _worktree(old)
    samples = {"old": {"mention": [], "click": []}, "new": {"mention": [], "click": []}}
    try:
        for n in range(rounds):
            for name, tree, action in (("old", old_tree, "answer_in_dm"), ("new", new_tree, "feedback_helpful")):
                progress(f"round {n + 1}/{rounds}: {name} tree, {events} mentions and {events} clicks")
                got = _one_round(tree, action, events, clients)
                for kind in ("mention", "click"):
                    samples[name][kind] += got[kind]
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old_tree)], capture_output=True)
    out: dict = {"old_rev": old, "events_per_round": events, "rounds": rounds, "clients": clients}
    for kind in ("mention", "click"):
        o, n = samples["old"][kind], samples["new"][kind]
        out[kind] = {"old_p50_ms": round(pct(o, 0.5), 2), "new_p50_ms": round(pct(n, 0.5), 2),
                     "old_p99_ms": round(pct(o, 0.99), 2), "new_p99_ms": round(pct(n, 0.99), 2),
                     "p99_difference_ms": round(pct(n, 0.99) - pct(o, 0.99), 2)}
    return out


# --------------------------------------------------------------------------- cached


def bench_cached(corpus: Path, rounds: int) -> dict:
    from tests.integration.harness import System

    questions = ["How many vacation days do we get?", "What is the policy on working hours?",
                 "How do benefits work?", "What is a sabbatical?", "How do we handle expenses?",
                 "How does the company pay people?", "What are the rules for remote work?",
                 "How are performance reviews done?", "What equipment does the company provide?",
                 "How do I take sick leave?"]
    users = {u: {"id": u, "profile": {"email": f"{u.lower()}@bench.example"}} for u in ("UASK", "UPEER")}
    # one channel per question and round, all with the same members (so the same audience): Slack's
    # one-message-per-second-per-channel pacing is real, but it is not what this measures
    channels = [f"CB{i:04d}" for i in range((rounds + 1) * len(questions))]
    work = Path(tempfile.mkdtemp(prefix="chatops-bench-cached-"))
    docs = {p.relative_to(corpus).as_posix(): p.read_text(errors="replace") for p in corpus.rglob("*.md")}
    docs[".acl.yml"] = '- match: "**"\n  public: true\n'
    progress(f"ingesting {len(docs) - 1} documents and starting web + worker")
    system = System.start(work, corpus=docs, directory="users:\n  - {email: uask@bench.example, groups: [all]}\n"
                          "  - {email: upeer@bench.example, groups: [all]}\n",
                          users={**users, "UBOT": {"id": "UBOT", "is_bot": True}},
                          channels={c: ["UASK", "UPEER", "UBOT"] for c in channels},
                          reply="From the handbook [1].",
                          extra_env={"CHATOPS_CACHE_TTL": "3600", "CHATOPS_SLACK_CHANNEL_PACE": "1.0",
                                     "CHATOPS_MIN_SIMILARITY": "0.1"})
    try:
        def ask(channel: str, text: str) -> float:
            event = system.mention(channel, "UASK", text)
            start = time.time()
            assert system.post_event(event).status_code == 200
            update = system.slack.wait_for("chat.update", lambda p: p.get("channel") == channel
                                           and system.thread_of(p) == event["ts"], timeout=60)
            posted = next(c["at"] for c in reversed(system.slack.calls)
                          if c["method"] == "chat.update" and c["params"] is update)
            return (posted - start) * 1000

        slots = iter(channels)
        misses = [ask(next(slots), q) for q in questions]            # the model answers; cached
        calls = len(system.llm.requests)
        hits = []
        for n in range(rounds):
            progress(f"round {n + 1}/{rounds}: {len(questions)} cached questions")
            hits += [ask(next(slots), q) for q in questions]
        return {"documents": len(docs) - 1, "questions": len(questions), "hit_samples": len(hits),
                "model_calls_on_hits": len(system.llm.requests) - calls,
                "miss_p50_ms": round(pct(misses, 0.5), 1), "hit_p50_ms": round(pct(hits, 0.5), 1),
                "hit_p95_ms": round(pct(hits, 0.95), 1), "hit_max_ms": round(max(hits), 1)}
    finally:
        system.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    ack = sub.add_parser("ack")
    ack.add_argument("--old", required=True, help="the git revision to compare with (e.g. the last before)")
    ack.add_argument("--events", type=int, default=600)
    ack.add_argument("--clients", type=int, default=8)
    ack.add_argument("--rounds", type=int, default=3)
    ack.add_argument("--new-tree", type=Path, default=ROOT, help="the tree to compare (default: this one)")
    cached = sub.add_parser("cached")
    cached.add_argument("--corpus", type=Path, required=True, help="a folder of Markdown files")
    cached.add_argument("--rounds", type=int, default=4)
    for p in (ack, cached):
        p.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.what == "ack":
        result = bench_ack(args.old, args.events, args.clients, args.rounds, args.new_tree)
    else:
        result = bench_cached(args.corpus, args.rounds)
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
