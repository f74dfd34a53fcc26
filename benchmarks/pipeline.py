"""Slack acknowledgement latency and question-to-posted-answer time, in one run.

    .venv/bin/python benchmarks/pipeline.py --beir ../shared/data/beir [--events 600] [--json]

Part 1 starts `chatops serve` as its own process (real Redis, real Celery
enqueue, real Bolt signature check) and fires a burst of signed app_mention
events from several client threads; it reports the client-side latency of
each acknowledgement and checks that every event was enqueued exactly once.

Part 2 builds a 10,000-chunk embedded index from the BEIR dbpedia and msmarco
corpora (ACLs spread over ten groups, a fifth public), then runs the worker's
responder in-process for real queries: identity, audience, embedding, hybrid
filtered search, a stubbed LLM on loopback, and the Slack posts to a stand-in
Web API on loopback. It reports the time from task start to the answer being
posted, and its stages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
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


def bench_answer(beir: Path, questions: int, index_dir: Path | None) -> dict:
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
        responder = container.question_handler
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
        return {"chunks": chunks, "index": container.index.kind, "ingest_s": ingest_s, **results}
    finally:
        container.close()
        slack.stop()
        llm.stop()
        r = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        for key in r.scan_iter(f"chatops-bench-{run}:*"):
            r.delete(key)


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
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    progress(f"acknowledgement burst: {args.events} signed events from {args.clients} clients")
    out = {"ack": bench_ack(args.events, args.clients, args.web_workers)}
    if not args.skip_answer:
        out["answer"] = bench_answer(args.beir, args.questions, args.index_dir)
    print(json.dumps(out, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
