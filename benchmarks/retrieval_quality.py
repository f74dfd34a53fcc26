"""Retrieval quality on every BEIR set in a folder, per stage, in one run.

    .venv/bin/python benchmarks/retrieval_quality.py --beir ../shared/data/beir --index-dir /tmp/rq

Each set goes through the real ingestion path into the embedded index (``CHATOPS_INDEX_ENGINE``) (kept under
``--index-dir/<set>`` when given, so a second run costs only the queries) and is scored with
every retrieval strategy, as `chatops eval retrieval SET --stage all` does. ``business-reports``
is skipped by default: its judgements do not match its corpus. Prints a Markdown table on stderr
and one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatops_app.container import Container  # noqa: E402
from chatops.settings import Settings  # noqa: E402
from connectors.index.retriever import STRATEGIES  # noqa: E402
from connectors.index.registry import engine_for  # noqa: E402
from usecases.evaluate import evaluate  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--beir", type=Path, required=True, help="a folder of BEIR sets (one sub-folder each)")
    ap.add_argument("--skip", nargs="*", default=["business-reports"])
    ap.add_argument("--index-dir", type=Path, help="keep each set's index here and reuse it")
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args(argv)

    settings = Settings.load()
    container = Container(settings)
    sets = sorted(p for p in args.beir.iterdir() if (p / "corpus.jsonl").exists() and p.name not in args.skip)
    results = {}
    for folder in sets:
        print(f"[bench] {folder.name}", file=sys.stderr, flush=True)
        results[folder.name] = evaluate(
            folder, embedder=container.embedder, index_factory=lambda path, dim: engine_for(settings).open(path=path, dim=dim, collection="eval"),
            strategies=list(STRATEGIES), k=args.k, dense_weight=settings.dense_weight,
            candidates=settings.candidates, progress=True,
            index_dir=args.index_dir / folder.name if args.index_dir else None)
    k = args.k
    print(f"\n| set | stage | nDCG@{k} | recall@{k} | MRR@{k} | p50 ms | p99 ms |", file=sys.stderr)
    print("|---|---|---|---|---|---|---|", file=sys.stderr)
    for name, stages in results.items():
        for stage, m in stages.items():
            mark = " (default)" if stage == settings.retrieval else ""
            print(f"| {name} | {stage}{mark} | {m[f'ndcg@{k}']:.4f} | {m[f'recall@{k}']:.4f} | {m[f'mrr@{k}']:.4f} "
                  f"| {m['latency_ms']['p50']:.1f} | {m['latency_ms']['p99']:.1f} |", file=sys.stderr)
    print(json.dumps({"default": settings.retrieval, "dense_weight": settings.dense_weight,
                      "skipped": args.skip, "results": results}, indent=2))
    container.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
