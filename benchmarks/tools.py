"""Live tools (issue 21): the question-to-answer time with no, one and two tool rounds, and what a
tool round costs beyond the tool's own time and the model's.

    .venv/bin/python benchmarks/tools.py [--questions 200] [--warmup 10] \\
        [--handbook ../shared/data/handbook-37signals] [--standins process|in-process] [--mcp-reference 50] [--json]

The pipeline runs in-process as the worker runs it: a ``Container`` from ``Settings.load(...)``
(an embedded index built here from a few small documents — the smallest Markdown files of
``--handbook``, or a few inline ones —, the directory identity provider with a YAML file, the
SQLite audit store, the identity cache in Redis on 127.0.0.1:6379, the product's JSON logging at
INFO, written to /dev/null), and ``container.pipeline(with_slack=False).ask(Question(...))`` for a
direct message from a person the directory knows (a DM never consults the channel directory, so
no Slack client is needed). ``CHATOPS_MIN_SIMILARITY=0`` so every question is given the same
number of passages.

The tools are configured in a ``tools:`` file as an operator would: ``pagerduty``, an MCP server
(``standins/fake_mcp.py``: the official SDK over streamable HTTP, with a service bearer token),
and ``health``, a Prometheus tool (``standins/fake_prometheus.py``); both approved with
``container.toolbox.approve(...)``. The model is ``standins/fake_openai.py``, scripted: it
answers at once, or calls ``pagerduty__get_oncall`` (one round), or that and then
``health__error_rate`` (two rounds), deciding by the question's marker ([docs], [live],
[live twice]) and by how many tool results the messages already hold. By default the three
stand-ins run in a child process (``--standins process``), as real servers would: their work
never competes with the pipeline for this process's interpreter lock. ``--standins in-process``
runs them in threads here, as ``benchmarks/pipeline.py`` runs its model.

The three variants are asked interleaved, round-robin (the order rotated each time), so whatever
the machine does meanwhile hits all three alike; the same question stem is used by the three
asks of one turn. Each answer is checked (rounds made, every call ``ok``, a model answer).

Reported per variant: p50, p95 and mean of ``Pipeline.ask`` (question to answer), the ratios to
the no-tool answer, and the parts measured inside:

* model time: every ``llm.complete`` call of the pipeline, timed by a small proxy around the
  ``llm`` object the pipeline holds (the openai SDK's request to the stub and its parsing);
* tool time: every ``kind.call`` (and ``kind.definitions``, the listing the toolbox refreshes
  every ``CHATOPS_TOOL_LISTING_TTL``), timed by a proxy around each tool's kind in the toolbox
  (``box.tools[name].kind``): for MCP, the call in a session the kind keeps open per server and
  credential (``connectors/tools/mcp_sessions.py``; the first call also connects, initializes
  and lists); for
  Prometheus, the HTTP request.

The overhead of a tool round, excluding the tool's own time and the model's::

    rest(answer)   = t(answer) - sum(model time) - sum(tool time)
    overhead(1)    = p50 rest(one round)  - p50 rest(no tool)
    overhead(2)/2  = (p50 rest(two rounds) - p50 rest(no tool)) / 2          per round

i.e. what the pipeline spends on a round apart from waiting for the model and the tool: the loop,
the thread pool, argument validation, the audit row and metrics of each call, the fenced result
and the larger answer facts. The paired form (the median over turns of rest(one) - rest(no tool)
of the same turn) is reported too, and the part of it spent in ``Toolbox.call`` around the kind
(validation, filtering, the audit row, the metric and log line). Target: at most 15 ms.

Then, for scale (``--mcp-reference N``, not product code): N ``get_oncall`` calls through the
official MCP SDK alone against the same stand-in, each in a session of its own (as the ``mcp``
kind made them before it kept sessions open) and all in one session kept open.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.connection
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from standins.fake_mcp import FakeMCP  # noqa: E402
from standins.fake_openai import FakeOpenAI  # noqa: E402
from standins.fake_prometheus import FakePrometheus, vector  # noqa: E402

TARGET_MS = 15.0
MCP_TOKEN = "bench-pagerduty-token"
MCP_TOKEN_ENV = "BENCH_PAGERDUTY_MCP_TOKEN"
ERROR_RATE = ('sum(rate(http_requests_total{service="$service",code=~"5.."}[5m])) / '
              'sum(rate(http_requests_total{service="$service"}[5m]))')
ASKER = ("UASK", "asker@bench.example")

VARIANTS = ("none", "one", "two")
ROUNDS = {"none": 0, "one": 1, "two": 2}
MARKS = {"none": "[docs]", "one": "[live]", "two": "[live twice]"}
# The calls the scripted model makes, one per round, in this order.
PLAN = (("pagerduty__get_oncall", {"service": "billing"}), ("health__error_rate", {"service": "checkout"}))

STEMS = ("How many vacation days do we get?", "What happens in our weekly rituals?",
         "How do we handle severance?", "Which internal systems do we use?",
         "How should I manage my work laptop?", "What should I do in my first week?",
         "Is moonlighting allowed?", "Who is on call for billing, and what is the process?",
         "How do I escalate an incident?", "What is checkout's error rate?")

INLINE_DOCS = {
    "oncall.md": "# On-call\n\nThe on-call rota lives in PagerDuty. Each service (billing, checkout, search) has "
                 "a primary and a secondary. Hand-over is at 18:00 UTC on Mondays.\n",
    "incidents.md": "# Incidents\n\nDeclare an incident in PagerDuty when customers are affected. The incident "
                    "commander posts updates every 30 minutes in #incidents.\n",
    "vacation.md": "# Vacation\n\nEveryone gets 25 days of paid vacation a year. Tell your team two weeks ahead "
                   "and put it in the shared calendar.\n",
    "laptops.md": "# Work laptops\n\nLaptops are replaced every three years. Encrypt the disk and keep the "
                  "operating system up to date.\n",
    "onboarding.md": "# Your first week\n\nMeet your buddy, set up your accounts and read the handbook.\n",
}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def progress(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the stand-ins

_RESULT = re.compile(r'<tool_result n="(\d+)"')


def scripted_model(body: dict[str, Any]) -> str | dict[str, Any]:
    """The stubbed model: call the next planned tool while the question wants more rounds than the
    messages hold results of, then answer citing what it was given."""
    messages = body["messages"]
    question = next(m["content"] for m in reversed(messages) if m["role"] == "user").rsplit("Question:", 1)[-1]
    wanted = 2 if MARKS["two"] in question else 1 if MARKS["one"] in question else 0
    results = [int(n) for m in messages if m["role"] == "tool" for n in _RESULT.findall(m.get("content") or "")]
    offered = {t["function"]["name"] for t in body.get("tools") or []}
    if len(results) < wanted:
        name, arguments = PLAN[len(results)]
        if name not in offered:
            return f"BENCH ERROR: {name} was not offered"
        return {"role": "assistant", "content": None, "tool_calls": [{
            "id": f"call_{len(results) + 1}", "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)}}]}
    cited = " ".join(f"[{n}]" for n in results) or "[1]"
    return f"Here is what I found {cited}."


@dataclass
class Servers:
    mcp: str
    prometheus: str
    openai: str


def _start_standins() -> tuple[FakeMCP, FakePrometheus, FakeOpenAI]:
    mcp = FakeMCP(bearer=MCP_TOKEN).start()
    prom = FakePrometheus().start()
    prom.set_result(ERROR_RATE.replace("$service", "checkout"), vector(({"service": "checkout"}, 0.0123)))
    llm = FakeOpenAI(reply=scripted_model).start()
    return mcp, prom, llm


def _counts(mcp: FakeMCP, prom: FakePrometheus, llm: FakeOpenAI) -> dict[str, int]:
    return {"mcp_calls": len(mcp.calls), "mcp_listings": mcp.listings, "prometheus_queries": len(prom.queries()),
            "model_requests": len(llm.requests)}


def _standins_child(conn: multiprocessing.connection.Connection) -> None:
    """The stand-ins in a process of their own: URLs sent, then serve until told to stop."""
    mcp, prom, llm = _start_standins()
    try:
        conn.send(Servers(mcp.url, prom.url, llm.base_url))
        conn.recv()
        conn.send(_counts(mcp, prom, llm))
    finally:
        llm.stop()
        prom.stop()
        mcp.stop()


class StandIns:
    def __init__(self, where: str):
        self.where = where
        self._local: tuple[FakeMCP, FakePrometheus, FakeOpenAI] | None = None
        self._proc: Any = None
        self._conn: multiprocessing.connection.Connection | None = None

    def start(self) -> Servers:
        if self.where == "in-process":
            self._local = mcp, prom, llm = _start_standins()
            return Servers(mcp.url, prom.url, llm.base_url)
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_standins_child, args=(child,), daemon=True, name="bench-standins")
        self._proc.start()
        if not self._conn.poll(60):
            raise RuntimeError("the stand-ins did not start")
        servers: Servers = self._conn.recv()
        return servers

    def stop(self) -> dict[str, int]:
        if self._local is not None:
            served = _counts(*self._local)
            for server in reversed(self._local):
                server.stop()
            self._local = None
            return served
        counts: dict[str, int] = {}
        if self._conn is not None and self._proc is not None:
            try:
                self._conn.send("stop")
                if self._conn.poll(30):
                    counts = self._conn.recv()
            except (OSError, EOFError):
                pass
            self._proc.join(30)
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join(10)
        return counts


# --------------------------------------------------------------------------- timing proxies


class Spent:
    """Time added up by the proxies, per kind of work (calls may run on the loop's threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ms: dict[str, float] = {}
        self.n: dict[str, int] = {}

    def add(self, what: str, seconds: float) -> None:
        with self._lock:
            self.ms[what] = self.ms.get(what, 0.0) + seconds * 1000
            self.n[what] = self.n.get(what, 0) + 1

    def take(self) -> tuple[dict[str, float], dict[str, int]]:
        with self._lock:
            ms, n = self.ms, self.n
            self.ms, self.n = {}, {}
        return ms, n

    def timed(self, what: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(what, time.perf_counter() - start)
        return run


class TimedLLM:
    """The pipeline's ``llm``, each ``complete`` timed ("model")."""

    def __init__(self, llm: Any, spent: Spent):
        self._llm = llm
        self._spent = spent
        self.model = llm.model

    def complete(self, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self._llm.complete(messages, **kwargs)
        finally:
            self._spent.add("model", time.perf_counter() - start)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)


class TimedKind:
    """A tool's kind, each ``call`` ("tool", and "tool:<name>") and ``definitions`` ("listing") timed."""

    def __init__(self, name: str, kind: Any, spent: Spent):
        self._name = name
        self._kind = kind
        self._spent = spent

    def call(self, function: str, arguments: dict[str, Any], caller: Any, *, timeout: float) -> Any:
        start = time.perf_counter()
        try:
            return self._kind.call(function, arguments, caller, timeout=timeout)
        finally:
            took = time.perf_counter() - start
            self._spent.add("tool", took)
            self._spent.add(f"tool:{self._name}", took)

    def definitions(self, caller: Any) -> Any:
        start = time.perf_counter()
        try:
            return self._kind.definitions(caller)
        finally:
            self._spent.add("listing", time.perf_counter() - start)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kind, name)


# --------------------------------------------------------------------------- the MCP SDK alone


def mcp_reference(url: str, token: str, calls: int) -> dict[str, Any]:
    """What one ``get_oncall`` costs through the official SDK alone, against the same stand-in: a
    session of its own per call (as the ``mcp`` kind made before its pool: a new event loop, connect, initialize,
    the call, the listing the SDK makes to validate the result, close) and a call in a session kept
    open. Not product code: a reference for the ``tool`` times above."""
    import anyio
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {token}"}

    async def fresh() -> None:
        async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(10.0)) as http, \
                streamable_http_client(url, http_client=http) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            await session.call_tool("get_oncall", {"service": "billing"})

    def one_fresh() -> float:
        start = time.perf_counter()
        anyio.run(fresh)
        return (time.perf_counter() - start) * 1000

    async def kept() -> list[float]:
        out: list[float] = []
        async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(10.0)) as http, \
                streamable_http_client(url, http_client=http) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            await session.list_tools()
            for _ in range(calls):
                start = time.perf_counter()
                await session.call_tool("get_oncall", {"service": "billing"})
                out.append((time.perf_counter() - start) * 1000)
        return out

    for _ in range(3):
        one_fresh()
    fresh_ms = [one_fresh() for _ in range(calls)]
    kept_ms = anyio.run(kept)
    return {"calls": calls, "session_per_call_ms": _stats(fresh_ms), "call_in_open_session_ms": _stats(kept_ms)}


# --------------------------------------------------------------------------- the run


@dataclass
class Sample:
    total_ms: float
    model_ms: float
    model_calls: int
    tool_ms: float
    tool_calls: int
    listing_ms: float
    toolbox_ms: float           # inside Toolbox.call (the kind's time included)
    stages: dict[str, float] = field(default_factory=dict)
    by_tool: dict[str, float] = field(default_factory=dict)

    @property
    def rest_ms(self) -> float:
        """Neither the model's time nor the tool's."""
        return self.total_ms - self.model_ms - self.tool_ms - self.listing_ms


def _documents(handbook: Path | None, count: int) -> dict[str, str]:
    if handbook is None:
        return dict(INLINE_DOCS)
    files = sorted((p for p in handbook.glob("*.md") if p.name.lower() != "readme.md"), key=lambda p: p.stat().st_size)
    if not files:
        raise SystemExit(f"no Markdown files in {handbook}")
    return {p.name: p.read_text(errors="replace") for p in files[:count]}


def _config(servers: Servers) -> str:
    return f"""tools:
  - name: pagerduty
    kind: mcp
    title: PagerDuty
    url: {servers.mcp}
    auth: {{bearer_env: {MCP_TOKEN_ENV}}}
    allow: [get_oncall, list_incidents]
    results: public
  - name: health
    kind: prometheus
    title: Prometheus
    url: {servers.prometheus}
    queries:
      error_rate: '{ERROR_RATE}'
    params: {{service: {{enum: [billing, checkout, search]}}}}
    results: public
"""


def run(questions: int, warmup: int, handbook: Path | None, docs: int, where: str,
        reference: int = 0) -> dict[str, Any]:
    import redis

    from chatops import logs
    from chatops.settings import Settings
    from chatops_app.container import Container
    from connectors.sources.filesystem.connector import FilesystemSource
    from usecases.ask import Question
    from usecases.ingest import ingest

    run_id = uuid.uuid4().hex[:8]
    prefix = f"chatops-bench-{run_id}"
    work = Path(tempfile.mkdtemp(prefix="chatops-bench-tools-"))
    standins = StandIns(where)
    container = None
    devnull = open(os.devnull, "w")
    counts: dict[str, int] = {}
    try:
        progress(f"starting the stand-ins ({where})")
        servers = standins.start()
        corpus = work / "docs"
        corpus.mkdir()
        documents = _documents(handbook, docs)
        for name, text in documents.items():
            (corpus / name).write_text(text)
        (corpus / ".acl.yml").write_text('- match: "**"\n  groups: [sre]\n')
        (work / "directory.yml").write_text(f"users:\n  - {{email: {ASKER[1]}, slack_id: {ASKER[0]}, groups: [sre]}}\n")
        (work / "config.yml").write_text(_config(servers))
        os.environ[MCP_TOKEN_ENV] = MCP_TOKEN        # read by the mcp kind at each call (bearer_env)
        settings = Settings.load(
            CHATOPS_DATA_DIR=str(work / "data"), QDRANT_PATH=str(work / "index"),
            CHATOPS_DIRECTORY_FILE=str(work / "directory.yml"), CHATOPS_CONFIG=str(work / "config.yml"),
            OPENAI_BASE_URL=servers.openai, OPENAI_API_KEY="bench", CHATOPS_KEY_PREFIX=prefix,
            CHATOPS_MIN_SIMILARITY=0.0, CHATOPS_LOG_LEVEL="INFO")
        logs.setup(settings.log_level, settings.log_format, stream=devnull)   # as the worker logs, unseen
        container = Container(settings)
        progress(f"indexing {len(documents)} documents")
        report = ingest(FilesystemSource(corpus, groups=settings.group_names), container.index, container.embedder)
        chunks = container.index.count()

        box = container.toolbox
        for name in ("pagerduty", "health"):
            approved = box.approve(name, "bench-operator")
            progress(f"approved {name}: {', '.join(d.name for d in approved)}")
        spent = Spent()
        for name, tool in list(box.tools.items()):
            box.tools[name] = replace(tool, kind=TimedKind(name, tool.kind, spent))
        box.call = spent.timed("toolbox", box.call)          # an attribute of this one object: run_round calls it
        pipeline = container.pipeline(with_slack=False)
        assert pipeline.toolbox is box and pipeline.llm is not None
        pipeline.llm = TimedLLM(pipeline.llm, spent)

        def ask(variant: str, stem: str) -> Sample:
            q = Question(text=f"{stem} {MARKS[variant]}", asker_slack_id=ASKER[0], asker_email=ASKER[1],
                         channel="DUASK", channel_type="im", correlation_id=uuid.uuid4().hex)
            spent.take()
            start = time.perf_counter()
            answer, timings = pipeline.ask(q)
            total = (time.perf_counter() - start) * 1000
            ms, n = spent.take()
            outcomes = [u["outcome"] for u in answer.tools_used]
            if (answer.mode != "llm" or answer.tool_rounds != ROUNDS[variant]
                    or len(outcomes) != ROUNDS[variant] or any(o != "ok" for o in outcomes)
                    or n.get("model", 0) != ROUNDS[variant] + 1):
                raise RuntimeError(f"variant {variant}: unexpected answer (mode {answer.mode}, rounds "
                                   f"{answer.tool_rounds}, calls {answer.tools_used}, model calls {n.get('model')}): "
                                   f"{answer.text[:200]!r} {answer.note!r}")
            return Sample(total, ms.get("model", 0.0), n.get("model", 0), ms.get("tool", 0.0), n.get("tool", 0),
                          ms.get("listing", 0.0), ms.get("toolbox", 0.0), timings.stages(),
                          {k[5:]: v for k, v in ms.items() if k.startswith("tool:")})

        progress(f"warm-up: {warmup} turns of the three variants")
        for i in range(warmup):
            for variant in VARIANTS:
                ask(variant, STEMS[i % len(STEMS)])
        samples: dict[str, list[Sample]] = {v: [] for v in VARIANTS}
        progress(f"{questions} turns: no tool, one round, two rounds, interleaved")
        wall = time.perf_counter()
        for i in range(questions):
            order = VARIANTS[i % 3:] + VARIANTS[:i % 3]        # rotated: no variant always first
            stem = STEMS[i % len(STEMS)]
            for variant in order:
                samples[variant].append(ask(variant, stem))
            if (i + 1) % 50 == 0 or i + 1 == questions:
                progress(f"{i + 1}/{questions} turns, p50 so far: " + ", ".join(
                    f"{v} {pct([s.total_ms for s in samples[v]], 0.5):.1f} ms" for v in VARIANTS))
        wall_s = time.perf_counter() - wall
        sdk = None
        if reference:
            progress(f"the MCP SDK alone: {reference} calls with a session each, {reference} in one session")
            sdk = mcp_reference(servers.mcp, MCP_TOKEN, reference)
        out = summarise(samples, {
            "questions_per_variant": questions, "warmup_turns": warmup, "standins": where,
            "documents": len(documents), "chunks": chunks, "ingested_chunks": report.chunks,
            "corpus": str(handbook) if handbook else "inline", "index": container.index.kind,
            "wall_s": round(wall_s, 1), "tool_listing_ttl_s": settings.tool_listing_ttl,
            "logging": f"product JSON logs at {settings.log_level} to /dev/null",
            "cpus": os.cpu_count()})
        if sdk is not None:
            out["mcp_sdk_reference"] = sdk
        return out
    finally:
        if container is not None:
            container.close()
        counts = standins.stop()
        if counts:
            progress(f"stand-ins served: {counts}")
        devnull.close()
        shutil.rmtree(work, ignore_errors=True)
        os.environ.pop(MCP_TOKEN_ENV, None)
        try:
            r = redis.Redis.from_url("redis://127.0.0.1:6379/0")
            for key in r.scan_iter(f"{prefix}:*"):
                r.delete(key)
        except redis.RedisError:
            pass


def _stats(values: list[float]) -> dict[str, float]:
    return {"p50": round(pct(values, 0.5), 2), "p95": round(pct(values, 0.95), 2),
            "mean": round(statistics.fmean(values), 2)}


def summarise(samples: dict[str, list[Sample]], facts: dict[str, Any]) -> dict[str, Any]:
    variants: dict[str, Any] = {}
    for v in VARIANTS:
        s = samples[v]
        variants[v] = {
            "tool_rounds": ROUNDS[v], "model_calls": ROUNDS[v] + 1,
            "answer_ms": _stats([x.total_ms for x in s]),
            "model_ms_p50": round(pct([x.model_ms for x in s], 0.5), 2),
            "tool_ms_p50": round(pct([x.tool_ms for x in s], 0.5), 2),
            "tool_ms_p50_by_tool": {t: round(pct([x.by_tool[t] for x in s if t in x.by_tool], 0.5), 2)
                                    for t in sorted({t for x in s for t in x.by_tool})},
            "rest_ms": _stats([x.rest_ms for x in s]),
            "listing_refreshes": sum(1 for x in s if x.listing_ms > 0),
            "stages_p50_ms": {k: round(pct([x.stages.get(k, 0.0) for x in s], 0.5), 2)
                              for k in ("identity", "audience", "retrieval", "generation")},
        }
    none, one, two = (samples[v] for v in VARIANTS)
    base = pct([x.rest_ms for x in none], 0.5)
    per_round_one = pct([x.rest_ms for x in one], 0.5) - base
    per_round_two = (pct([x.rest_ms for x in two], 0.5) - base) / 2
    paired_one = [a.rest_ms - b.rest_ms for a, b in zip(one, none)]
    paired_two = [(a.rest_ms - b.rest_ms) / 2 for a, b in zip(two, none)]
    in_toolbox = [x.toolbox_ms - x.tool_ms for x in one]          # one call per round
    ratios = {f"{v}_over_none": {k: round(variants[v]["answer_ms"][k] / variants["none"]["answer_ms"][k], 2)
                                 for k in ("p50", "p95", "mean")} for v in ("one", "two")}
    headline = max(per_round_one, per_round_two)
    return {
        **facts,
        "variants": variants,
        "ratios": ratios,
        "tool_round_overhead_ms": {
            "formula": ("rest = t(answer) - sum(model calls) - sum(tool kind calls and listings); "
                        "one round: p50 rest(one) - p50 rest(none); two rounds: (p50 rest(two) - p50 rest(none)) / 2"),
            "one_round": round(per_round_one, 2),
            "two_rounds_per_round": round(per_round_two, 2),
            "paired_one_round_p50": round(pct(paired_one, 0.5), 2),
            "paired_one_round_p95": round(pct(paired_one, 0.95), 2),
            "paired_two_rounds_per_round_p50": round(pct(paired_two, 0.5), 2),
            "in_toolbox_call_around_kind_p50": round(pct(in_toolbox, 0.5), 2),
            "target": TARGET_MS,
            "within_target": bool(headline <= TARGET_MS),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--questions", type=int, default=200, help="answers per variant (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=10, help="turns of the three variants not counted")
    parser.add_argument("--handbook", type=Path, help="a folder of Markdown files (the smallest --docs are indexed); "
                                                     "default: a few inline documents")
    parser.add_argument("--docs", type=int, default=6, help="how many of --handbook's files")
    parser.add_argument("--standins", choices=("process", "in-process"), default="process",
                        help="run the MCP, Prometheus and model stand-ins in a child process (default) or here")
    parser.add_argument("--mcp-reference", type=int, default=50, metavar="N",
                        help="then N get_oncall calls through the MCP SDK alone, a session per call and in one "
                             "session (0: skip)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.questions, args.warmup, args.handbook, args.docs, args.standins, args.mcp_reference)
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
