"""Recall of filtered approximate search (HNSW) against exact filtered search, on EdgeIndex.

An ACL filter that matches few points is where an approximate index silently
loses results: the graph walk has to get past many points the filter rejects.
This builds an EdgeIndex of N synthetic points (seeded random unit 384-d dense
vectors, no sparse vectors, no embedding model; ``--data clustered`` draws them
around 1,000 random centres instead, cosine ~0.7 to their centre, closer to real
embeddings), builds HNSW with
``EdgeIndex.optimize()``, and for each selectivity runs the same dense-only
queries twice, through the normal (approximate) path and with the per-call
``exact=True`` override, for one principal whose single group matches that
fraction of the points:

* each point draws a seeded uniform ``u``; it is in group ``p01`` if u < 0.01,
  ``p10`` if u < 0.10, ``p50`` if u < 0.50 (one group per ``--selectivity``,
  named ``p`` + percent; a point can be in several), otherwise only in ``rest``
  so that every point is visible to somebody; no public points, no user ACLs;
* a query is a stored point's vector plus noise (``--noise`` times a random
  unit vector), renormalised; sources are drawn uniformly, so for selectivity s
  the point the query was made from is itself visible only with probability s.

Reported per selectivity: recall@k = |approx ∩ exact| / |exact| averaged over
queries (plus the worst query and how many fell short), p50/p99 latency of both
searches, and a check of the exact search against numpy brute force; overall:
load and optimize times, segment / indexed-vector counts, peak RSS.

    .venv/bin/python benchmarks/filtered_recall.py --points 20000
    .venv/bin/python benchmarks/filtered_recall.py --points 100000 --json --path /tmp/fr100k
    # the engine's own default threshold, i.e. EdgeIndex before FULL_SCAN_THRESHOLD_KB:
    .venv/bin/python benchmarks/filtered_recall.py --points 20000 --full-scan-threshold-kb 10000

Reading the numbers: the engine does not use HNSW for a filter whose estimated
cardinality is below ``full_scan_threshold`` (EdgeIndex's default
:data:`~connectors.index.edge_index.FULL_SCAN_THRESHOLD_KB`, 200,000 KB, is about
133,000 vectors of 384 floats; the engine's own default, 10,000 KB, about 6,666);
it scans the points the payload index selects, which is exact: ``search_path``
in the output says which path the size of the filter implies. Uniform random
vectors are a hard case for HNSW (no cluster structure; the 2nd..k-th neighbours
are barely closer than everything else), so recall on them is a lower bound for
real embeddings.
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

from _synthetic import (DIM, latency_summary, machine_info, peak_rss_mb, point_id,  # noqa: E402
                        synthetic_chunk, unit_vectors)

from chatops.access import Acl, Audience, Principal  # noqa: E402
from connectors.index.base import Query, SparseVec  # noqa: E402
from connectors.index.edge_index import FULL_SCAN_THRESHOLD_KB, EdgeIndex  # noqa: E402

DEFAULT_SELECTIVITIES = (0.01, 0.1, 0.5)
REST = "rest"
META = "filtered_recall.json"
NO_SPARSE = SparseVec((), ())
BATCH = 1000
CENTRES = 1000  # --data clustered


def progress(msg: str) -> None:
    print(f"[filtered_recall {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def group_name(selectivity: float) -> str:
    return f"p{selectivity * 100:02g}"


def threshold_points(kb: int) -> int:
    """The engine's full_scan_threshold (KB of vectors) in vectors of DIM float32."""
    return kb * 1024 // (DIM * 4)


def corpus(n: int, seed: int, data: str = "uniform"):
    """(start, dense, u) in batches: dense float32 (m, DIM) unit vectors, u uniform in [0, 1).

    ``uniform``: uniform on the sphere. ``clustered``: a random one of CENTRES random unit
    centres plus Gaussian noise of norm ~1, renormalised (cosine ~0.7 to the centre).
    """
    rng = np.random.default_rng(seed)
    centres = unit_vectors(np.random.default_rng(seed + 100), CENTRES) if data == "clustered" else None
    for start in range(0, n, BATCH):
        m = min(BATCH, n - start)
        if centres is None:
            dense = unit_vectors(rng, m)
        else:
            dense = centres[rng.integers(0, CENTRES, m)] + rng.normal(size=(m, DIM)).astype(np.float32) / np.sqrt(DIM)
            dense /= np.linalg.norm(dense, axis=1, keepdims=True)
        yield start, dense, rng.random(m)


def acl_for(u: float, selectivities) -> Acl:
    groups = [group_name(s) for s in selectivities if u < s]
    return Acl.of(groups=groups or [REST])


def make_queries(sources_vecs: np.ndarray, seed: int, noise: float) -> np.ndarray:
    rng = np.random.default_rng(seed + 2)
    q = sources_vecs + noise * unit_vectors(rng, len(sources_vecs))
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def brute_force(n: int, seed: int, data: str, queries: np.ndarray, selectivities, k: int) -> dict:
    """Exact filtered top-k by numpy, streaming over the corpus: selectivity -> (ids per query, visible count)."""
    nq = len(queries)
    best = {s: (np.full((nq, k), -np.inf, dtype=np.float32), np.full((nq, k), -1, dtype=np.int64))
            for s in selectivities}
    visible = dict.fromkeys(selectivities, 0)
    for start, dense, u in corpus(n, seed, data):
        scores = queries @ dense.T  # (nq, m)
        ids = np.arange(start, start + len(u))
        for s in selectivities:
            mask = u < s
            visible[s] += int(mask.sum())
            if not mask.any():
                continue
            b_scores, b_ids = best[s]
            cat_s = np.concatenate([b_scores, scores[:, mask]], axis=1)
            cat_i = np.concatenate([b_ids, np.broadcast_to(ids[mask], (nq, int(mask.sum())))], axis=1)
            top = np.argpartition(-cat_s, k - 1, axis=1)[:, :k]
            best[s] = (np.take_along_axis(cat_s, top, 1), np.take_along_axis(cat_i, top, 1))
    return {s: ([{point_id(int(i)) for i in row if i >= 0} for row in best[s][1]], visible[s])
            for s in selectivities}


def shard_info(index: EdgeIndex) -> dict:
    info = index._shard.info()  # a benchmark may look inside: segment layout is not in the protocol
    return {"segments": info.segments_count, "points": info.points_count,
            "indexed_vectors": info.indexed_vectors_count}


def timed_searches(index, queries, audience, k, *, exact: bool | None, warmup: int):
    kw = {"limit": k, "candidates": k, "mode": "dense"}
    if exact is not None:
        kw["exact"] = exact
    for q in queries[:warmup]:
        index.search(q, audience, **kw)
    results, ms = [], []
    for q in queries:
        t = time.perf_counter()
        hits = index.search(q, audience, **kw)
        ms.append((time.perf_counter() - t) * 1000)
        results.append([h.chunk.id for h in hits])
    return results, ms


def recall_stats(got: list[list[str]], expected: list[set[str]]) -> dict:
    r = np.array([len(set(g) & e) / len(e) if e else 1.0 for g, e in zip(got, expected)])
    return {"mean": round(float(r.mean()), 4), "min": round(float(r.min()), 2),
            "queries_below_1": int((r < 1.0).sum())}


def open_or_build(args, path: Path, out: dict) -> EdgeIndex:
    meta = {"points": args.points, "seed": args.seed, "dim": DIM, "data": args.data,
            "selectivities": sorted(args.selectivity)}
    meta_path = path.parent / META
    index = EdgeIndex(path=path, dim=DIM, full_scan_threshold_kb=args.full_scan_threshold_kb,
                      quantization=not args.no_quantization)
    try:
        index.ensure_collection()
        have = index.count()
        if have:
            old = json.loads(meta_path.read_text()) if meta_path.exists() else None
            if old != meta or have != args.points:
                raise SystemExit(f"{path} holds a different corpus ({have} points, {old}); "
                                 f"this run wants {meta}: use another --path or delete it")
            progress(f"reusing the index at {path} ({have} points)")
            out["load_s"] = "reused"
            return index
        progress(f"loading {args.points} points into {path} ...")
        meta_path.write_text(json.dumps(meta))
        t = time.perf_counter()
        step = max(args.points // 10, BATCH)
        for start, dense, u in corpus(args.points, args.seed, args.data):
            chunks = [synthetic_chunk(start + j, acl_for(float(u[j]), args.selectivity)) for j in range(len(u))]
            index.upsert(chunks, dense.tolist(), [NO_SPARSE] * len(chunks))
            done = start + len(u)
            if done % step < BATCH or done == args.points:
                progress(f"  {done}/{args.points} points ({time.perf_counter() - t:.0f} s)")
        out["load_s"] = round(time.perf_counter() - t, 1)
        return index
    except BaseException:
        index.close()
        raise


def run(args, base: Path) -> dict:
    out: dict = {"points": args.points}
    index = open_or_build(args, base / "edge", out)
    try:
        out["peak_rss_mb_after_load"] = peak_rss_mb()
        out["before_optimize"] = shard_info(index)
        progress("optimize(): building HNSW (blocking, CPU-heavy; minutes at 100k points) ...")
        t = time.perf_counter()
        out["optimize_changed"] = index.optimize()
        out["optimize_s"] = round(time.perf_counter() - t, 1)
        out["after_optimize"] = shard_info(index)
        out["peak_rss_mb_after_optimize"] = peak_rss_mb()
        progress(f"optimize() took {out['optimize_s']} s (changed: {out['optimize_changed']}); "
                 f"shard: {out['after_optimize']}")
        if out["after_optimize"]["indexed_vectors"] < args.points:
            progress("WARNING: fewer indexed vectors than points: part of the shard has no HNSW, "
                     "searches there are exact scans")

        # queries: stored vectors plus noise (a second pass over the seeded corpus finds the sources)
        nq = min(args.queries, args.points)
        sources = np.sort(np.random.default_rng(args.seed + 1).choice(args.points, nq, replace=False))
        src_vecs = np.empty((nq, DIM), dtype=np.float32)
        for start, dense, _ in corpus(args.points, args.seed, args.data):
            sel = (sources >= start) & (sources < start + len(dense))
            src_vecs[sel] = dense[sources[sel] - start]
        qmat = make_queries(src_vecs, args.seed, args.noise)
        queries = [Query(dense=v.tolist(), sparse=None) for v in qmat]
        progress(f"numpy brute force for {nq} queries x {len(args.selectivity)} selectivities ...")
        truth = brute_force(args.points, args.seed, args.data, qmat, args.selectivity, args.k)

        warmup = min(args.warmup, nq)
        out["selectivities"] = []
        for s in args.selectivity:
            group = group_name(s)
            audience = Audience.of(Principal.of("bench@example.com", [group]))
            expected_np, visible = truth[s]
            progress(f"selectivity {s:g} (group {group}, {visible} visible points): approximate ...")
            approx, approx_ms = timed_searches(index, queries, audience, args.k, exact=None, warmup=warmup)
            progress(f"selectivity {s:g}: exact ...")
            exact, exact_ms = timed_searches(index, queries, audience, args.k, exact=True, warmup=warmup)
            expected = [set(e) for e in exact]
            row = {
                "selectivity": s, "group": group, "visible_points": visible,
                "visible_fraction": round(visible / args.points, 4),
                "search_path": ("filtered HNSW" if visible >= threshold_points(args.full_scan_threshold_kb)
                                else "exact scan (payload index)"),
                "recall_at_k": recall_stats(approx, expected),
                "approx": {**latency_summary(approx_ms), "mean_hits": round(float(np.mean([len(a) for a in approx])), 2)},
                "exact": {**latency_summary(exact_ms), "mean_hits": round(float(np.mean([len(e) for e in exact])), 2)},
                "exact_vs_numpy_recall": recall_stats(exact, expected_np)["mean"],
                "approx_vs_numpy_recall": recall_stats(approx, expected_np)["mean"],
            }
            row["meets_target"] = row["recall_at_k"]["mean"] >= args.target
            out["selectivities"].append(row)
            progress(f"selectivity {s:g}: recall@{args.k} {row['recall_at_k']['mean']:.4f} "
                     f"(min {row['recall_at_k']['min']}, {row['recall_at_k']['queries_below_1']} queries < 1); "
                     f"approx p50/p99 {row['approx']['p50_ms']}/{row['approx']['p99_ms']} ms, "
                     f"exact p50/p99 {row['exact']['p50_ms']}/{row['exact']['p99_ms']} ms; "
                     f"exact vs numpy {row['exact_vs_numpy_recall']}")
        out["meets_target"] = all(r["meets_target"] for r in out["selectivities"])
        out["peak_rss_mb"] = peak_rss_mb()
    finally:
        index.close()
    return out


def print_table(report: dict) -> None:
    r = report["result"]
    k = report["setup"]["k"]
    print(f"{r['points']} points; load {r['load_s']} s; optimize {r['optimize_s']} s "
          f"(changed: {r['optimize_changed']}); shard after optimize: {r['after_optimize']}; "
          f"peak RSS {r['peak_rss_mb']} MB")
    print(f"{'select.':>8} {'visible':>8} {'recall@' + str(k):>10} {'min':>5} {'<1':>4} "
          f"{'approx p50':>11} {'p99':>7} {'exact p50':>10} {'p99':>7} {'exact=np':>9}")
    for s in r["selectivities"]:
        rc = s["recall_at_k"]
        print(f"{s['selectivity']:>8g} {s['visible_points']:>8} {rc['mean']:>10.4f} {rc['min']:>5.2f} "
              f"{rc['queries_below_1']:>4} {s['approx']['p50_ms']:>11.2f} {s['approx']['p99_ms']:>7.2f} "
              f"{s['exact']['p50_ms']:>10.2f} {s['exact']['p99_ms']:>7.2f} {s['exact_vs_numpy_recall']:>9.4f}")
    print(f"target recall@{k} >= {report['setup']['target']}: {'met' if r['meets_target'] else 'NOT met'}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=10, help="hits per search; recall@k")
    ap.add_argument("--selectivity", type=float, action="append",
                    help="fraction of points the filter matches (repeatable; default 0.01 0.1 0.5)")
    ap.add_argument("--data", choices=["uniform", "clustered"], default="uniform",
                    help="dense vectors: uniform on the sphere, or around 1,000 random centres")
    ap.add_argument("--full-scan-threshold-kb", type=int, default=FULL_SCAN_THRESHOLD_KB,
                    help="EdgeIndex full_scan_threshold_kb (default: EdgeIndex's, %(default)s; "
                         "the engine's own default is 10000)")
    ap.add_argument("--no-quantization", action="store_true",
                    help="float vectors only (EdgeIndex(quantization=False)); default: int8 + rescoring")
    ap.add_argument("--noise", type=float, default=0.3, help="query = stored vector + noise * random unit vector")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--target", type=float, default=0.99, help="recall@k every selectivity should reach")
    ap.add_argument("--path", help="keep the index under this folder and reuse it on the next run")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    args = ap.parse_args(argv)
    args.selectivity = sorted(set(args.selectivity or DEFAULT_SELECTIVITIES))
    if not all(0 < s <= 1 for s in args.selectivity):
        ap.error("--selectivity must be in (0, 1]")
    if len({group_name(s) for s in args.selectivity}) != len(args.selectivity):
        ap.error("two selectivities map to the same group name")

    tmp = None
    if args.path:
        base = Path(args.path)
        base.mkdir(parents=True, exist_ok=True)
    else:
        tmp = base = Path(tempfile.mkdtemp(prefix="filtered-recall-"))
    try:
        result = run(args, base)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    report = {
        "setup": {"dim": DIM, "points": args.points, "queries": min(args.queries, args.points), "k": args.k,
                  "mode": "dense", "data": args.data, "selectivities": args.selectivity, "noise": args.noise,
                  "seed": args.seed, "target": args.target, "full_scan_threshold_kb": args.full_scan_threshold_kb,
                  "quantization": "off" if args.no_quantization else "int8, rescore x2",
                  "full_scan_threshold_points": threshold_points(args.full_scan_threshold_kb),
                  "acl": "one group per selectivity (u < s), else 'rest'; no public points",
                  "principal": "bench@example.com in the one group"},
        "machine": machine_info("qdrant-edge-py"),
        "result": result,
    }
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
