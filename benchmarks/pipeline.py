"""Slack acknowledgement latency, question-to-posted-answer time and the channel pacing, in one run.

    .venv/bin/python benchmarks/pipeline.py --beir ../shared/data/beir [--events 600] [--pace 0] [--json]
    .venv/bin/python benchmarks/pipeline.py --skip-ack --skip-answer --burst-old REV [--burst-rounds 3]

Part 1 starts `chatops serve` as its own process (real Redis, real Celery
enqueue, real Bolt signature check) and fires a burst of signed app_mention
events from several client threads; it reports the client-side latency of
each acknowledgement and checks that every event was enqueued exactly once.

Part 2 builds a 10,000-chunk embedded index from the BEIR dbpedia and msmarco
corpora (ACLs spread over ten groups, a fifth public), then runs the worker's
responder in-process for real queries: identity, audience, embedding, hybrid
filtered search, a stubbed LLM on loopback, and the Slack posts to a stand-in
Web API on loopback. It reports the time from task start to the answer being
posted, and its stages. The questions are asked one after another, 60 of them in one
channel: paced as in production (``--pace 1``), they would measure Slack's limit of about one
new message per second per channel, not the pipeline. So part 2 runs with the pacing it states
in its output, ``--pace`` seconds per message (default 0: not paced); part 3 measures the pacing.

Part 3 (``--burst-old REV``) is three people asking together in one channel, as the whole
system: ``chatops serve`` and ``chatops worker --pool threads --concurrency 3`` as their own
processes on real Redis and Celery, the loopback Slack and a stubbed model, with the pacing set
to one message per second and a burst of 3 (``CHATOPS_SLACK_CHANNEL_PACE=1.0``,
``CHATOPS_SLACK_CHANNEL_BURST=3``). Three signed mentions are sent at once into a new channel,
and the time from each to its working message ("Looking into it…") reaching Slack is measured,
``--bursts`` times per round. The old tree (REV, checked out into a temporary worktree) and this
one are run alternately, ``--burst-rounds`` times, in one sitting; REV's code paces as it did
then (before the burst: a strict slot per second, which ignores the burst setting).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import redis
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from standins.fake_openai import FakeOpenAI  # noqa: E402
from standins.fake_slack import FakeSlack, event_body, sign  # noqa: E402

SECRET = "bench-secret"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def progress(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- part 1


async def _burst(port: int, bodies: list[bytes], clients: int, *, content_type: str = "application/json",
                 secret: str = SECRET) -> tuple[list[float], list[int], float]:
    """Send signed requests (events; interactivity with its form ``content_type``) over ``clients``
    keep-alive connections, each one request at a time.

    A raw asyncio HTTP/1.1 client, so the load generator costs little CPU next to the server
    on a 2-core machine (a thread-per-client Python client measures its own GIL waits).
    """
    requests_bytes = []
    for body in bodies:
        headers = {"Host": f"127.0.0.1:{port}", "Content-Type": content_type,
                   "Content-Length": str(len(body)), **sign(body, secret)}
        head = "POST /slack/events HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        requests_bytes.append(head.encode() + b"\r\n" + body)
    latencies: list[float] = []
    statuses: list[int] = []

    async def client(batch: list[bytes]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for raw in batch:
            start = time.perf_counter()
            writer.write(raw)
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            latencies.append((time.perf_counter() - start) * 1000)
            statuses.append(int(status_line.split()[1]))
        writer.close()

    wall = time.perf_counter()
    await asyncio.gather(*(client(requests_bytes[i::clients]) for i in range(clients)))
    return latencies, statuses, time.perf_counter() - wall


def wait_live(url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    """Until ``chatops serve`` answers ``GET /livez`` (its stderr in the error if it never does)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if requests.get(f"{url}/livez", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("chatops serve did not become healthy: " + server.stderr.read().decode()[-800:])


def bench_ack(events: int, clients: int, workers: int = 2) -> dict:
    run = uuid.uuid4().hex[:8]
    queue = f"chatops-bench-{run}"
    slack = FakeSlack(bot_user_id="UBOT").start()
    port = free_port()
    env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SECRET,
           "SLACK_API_URL": slack.url, "REDIS_URL": "redis://127.0.0.1:6379/0", "CHATOPS_QUEUE": queue,
           "CHATOPS_KEY_PREFIX": f"chatops-bench-{run}", "CHATOPS_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen([str(Path(sys.executable).parent / "chatops"), "serve", "--port", str(port),
                               "--workers", str(workers)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    r = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        wait_live(url, server)

        def make(i: int) -> bytes:
            event = {"type": "app_mention", "channel": "CBENCH", "channel_type": "channel", "user": "U1",
                     "text": f"<@UBOT> question number {i}", "ts": f"{int(time.time())}.{i:06d}"}
            return event_body(event, event_id=f"Ev{run}{i}")

        warm = requests.Session()
        for i in range(30):
            body = make(10_000_000 + i)
            warm.post(f"{url}/slack/events", data=body, headers={"Content-Type": "application/json", **sign(body, SECRET)})
        r.delete(queue)

        bodies = [make(i) for i in range(events)]
        latencies, statuses, wall = asyncio.run(_burst(port, bodies, clients))
        enqueued = r.llen(queue)
        return {
            "events": events, "clients": clients, "web_workers": workers, "ok": statuses.count(200),
            "enqueued": enqueued, "p50_ms": round(pct(latencies, 0.5), 2),
            "p99_ms": round(pct(latencies, 0.99), 2), "max_ms": round(max(latencies), 2),
            "throughput_per_s": round(events / wall, 1),
        }
    finally:
        server.terminate()
        server.wait(timeout=10)
        slack.stop()
        r.delete(queue)
        for key in r.scan_iter(f"chatops-bench-{run}:*"):
            r.delete(key)


# --------------------------------------------------------------------------- part 2

GROUPS = [f"g{i}" for i in range(10)]


class _TimedSlack:
    """The gateway, adding up the time its message calls take (the "Slack post" stage)."""

    def __init__(self, gateway):
        self._gateway = gateway
        self.spent = 0.0

    def __getattr__(self, name):
        method = getattr(self._gateway, name)
        if name not in ("post", "update", "post_ephemeral"):
            return method

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.spent += time.perf_counter() - start
        return timed


def bench_answer(beir: Path, questions: int, index_dir: Path | None, pace: float = 0.0) -> dict:
    from chatops.access import Acl
    from chatops_app.container import Container
    from chatops.settings import Settings
    from connectors.sources.beir import BeirSource
    from usecases.ingest import ingest

    run = uuid.uuid4().hex[:8]
    work = Path(tempfile.mkdtemp(prefix="chatops-bench-"))
    index_dir = index_dir or (work / "index")
    directory = work / "directory.yml"
    directory.write_text("users:\n  - {email: asker@bench.example, slack_id: UASK, groups: [g1, g2, g3]}\n"
                         "  - {email: peer@bench.example, slack_id: UPEER, groups: [g2, g3]}\n")
    slack = FakeSlack(users={"UASK": {"id": "UASK", "profile": {"email": "asker@bench.example"}},
                             "UPEER": {"id": "UPEER", "profile": {"email": "peer@bench.example"}}},
                      channels={"CBENCH": ["UASK", "UPEER", "UBOT"]}, bot_user_id="UBOT").start()
    llm = FakeOpenAI(reply="Here is the answer from the sources [1].").start()
    settings = Settings.load(
        QDRANT_PATH=str(index_dir), CHATOPS_DIRECTORY_FILE=str(directory), SLACK_BOT_TOKEN="xoxb-bench",
        SLACK_API_URL=slack.url, OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="bench",
        CHATOPS_KEY_PREFIX=f"chatops-bench-{run}", CHATOPS_MIN_SIMILARITY=0.0,
        CHATOPS_SLACK_CHANNEL_PACE=pace, CHATOPS_SLACK_CHANNEL_BURST=3,   # stated in the output
        CHATOPS_CACHE_TTL=0,   # the stages are read by asking again: a cache hit would show them as 0 ms
    )
    container = Container(settings)
    rng = random.Random(7)

    def acl_for(doc_id: str) -> Acl:
        h = random.Random(doc_id).random()
        if h < 0.2:
            return Acl.of(public=True)
        return Acl.of(groups=[GROUPS[int(h * 1000) % len(GROUPS)]])

    try:
        ingest_s = None
        if container.index.count() < 10_000:
            progress("building a 10,000-chunk index from dbpedia + msmarco (a few minutes)")
            start = time.perf_counter()
            total = 0
            for name in ("dbpedia", "msmarco"):
                report = ingest(BeirSource(beir / name, acl_for=acl_for), container.index, container.embedder,
                                progress=True)
                total += report.chunks
            ingest_s = time.perf_counter() - start
            progress(f"indexed {total} chunks in {ingest_s:.0f}s")
        chunks = container.index.count()
        texts = [json.loads(line)["text"] for name in ("dbpedia", "msmarco")
                 for line in (beir / name / "queries.jsonl").open()]
        rng.shuffle(texts)
        texts = (texts * ((questions // len(texts)) + 1))[:questions]
        timed = _TimedSlack(container.gateway)
        container._built["gateway"] = timed        # the handler's Slack calls, timed
        responder = container.handler("question")
        pipeline = container.pipeline()
        from usecases.ask import Question

        # warm up: model sessions, caches, connections
        for t in texts[:5]:
            responder.handle({"channel": "DUASK", "channel_type": "im", "user": "UASK", "text": t,
                                "ts": f"{time.time():.6f}", "thread_ts": None})
        results = {}
        for label, channel, ctype in (("dm", "DUASK", "im"), ("channel", "CBENCH", "channel")):
            totals, stages = [], {"identity_ms": [], "audience_ms": [], "retrieval_ms": [], "generation_ms": []}
            posts: list[float] = []
            for i, text in enumerate(texts):
                timed.spent = 0.0
                ts = f"{int(time.time())}.{i:06d}"
                payload = {"channel": channel, "channel_type": ctype, "user": "UASK", "text": text,
                           "ts": ts, "thread_ts": ts if ctype != "im" else None}
                start = time.perf_counter()
                responder.handle(payload)
                totals.append((time.perf_counter() - start) * 1000)
                posts.append(timed.spent * 1000)
                _, timing = pipeline.ask(Question(text=text, asker_slack_id="UASK", asker_email="asker@bench.example",
                                                  channel=channel, channel_type=ctype))
                for k in stages:
                    stages[k].append(getattr(timing, k))
            results[label] = {"questions": len(texts), "p50_ms": round(pct(totals, 0.5), 1),
                              "p99_ms": round(pct(totals, 0.99), 1),
                              "stages_p50_ms": {**{k: round(statistics.median(v), 1) for k, v in stages.items()},
                                                "slack_post_ms": round(statistics.median(posts), 1)}}
        return {"chunks": chunks, "index": container.index.kind, "ingest_s": ingest_s,
                "slack_channel_pace_s": pace, "slack_channel_burst": 3 if pace else None, **results}
    finally:
        container.close()
        slack.stop()
        llm.stop()
        r = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        for key in r.scan_iter(f"chatops-bench-{run}:*"):
            r.delete(key)


# --------------------------------------------------------------------------- part 3

ASKERS = ("UASK1", "UASK2", "UASK3")
BURST_PACING = {"CHATOPS_SLACK_CHANNEL_PACE": "1.0", "CHATOPS_SLACK_CHANNEL_BURST": "3"}


def _worktree(rev: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=f"chatops-{rev[:8]}-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev], check=True,
                   capture_output=True)
    return path


def _chatops(tree: Path, args: list[str], env: dict, log) -> subprocess.Popen:
    """``chatops ARGS`` with the code of ``tree``."""
    code = f"import sys; from chatops_app.cli import main; sys.argv = {['chatops', *args]!r}; main()"
    return subprocess.Popen([sys.executable, "-c", code], cwd=tree, env={**env, "PYTHONPATH": str(tree)},
                            stdout=log, stderr=subprocess.STDOUT)


def _burst_round(tree: Path, bursts: int) -> list[list[float]]:
    """Start web + worker from ``tree``, then ``bursts`` times: three mentions at once into a new
    channel; per burst, the three question-to-working-message times (ms), soonest first."""
    run = uuid.uuid4().hex[:8]
    work = Path(tempfile.mkdtemp(prefix="chatops-bench-burst-"))
    (work / "directory.yml").write_text("users:\n" + "".join(
        f"  - {{email: {u.lower()}@bench.example, slack_id: {u}, groups: [g1]}}\n" for u in ASKERS))
    channels = [f"CBURST{n:03d}" for n in range(bursts + 1)]
    slack = FakeSlack(users={u: {"id": u, "profile": {"email": f"{u.lower()}@bench.example"}} for u in ASKERS},
                      channels={c: [*ASKERS, "UBOT"] for c in channels}, bot_user_id="UBOT").start()
    llm = FakeOpenAI(reply="Here is the answer from the sources [1].").start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATOPS_", "SLACK_", "OPENAI_", "OTEL_"))}
    env.update({"SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack.url,
                "OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "bench", "REDIS_URL": "redis://127.0.0.1:6379/0",
                "CHATOPS_QUEUE": f"chatops-bench-{run}", "CHATOPS_KEY_PREFIX": f"chatops-bench-{run}",
                "CHATOPS_DATA_DIR": str(work / "data"), "CHATOPS_DIRECTORY_FILE": str(work / "directory.yml"),
                "CHATOPS_LOG_LEVEL": "WARNING", "CHATOPS_CACHE_TTL": "0", **BURST_PACING})
    log = (work / "processes.log").open("w")
    web = _chatops(tree, ["serve", "--port", str(port), "--workers", "1"], env, log)
    worker = _chatops(tree, ["worker", "--pool", "threads", "--concurrency", "3"], env, log)
    url = f"http://127.0.0.1:{port}"
    counter = iter(range(1_000_000))

    def ask(channel: str, user: str) -> tuple[str, float]:
        event = {"type": "app_mention", "channel": channel, "channel_type": "channel", "user": user,
                 "text": "<@UBOT> how do I rotate the deploy keys?", "ts": f"{int(time.time())}.{next(counter):06d}"}
        body = event_body(event, event_id=f"Ev{run}{event['ts']}")
        sent = time.time()
        status = requests.post(f"{url}/slack/events", data=body, timeout=10,
                               headers={"Content-Type": "application/json", **sign(body, SECRET)}).status_code
        assert status == 200, status
        return event["ts"], sent

    def working_message(ts: str) -> dict:
        """Slack's record of the working message in the thread of the question ``ts``."""
        slack.wait_for("chat.postMessage", lambda p: p.get("thread_ts") == ts, timeout=60)
        return next(c for c in list(slack.calls)
                    if c["method"] == "chat.postMessage" and c["params"].get("thread_ts") == ts)

    def answered(ts: str) -> None:
        """Until the working message of the question ``ts`` has been replaced by the answer."""
        call = working_message(ts)
        slack.wait_for("chat.update", lambda p: p.get("ts") == call.get("response_ts"), timeout=60)

    try:
        wait_live(url, web)
        warm, _ = ask(channels[-1], ASKERS[0])             # the worker is up and has answered once
        answered(warm)
        out = []
        for channel in channels[:bursts]:
            gate = threading.Barrier(len(ASKERS))
            asked: list[tuple[str, float]] = []

            def one(user: str, channel: str = channel, gate=gate, asked=asked) -> None:
                gate.wait()
                asked.append(ask(channel, user))

            threads = [threading.Thread(target=one, args=(u,)) for u in ASKERS]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(asked) == len(ASKERS), "a mention was not acknowledged"
            out.append(sorted((working_message(ts)["at"] - sent) * 1000 for ts, sent in asked))
            for ts, _ in asked:                            # all answered: a quiet machine for the next
                answered(ts)
        return out
    except Exception:
        log.flush()
        progress("processes' output: " + (work / "processes.log").read_text()[-2000:])
        raise
    finally:
        for proc in (web, worker):
            proc.terminate()
        for proc in (web, worker):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        slack.stop()
        llm.stop()
        shutil.rmtree(work, ignore_errors=True)
        r = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        r.delete(env["CHATOPS_QUEUE"], f"{env['CHATOPS_QUEUE']}.ingest")
        for key in r.scan_iter(f"chatops-bench-{run}:*"):
            r.delete(key)


def bench_burst(old: str, rounds: int, bursts: int, new_tree: Path = ROOT) -> dict:
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", old], check=True, capture_output=True,
                         text=True).stdout.strip()
    old_tree = _worktree(rev)
    samples: dict[str, list[list[float]]] = {"old": [], "new": []}
    try:
        for n in range(rounds):
            for name, tree in (("old", old_tree), ("new", new_tree)):
                progress(f"round {n + 1}/{rounds}: {name} tree, {bursts} bursts of {len(ASKERS)} questions")
                samples[name] += _burst_round(tree, bursts)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old_tree)],
                       check=False, capture_output=True)

    def summary(bursts_ms: list[list[float]]) -> dict:
        ranks = {f"{k}_ms": [b[i] for b in bursts_ms] for i, k in enumerate(("first", "second", "third"))}
        return {**{k: {"p50": round(pct(v, 0.5), 1), "max": round(max(v), 1)} for k, v in ranks.items()},
                "all_p50_ms": round(pct([t for b in bursts_ms for t in b], 0.5), 1)}

    old_s, new_s = summary(samples["old"]), summary(samples["new"])
    return {"old_rev": rev, "pacing": BURST_PACING, "bursts": len(samples["new"]), "questions_per_burst": len(ASKERS),
            "old": old_s, "new": new_s,
            "ratio_old_over_new": {k: round(old_s[k]["p50"] / new_s[k]["p50"], 1)
                                   for k in ("first_ms", "second_ms", "third_ms")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--beir", type=Path, default=ROOT.parent / "shared" / "data" / "beir",
                        help="folder with the BEIR sets dbpedia/ and msmarco/")
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--clients", type=int, default=8, help="connections sending at once")
    parser.add_argument("--web-workers", type=int, default=2, help="chatops serve --workers")
    parser.add_argument("--questions", type=int, default=60)
    parser.add_argument("--index-dir", type=Path, help="reuse (or keep) the 10k-chunk index here")
    parser.add_argument("--skip-answer", action="store_true")
    parser.add_argument("--skip-ack", action="store_true")
    parser.add_argument("--pace", type=float, default=0.0,
                        help="part 2's CHATOPS_SLACK_CHANNEL_PACE (default 0: not paced; part 3 measures the pacing)")
    parser.add_argument("--burst-old", metavar="REV", help="part 3: compare the pacing with this git revision")
    parser.add_argument("--burst-rounds", type=int, default=3, help="part 3: old and new, alternately, this often")
    parser.add_argument("--bursts", type=int, default=5, help="part 3: bursts of three questions per round")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    out = {}
    if not args.skip_ack:
        progress(f"acknowledgement burst: {args.events} signed events from {args.clients} clients")
        out["ack"] = bench_ack(args.events, args.clients, args.web_workers)
    if not args.skip_answer:
        out["answer"] = bench_answer(args.beir, args.questions, args.index_dir, args.pace)
    if args.burst_old:
        out["burst"] = bench_burst(args.burst_old, args.burst_rounds, args.bursts)
    print(json.dumps(out, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
