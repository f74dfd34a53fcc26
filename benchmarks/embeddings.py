"""Embedding providers side by side (issue 23): ``local`` (the shipped MiniLM int8 through
fastembed), ``onnx_dir`` (the same model directory loaded as an operator's, pooled and normalised as
declared) and ``openai`` through the loopback /v1/embeddings stand-in (``standins/fake_embeddings.py``:
the real openai SDK, HTTP, base64 vectors; the plumbing and its overhead, not a model's quality).

    .venv/bin/python benchmarks/embeddings.py [--data ../shared/data/beir/dbpedia] [--texts 512] \\
        [--queries 50] [--repeat 3] [--server-delay 0.05] [--json]

Measured in this process, after one warm-up call each, the providers interleaved (each query
through all three in turn, the order rotated; the throughput runs alternated) so that other work
on the machine weighs on all alike:

1. query latency: ``embed_query`` (the dense vector and the local BM25 one, what a question costs),
   p50 and p95 over the set's queries, ``--repeat`` times each;
2. batch throughput: ``embed_dense`` over ``--texts`` passages of the set (title and text), texts/s,
   the best of ``--repeat`` runs (CHATOPS_EMBEDDING_BATCH_SIZE 32; ``openai`` with concurrency 4);
3. ``openai`` only: the same throughput when every request takes ``--server-delay`` seconds at the
   server (a model's time), with concurrency 1 and 4; and the overhead of one retry (a query's
   latency with one 429 ``Retry-After: 1`` answered first, and with one 500, minus its p50).

The stand-in computes its vectors in Python (a hashed bag of words): its own time per request is
in the ``openai`` numbers, as a server's would be.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.embeddings.local import LocalEmbedder  # noqa: E402
from connectors.embeddings.onnx_dir import OnnxDirEmbedder  # noqa: E402
from connectors.embeddings.openai_embeddings import OpenAIEmbedder  # noqa: E402
from connectors.index.models import default_model_dir  # noqa: E402
from standins.fake_embeddings import FakeEmbeddings  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "beir" / "dbpedia"


def load(folder: Path, texts: int, queries: int) -> tuple[list[str], list[str]]:
    passages, asked = [], []
    with open(folder / "corpus.jsonl") as f:
        for line in f:
            doc = json.loads(line)
            passages.append(f"{doc.get('title', '')}\n{doc.get('text', '')}".strip())
            if len(passages) == texts:
                break
    with open(folder / "queries.jsonl") as f:
        for line in f:
            asked.append(json.loads(line)["text"])
            if len(asked) == queries:
                break
    return passages, asked


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def query_latency(embedders: dict, queries: list[str], repeat: int) -> dict[str, dict]:
    """Each query through every provider in turn (the order rotated per query), so that the
    machine's other work weighs on all of them alike."""
    names = list(embedders)
    for e in embedders.values():
        e.embed_query("warm-up question")
    times: dict[str, list[float]] = {n: [] for n in names}
    turn = 0
    for _ in range(repeat):
        for q in queries:
            turn += 1
            for name in names[turn % len(names):] + names[:turn % len(names)]:
                start = time.perf_counter()
                embedders[name].embed_query(q)
                times[name].append((time.perf_counter() - start) * 1000)
    return {n: {"query_p50_ms": round(pct(t, 50), 2), "query_p95_ms": round(pct(t, 95), 2), "queries": len(t)}
            for n, t in times.items()}


def throughput(embedders: dict, texts: list[str], repeat: int) -> dict[str, float]:
    """texts/s of ``embed_dense`` over ``texts``, the best of ``repeat`` runs, the providers' runs
    interleaved."""
    for e in embedders.values():
        e.embed_dense(texts[:8])
    best = {n: 0.0 for n in embedders}
    for _ in range(repeat):
        for name, e in embedders.items():
            start = time.perf_counter()
            e.embed_dense(texts)
            best[name] = max(best[name], round(len(texts) / (time.perf_counter() - start), 1))
    return best


def retry_overhead(embedder, server: FakeEmbeddings, baseline_ms: float, trials: int = 3) -> dict:
    out = {}
    for label, status, retry_after in (("retry_429_retry_after_1s_ms", 429, 1), ("retry_500_ms", 500, None)):
        extra = []
        for _ in range(trials):
            server.fail_next(1, status, retry_after)
            start = time.perf_counter()
            embedder.embed_query("a question that is retried")
            extra.append((time.perf_counter() - start) * 1000 - baseline_ms)
        out[label] = round(statistics.median(extra), 1)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a BEIR folder (corpus.jsonl, queries.jsonl)")
    ap.add_argument("--texts", type=int, default=512)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--server-delay", type=float, default=0.05)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    texts, queries = load(args.data, args.texts, args.queries)

    local = LocalEmbedder()
    mine = OnnxDirEmbedder(default_model_dir(), pooling="mean", normalize=True, max_tokens=256)   # as local cuts
    mine.sparse = local.sparse
    with FakeEmbeddings({"text-embedding-3-small": 1536}) as server:
        remote = OpenAIEmbedder("text-embedding-3-small", base_url=server.base_url, api_key="bench",
                                sparse=local.sparse, batch_size=32, concurrency=4, max_retries=2)
        embedders = {"local": local, "onnx_dir": mine, "openai (stand-in)": remote}
        results: dict[str, dict] = query_latency(embedders, queries, args.repeat)
        for name, rate in throughput(embedders, texts, args.repeat).items():
            results[name]["texts_per_s"] = rate
        row = results["openai (stand-in)"]
        row.update(retry_overhead(remote, server, row["query_p50_ms"]))
        server.delay = args.server_delay
        for concurrency in (1, 4):
            paced = OpenAIEmbedder("text-embedding-3-small", base_url=server.base_url, api_key="bench",
                                   sparse=local.sparse, batch_size=32, concurrency=concurrency, dimensions=1536)
            row[f"texts_per_s_server_{int(args.server_delay * 1000)}ms_concurrency_{concurrency}"] = \
                throughput({"paced": paced}, texts, 1)["paced"]

    load_after = [round(x, 2) for x in os.getloadavg()]     # other work on the machine skews it
    if args.json:
        print(json.dumps({"texts": len(texts), "queries": len(queries), "data": str(args.data), "results": results,
                          "load_average_after": load_after, "cpus": os.cpu_count()}, indent=2))
        return 0
    print(f"{len(texts)} passages and {len(queries)} queries of {args.data.name}, x{args.repeat}; "
          f"load average after {load_after} on {os.cpu_count()} CPUs")
    print(f"{'provider':<20} {'query p50 ms':>13} {'query p95 ms':>13} {'texts/s':>9}")
    for name, row in results.items():
        print(f"{name:<20} {row['query_p50_ms']:>13} {row['query_p95_ms']:>13} {row['texts_per_s']:>9}")
    remote_row = results["openai (stand-in)"]
    for key, value in remote_row.items():
        if key.startswith(("retry_", "texts_per_s_server")):
            print(f"openai {key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
