"""What reranking adds to answering a question: ``CHATOPS_RERANK=none`` vs ``http`` (against the
loopback rerank endpoint, standins/fake_rerank.py) vs ``llm`` (one listwise call through the openai
SDK to the loopback chat completions server, standins/fake_openai.py), over 20 candidates.

    .venv/bin/python benchmarks/rerank.py [--rounds 3] [--candidates 20] [--delay-ms 0] [--json]

The real pipeline (usecases/ask.py, built by the composition root) on an embedded index of the
37signals handbook (../shared/data/handbook-37signals, ingested with the offline model), asked 20
questions written from it, ``--rounds`` times, the three configurations interleaved question by
question. Every configuration generates with the same loopback model (instant replies), so the
differences are the reranking's: the wider first-stage search (``--candidates`` instead of
CHATOPS_TOP_K=6), the documents' round trip, the client's parsing and, for ``llm``, its prompt.
The stand-ins answer at once (``--delay-ms`` makes the rerank endpoint as slow as a real one's
model): this measures the plumbing, not a reranking model's own latency or quality.
Reported per configuration: p50/p95 of the whole answer, of the rerank stage (Timings.rerank) and
of retrieval, and the p50/p95 added per question over ``none``.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chatops.settings import Settings  # noqa: E402
from chatops_app.container import Container  # noqa: E402
from connectors.llm.openai_llm import OpenAILLM  # noqa: E402
from connectors.rerank.http import HttpReranker  # noqa: E402
from connectors.rerank.llm import LlmReranker  # noqa: E402
from connectors.sources.registry import filesystem_spec, open_source  # noqa: E402
from standins.fake_openai import FakeOpenAI  # noqa: E402
from standins.fake_rerank import FakeRerank  # noqa: E402
from usecases.ask import Question  # noqa: E402
from usecases.ingest import ingest  # noqa: E402

HANDBOOK = ROOT.parent / "shared" / "data" / "handbook-37signals"
QUESTIONS = [
    "How much vacation time do employees get?", "What is the severance policy?",
    "Can I have a side business while working here?", "What benefits and perks are offered?",
    "How do we handle work devices and their security?", "What internal systems do we use?",
    "What rituals does the company have?", "How do promotions and career levels work?",
    "How does the company pay salaries?", "What happens during the first weeks for a new hire?",
    "Is there a sabbatical?", "How do we write and share work updates?",
    "What are the rules for expenses and spending company money?", "How do on-call duties work?",
    "What is the policy on working hours and overtime?", "How do we handle performance problems?",
    "Which tools do we use to communicate?", "What is the continuing education allowance?",
    "How does the company think about meetings?", "Can employees work from anywhere?",
]


def _ranking(body: dict) -> str:
    """The loopback model's reply: a rerank prompt gets a valid ranking (its candidates reversed),
    an answer prompt a short cited answer."""
    system = body["messages"][0]["content"]
    if system.startswith("You rank passages"):
        numbers = [int(n) for n in re.findall(r'<source n="(\d+)"', body["messages"][-1]["content"])]
        return json.dumps({"ranking": numbers[::-1][:10]})
    return "From the handbook [1]."


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2) if values else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="the rerank endpoint's time per request")
    parser.add_argument("--handbook", type=Path, default=HANDBOOK)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    work = Path(tempfile.mkdtemp(prefix="chatops-rerank-bench-"))
    corpus = work / "corpus"
    shutil.copytree(args.handbook, corpus)
    (corpus / ".acl.yml").write_text('- match: "**"\n  groups: [staff]\n')
    (work / "directory.yml").write_text(yaml.safe_dump({"users": [{"email": "ana@corp.example",
                                                                   "groups": ["staff"]}]}))
    model, endpoint = FakeOpenAI(reply=_ranking).start(), FakeRerank(api_key="bench").start()
    endpoint.delay = args.delay_ms / 1000
    try:
        settings = Settings.load(
            CHATOPS_DATA_DIR=str(work / "data"), QDRANT_PATH=str(work / "index"), QDRANT_URL=None,
            DATABASE_URL="sqlite:///:memory:", CHATOPS_DIRECTORY_FILE=str(work / "directory.yml"),
            CHATOPS_IDENTITY_PROVIDER="directory", CHATOPS_CACHE_TTL="0", OPENAI_API_KEY="bench",
            OPENAI_BASE_URL=model.base_url, CHATOPS_LLM_MAX_RETRIES="0")
        container = Container(settings)
        started = time.perf_counter()
        ingest(open_source(filesystem_spec(corpus), settings.group_names), container.index, container.embedder)
        chunks = container.index.count()
        ingest_s = time.perf_counter() - started
        llm = OpenAILLM(model="fake-model", api_key="bench", base_url=model.base_url, timeout=10, max_retries=0)
        base = replace(container.pipeline(with_slack=False), llm=llm, min_similarity=0.0)
        configs = {
            "none": base,
            "http": replace(base, reranker=HttpReranker(endpoint.url, model="fake-reranker", api_key="bench",
                                                        timeout=5.0, candidates=args.candidates)),
            "llm": replace(base, reranker=LlmReranker(llm, timeout=5.0, candidates=args.candidates)),
        }
        for p in configs.values():   # warm-up: the model's first run, the connections
            p.ask(Question(text=QUESTIONS[0], asker_email="ana@corp.example"))
        runs: dict[str, dict[str, list[float]]] = {name: {"total": [], "rerank": [], "retrieval": [],
                                                          "candidates": []} for name in configs}
        sent_before = len(endpoint.requests)
        for _ in range(args.rounds):
            for text in QUESTIONS:
                for name, p in configs.items():
                    start = time.perf_counter()
                    answer, timings = p.ask(Question(text=text, asker_email="ana@corp.example"))
                    total = (time.perf_counter() - start) * 1000
                    stages = timings.stages()
                    runs[name]["total"].append(total)
                    runs[name]["rerank"].append(stages["rerank"])
                    runs[name]["retrieval"].append(stages["retrieval"])
        sent = endpoint.requests[sent_before:]
        docs_per_request = statistics.mean(len(b["documents"]) for b in sent) if sent else 0
        report = {"chunks": chunks, "ingest_s": round(ingest_s, 1), "questions": len(QUESTIONS) * args.rounds,
                  "candidates": args.candidates, "endpoint_delay_ms": args.delay_ms,
                  "http_documents_per_request": round(docs_per_request, 1), "configs": {}}
        none_total = runs["none"]["total"]
        for name, r in runs.items():
            added = [t - n for t, n in zip(r["total"], none_total)]
            report["configs"][name] = {
                "total_p50_ms": _pct(r["total"], 50), "total_p95_ms": _pct(r["total"], 95),
                "rerank_p50_ms": _pct(r["rerank"], 50), "rerank_p95_ms": _pct(r["rerank"], 95),
                "retrieval_p50_ms": _pct(r["retrieval"], 50), "retrieval_p95_ms": _pct(r["retrieval"], 95),
                "added_p50_ms": _pct(added, 50), "added_p95_ms": _pct(added, 95)}
        container.close()
    finally:
        model.stop()
        endpoint.stop()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['chunks']} chunks (37signals handbook), {report['questions']} questions per configuration, "
          f"{args.candidates} candidates, rerank endpoint delay {args.delay_ms:g} ms, "
          f"{report['http_documents_per_request']} documents per rerank request")
    print(f"{'config':<6} {'answer p50/p95':>16} {'rerank p50/p95':>16} {'retrieval p50/p95':>18} "
          f"{'added p50/p95':>16}")
    for name, c in report["configs"].items():
        print(f"{name:<6} {c['total_p50_ms']:>7.1f}/{c['total_p95_ms']:<7.1f}ms {c['rerank_p50_ms']:>6.1f}/"
              f"{c['rerank_p95_ms']:<7.1f}ms {c['retrieval_p50_ms']:>7.1f}/{c['retrieval_p95_ms']:<7.1f}ms "
              f"{c['added_p50_ms']:>6.1f}/{c['added_p95_ms']:<7.1f}ms")


if __name__ == "__main__":
    main()
