"""Ingestion and end-to-end query latency at scale, through the real code paths.

Four steps, each printing one JSON document:

    # 1. a 100,000-document BEIR-format corpus (not kept in git), made of sentences drawn
    #    from the shared dbpedia and msmarco corpora, each document as long as a real one
    .venv/bin/python benchmarks/scale.py corpus --beir ../shared/data/beir --docs 100000 --out /tmp/c100k

    # 2. ingest it through `ingest()` (read, chunk, dense + BM25, upserts) into a fresh index,
    #    then build HNSW with optimize(); chunks/s and the process's peak RSS
    .venv/bin/python benchmarks/scale.py ingest --corpus /tmp/c100k --index /tmp/i100k --impl edge

    # 3. the bot's query path on that index: embed the question (dense + BM25), then the
    #    configured retrieval strategy with an ACL filter (a person in 3 of 10 groups, ~44 %
    #    of the chunks visible); p50/p99 per stage over the shared sets' real queries
    .venv/bin/python benchmarks/scale.py query --index /tmp/i100k --impl edge --beir ../shared/data/beir

    # 4. (Qdrant Edge only) where a search's time goes: the engine's calls alone, same index,
    #    same questions and filter: dense on the int8 copy / on floats, BM25, with and without
    #    payloads and vectors in the answer
    .venv/bin/python benchmarks/scale.py engine --index /tmp/i100k --beir ../shared/data/beir

Documents get an ACL from a hash of their id: a fifth public, the rest one of ten groups.
``--impl local`` is qdrant-client's local mode (``QDRANT_PATH``); a Qdrant server is
``--impl server --url ...``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _synthetic import latency_summary, machine_info, peak_rss_mb, rss_mb  # noqa: E402

from chatops.access import Acl, Audience, Principal  # noqa: E402

GROUPS = [f"g{i}" for i in range(10)]
SETS = ("dbpedia", "msmarco")
SENTENCE = re.compile(r"(?<=[.!?])\s+")


def acl_for(doc_id: str) -> Acl:
    h = int(hashlib.sha256(doc_id.encode()).hexdigest()[:8], 16)
    return Acl.of(public=True) if h % 5 == 0 else Acl.of(groups=[GROUPS[(h // 5) % 10]])


def make_corpus(beir: Path, docs: int, out: Path, seed: int) -> dict:
    rows = []
    for name in SETS:
        with (beir / name / "corpus.jsonl").open() as fh:
            rows += [json.loads(line) for line in fh]
    sentences = [s for r in rows for s in SENTENCE.split(r.get("text") or "") if len(s.split()) >= 4]
    titles = [r["title"] for r in rows if r.get("title")]
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    words = 0
    with (out / "corpus.jsonl").open("w") as fh:
        for i in range(docs):
            target = len((rng.choice(rows).get("text") or "").split())
            parts: list[str] = []
            while sum(len(p.split()) for p in parts) < target:
                parts.append(rng.choice(sentences))
            text = " ".join(parts)
            words += len(text.split())
            fh.write(json.dumps({"_id": f"s{i}", "title": rng.choice(titles) if rng.random() < 0.5 else "",
                                 "text": text}) + "\n")
    return {"docs": docs, "mean_words": round(words / docs, 1), "sentences_pool": len(sentences), "out": str(out)}


def settings_for(impl: str, index: Path, url: str | None):
    from chatops.settings import Settings

    env = {"QDRANT_PATH": str(index), "CHATOPS_INDEX_ENGINE": "edge" if impl == "edge" else "local"}
    if impl == "server":
        env = {"QDRANT_URL": url or "http://127.0.0.1:6333"}
    return Settings.load(**env)


class SyntheticDense:
    """The real embedder's BM25 half with seeded random unit vectors for the dense half: builds
    an index the size of a real one in minutes (the model needs ~40 minutes per 100,000 chunks
    here) for query-latency runs. Searches cost the same; rankings mean nothing."""

    def __init__(self, real, seed: int = 5):
        import numpy as np

        self.real, self.dim = real, real.dim
        self.rng = np.random.default_rng(seed)
        self.centres = self.rng.normal(size=(200, real.dim))

    def embed_documents(self, texts):
        import numpy as np

        v = self.centres[self.rng.integers(len(self.centres), size=len(texts))]
        v = v + 0.8 * self.rng.normal(size=v.shape)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return v.astype(np.float32).tolist(), self.real.embed_sparse(texts)


def run_ingest(corpus: Path, index: Path, impl: str, url: str | None, optimize: bool,
               synthetic_dense: bool = False) -> dict:
    from chatops_app.container import Container
    from connectors.sources.beir import BeirSource
    from usecases.ingest import ingest

    container = Container(settings_for(impl, index, url))
    container.index  # noqa: B018 - loads the model (the index asks it for the dimension)
    rss_model = peak_rss_mb()
    start = time.perf_counter()
    # no reference to the embedder is kept here: release_embedder() below must be able to free it
    report = ingest(BeirSource(corpus, acl_for=acl_for), container.index,
                    SyntheticDense(container.embedder) if synthetic_dense else container.embedder, progress=True)
    seconds = time.perf_counter() - start
    out = {"impl": impl, "synthetic_dense": synthetic_dense, "chunks": report.chunks, "seconds": round(seconds, 1),
           "chunks_per_s": round(report.chunks / seconds, 1) if seconds else None,
           "peak_rss_mb_model_loaded": rss_model, "peak_rss_mb_after_ingest": peak_rss_mb()}
    build = getattr(container.index, "optimize", None)
    if optimize and build is not None:
        container.release_embedder()  # as `chatops ingest` does before optimize()
        out["rss_mb_before_optimize"] = rss_mb()
        start = time.perf_counter()
        build()
        out["optimize_s"] = round(time.perf_counter() - start, 1)
        out["peak_rss_mb_after_optimize"] = peak_rss_mb()
    out["count"] = container.index.count()
    container.close()
    return out


def load_queries(beir: Path) -> list[str]:
    texts = []
    for name in SETS:
        with (beir / name / "queries.jsonl").open() as fh:
            texts += [json.loads(line)["text"] for line in fh]
    return texts


def run_query(index: Path, impl: str, url: str | None, beir: Path, rounds: int, limit: int,
              optimize: bool, strategy: str | None = None) -> dict:
    from chatops_app.container import Container

    from connectors.index.retriever import Retriever

    settings = settings_for(impl, index, url)
    container = Container(settings)
    # the worker's retriever, built from the same settings (strategy, weight, candidates)
    retriever = Retriever(container.index, container.embedder, strategy=strategy or settings.retrieval,
                          dense_weight=settings.dense_weight, candidates=settings.candidates)
    audience = Audience.of(Principal.of("bench@example.com", ["g1", "g2", "g3"]))
    queries = load_queries(beir)
    out: dict = {"impl": impl}
    build = getattr(container.index, "optimize", None)
    if optimize and build is not None:  # e.g. an index built before a configuration change
        start = time.perf_counter()
        out["optimize_changed"] = build()
        out["optimize_s"] = round(time.perf_counter() - start, 1)
    for text in queries[:10]:  # warm-up: model sessions, index files in the page cache
        retriever.search(retriever.embed(text), audience, limit=limit)
    embed_ms, search_ms, total_ms = [], [], []
    for _ in range(rounds):
        for text in queries:
            t0 = time.perf_counter()
            query = retriever.embed(text)
            t1 = time.perf_counter()
            retriever.search(query, audience, limit=limit)
            t2 = time.perf_counter()
            embed_ms.append((t1 - t0) * 1000)
            search_ms.append((t2 - t1) * 1000)
            total_ms.append((t2 - t0) * 1000)
    out |= {"count": container.index.count(), "strategy": retriever.strategy,
           "queries": len(total_ms), "total": latency_summary(total_ms), "embed": latency_summary(embed_ms),
           "search": latency_summary(search_ms)}
    container.close()
    return out


def run_engine(index: Path, beir: Path, rounds: int, candidates: int) -> dict:
    import qdrant_edge as qe

    from connectors.index.embeddings import DEFAULT_EMBEDDING_MODEL
    from connectors.index.edge_index import DENSE, SPARSE, EdgeIndex, acl_filter
    from connectors.embeddings.local import LocalEmbedder

    embedder = LocalEmbedder(DEFAULT_EMBEDDING_MODEL)
    edge = EdgeIndex(path=index, dim=embedder.dim)
    shard = edge._shard  # the benchmark times the engine's own calls, below the index interface
    flt = acl_filter(Audience.of(Principal.of("bench@example.com", ["g1", "g2", "g3"])))
    questions = [embedder.embed_query(text) for text in load_queries(beir)]
    int8 = edge._approx_params
    floats = qe.SearchParams(exact=True, quantization=qe.QuantizationSearchParams(ignore=True))

    def dense(params, with_payload):
        return lambda q: shard.query(qe.QueryRequest(
            limit=candidates, query=qe.Query.Nearest(q[0], using=DENSE), filter=flt, params=params,
            with_payload=with_payload, with_vector=[DENSE] if with_payload else False))

    def sparse(with_payload):
        return lambda q: shard.query(qe.QueryRequest(
            limit=candidates, query=qe.Query.Nearest(qe.SparseVector(list(q[1].indices), list(q[1].values)),
                                                     using=SPARSE),
            filter=flt, with_payload=with_payload, with_vector=[DENSE] if with_payload else False))

    calls = {
        "dense int8+rescore, ids only": dense(int8, False),
        "dense int8+rescore, with payload+vector": dense(int8, True),
        "dense exact floats, ids only": dense(floats, False),
        "bm25, ids only": sparse(False),
        "bm25, with payload+vector": sparse(True),
    }
    out: dict = {"impl": "edge", "count": edge.count(), "candidates": candidates, "ms": {}}
    for name, call in calls.items():
        for q in questions[:10]:
            call(q)
        ms = []
        for _ in range(rounds):
            for q in questions:
                t = time.perf_counter()
                call(q)
                ms.append((time.perf_counter() - t) * 1000)
        out["ms"][name] = latency_summary(ms)
    edge.close()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="step", required=True)
    c = sub.add_parser("corpus")
    c.add_argument("--beir", type=Path, required=True, help="the folder holding dbpedia/ and msmarco/")
    c.add_argument("--docs", type=int, default=100_000)
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--seed", type=int, default=11)
    for name in ("ingest", "query"):
        p = sub.add_parser(name)
        p.add_argument("--index", type=Path, required=True, help="index folder (embedded engines)")
        p.add_argument("--impl", choices=["edge", "local", "server"], default="edge")
        p.add_argument("--url", help="Qdrant server URL for --impl server")
    e = sub.add_parser("engine")
    e.add_argument("--index", type=Path, required=True, help="a Qdrant Edge index folder built by `ingest`")
    e.add_argument("--beir", type=Path, required=True)
    e.add_argument("--rounds", type=int, default=3)
    e.add_argument("--candidates", type=int, default=50, help="hits per search (the retriever's pool)")
    sub.choices["ingest"].add_argument("--corpus", type=Path, required=True)
    sub.choices["ingest"].add_argument("--no-optimize", action="store_true")
    sub.choices["ingest"].add_argument("--synthetic-dense", action="store_true",
                                       help="random dense vectors, real BM25 (a query-latency index in minutes)")
    sub.choices["query"].add_argument("--beir", type=Path, required=True)
    sub.choices["query"].add_argument("--rounds", type=int, default=3, help="passes over the queries")
    sub.choices["query"].add_argument("--limit", type=int, default=8, help="hits returned (the pipeline's top_k)")
    sub.choices["query"].add_argument("--optimize", action="store_true",
                                      help="run optimize() first (applies the current index settings)")
    sub.choices["query"].add_argument("--strategy", help="override CHATOPS_RETRIEVAL for this run")
    args = ap.parse_args(argv)

    if args.step == "corpus":
        result = make_corpus(args.beir, args.docs, args.out, args.seed)
    elif args.step == "ingest":
        result = run_ingest(args.corpus, args.index, args.impl, args.url, not args.no_optimize,
                            args.synthetic_dense)
    elif args.step == "engine":
        result = run_engine(args.index, args.beir, args.rounds, args.candidates)
    else:
        result = run_query(args.index, args.impl, args.url, args.beir, args.rounds, args.limit, args.optimize,
                           args.strategy)
    result["machine"] = machine_info("qdrant-edge-py", "qdrant-client", "fastembed")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
