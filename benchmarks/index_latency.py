"""Latency of VectorIndex.search(): Qdrant Edge (in process) vs qdrant-client local mode.

Synthetic, seeded data, no embedding model: random normalised 384-d dense vectors,
random sparse vectors (~20 non-zeros over a 30,000-term vocabulary), one ACL group
out of 10 per point and 20% public points. The query is hybrid (dense + sparse,
RRF) for one principal in 3 groups, i.e. about 44% of the points are visible.

    .venv/bin/python benchmarks/index_latency.py --points 10000 --impl both
    .venv/bin/python benchmarks/index_latency.py --points 100000 --impl edge

Edge is measured twice: as loaded (no HNSW yet: Qdrant Edge builds it only in
``optimize()``, so searches scan) and after ``EdgeIndex.optimize()``.
Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _synthetic import DIM, latency_summary, machine_info, synthetic_chunk, unit_vectors  # noqa: E402

from chatops.access import Acl, Audience, Principal  # noqa: E402
from connectors.index.base import Query, SparseVec  # noqa: E402

VOCAB = 30_000
GROUPS = [f"g{i}" for i in range(10)]


def terms(rng: np.random.Generator, n: int, dist: str) -> np.ndarray:
    if dist == "uniform":
        return rng.choice(VOCAB, n, replace=False)
    # zipf-like: p(rank) ~ 1 / (rank + 10), as in real text
    p = 1.0 / (np.arange(VOCAB) + 10.0)
    return rng.choice(VOCAB, n, replace=False, p=p / p.sum())


def sparse(rng: np.random.Generator, nnz: int, dist: str) -> SparseVec:
    idx = np.sort(terms(rng, nnz, dist))
    return SparseVec(tuple(int(i) for i in idx), tuple(float(x) for x in rng.uniform(0.2, 3.0, nnz)))


def batches(n: int, seed: int, dist: str, size: int = 1000):
    """(chunks, dense, sparse) in batches, generated lazily (100k x 384 floats is ~150 MB as lists)."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, size):
        m = min(size, n - start)
        dense = unit_vectors(rng, m)
        chunks, sp = [], []
        for j in range(m):
            i = start + j
            acl = Acl.of(public=True) if rng.random() < 0.2 else Acl.of(groups=[GROUPS[int(rng.integers(10))]])
            chunks.append(synthetic_chunk(i, acl))
            sp.append(sparse(rng, int(rng.integers(15, 26)), dist))
        yield chunks, dense.tolist(), sp


def open_index(impl: str, path: Path):
    if impl == "edge":
        from connectors.index.edge_index import EdgeIndex

        return EdgeIndex(path=path, dim=DIM)
    from connectors.index.qdrant_index import QdrantIndex

    return QdrantIndex(collection="bench", dim=DIM, path=path)


def measure(index, queries, audience, *, limit, candidates, warmup) -> dict:
    for q in queries[:warmup]:
        index.search(q, audience, limit=limit, candidates=candidates)
    ms = []
    n_hits = 0
    for q in queries:
        t = time.perf_counter()
        hits = index.search(q, audience, limit=limit, candidates=candidates)
        ms.append((time.perf_counter() - t) * 1000)
        n_hits += len(hits)
    return {**latency_summary(ms), "queries": len(ms), "mean_hits": round(n_hits / len(ms), 1)}


def run(impl: str, args) -> dict:
    tmp = None
    if args.path:
        path = Path(args.path) / impl
    else:
        tmp = Path(tempfile.mkdtemp(prefix=f"index-latency-{impl}-"))
        path = tmp / "index"
    out: dict = {"impl": impl, "points": args.points}
    index = open_index(impl, path)
    try:
        index.ensure_collection()
        if index.count() != args.points:
            t = time.perf_counter()
            for chunks, dense, sp in batches(args.points, args.seed, args.terms):
                index.upsert(chunks, dense, sp)
            out["load_s"] = round(time.perf_counter() - t, 1)
        else:
            out["load_s"] = "reused"
        out["count"] = index.count()

        qrng = np.random.default_rng(args.seed + 1)
        queries = []
        for _ in range(args.queries):
            v = qrng.normal(size=DIM)
            queries.append(Query(dense=(v / np.linalg.norm(v)).tolist(), sparse=sparse(qrng, args.query_terms,
                                                                                         args.terms)))
        dense_only = [Query(dense=q.dense, sparse=None) for q in queries]
        audience = Audience.of(Principal.of("bench@example.com", ["g1", "g2", "g3"]))
        kw = {"limit": args.limit, "candidates": args.candidates, "warmup": min(args.warmup, len(queries))}

        label = "as_loaded" if impl == "edge" else "scan"
        out[label] = {"hybrid": measure(index, queries, audience, **kw),
                      "dense_only": measure(index, dense_only, audience, **kw)}
        if impl == "edge" and not args.no_optimize:
            t = time.perf_counter()
            out["optimize_changed"] = index.optimize()
            out["optimize_s"] = round(time.perf_counter() - t, 1)
            out["optimized"] = {"hybrid": measure(index, queries, audience, **kw),
                                "dense_only": measure(index, dense_only, audience, **kw)}
    finally:
        index.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--impl", choices=["edge", "local", "both"], default="both")
    ap.add_argument("--limit", type=int, default=8, help="hits returned (the pipeline's top_k)")
    ap.add_argument("--candidates", type=int, default=40, help="per-prefetch limit")
    ap.add_argument("--query-terms", type=int, default=6, help="non-zeros of the sparse query")
    ap.add_argument("--terms", choices=["uniform", "zipf"], default="uniform",
                    help="how sparse term ids are drawn from the vocabulary")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-optimize", action="store_true", help="edge: skip the optimize() pass")
    ap.add_argument("--path", help="keep the indexes under this folder and reuse them on the next run")
    args = ap.parse_args(argv)

    impls = ["edge", "local"] if args.impl == "both" else [args.impl]
    report = {
        "setup": {"dim": DIM, "vocab": VOCAB, "sparse_nnz": "15-25", "terms": args.terms, "groups": len(GROUPS),
                  "public_fraction": 0.2, "principal_groups": 3, "visible_fraction_expected": 0.44,
                  "limit": args.limit, "candidates": args.candidates, "query_terms": args.query_terms},
        "machine": machine_info("qdrant-edge-py", "qdrant-client"),
        "results": [run(impl, args) for impl in impls],
    }
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
