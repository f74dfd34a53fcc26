"""Retrieval evaluation on a BEIR-format folder: corpus.jsonl, queries.jsonl, qrels/test.tsv.

The corpus goes through the real ingestion path into a throwaway embedded index;
each query is embedded and searched the way the bot does (as a person who may
see everything), and the ranked document ids are scored with standard metrics.
"""

from __future__ import annotations

import csv
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, cast

from tqdm import tqdm

from chatops.access import Audience, Principal
from usecases.ir_metrics import mrr_at_k, ndcg_at_k, percentile, recall_at_k
from connectors.index.base import Hit, VectorIndex
from connectors.embeddings.base import Embedder
from connectors.index.retriever import Retriever, Strategy
from connectors.sources.beir import BeirSource
from usecases.ingest import ingest

EVERYONE = Audience.of(Principal.of("evaluator@local", []))  # documents are ingested public


@dataclass
class BeirSet:
    folder: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    @classmethod
    def load(cls, folder: Path, split: str = "test") -> "BeirSet":
        folder = Path(folder)
        qrels_path = folder / "qrels" / f"{split}.tsv"
        for needed in (folder / "corpus.jsonl", folder / "queries.jsonl", qrels_path):
            if not needed.exists():
                raise FileNotFoundError(f"{needed} not found: {folder} is not a BEIR folder")
        qrels: dict[str, dict[str, int]] = {}
        with qrels_path.open() as fh:
            for row in csv.reader(fh, delimiter="\t"):
                if not row or row[0] in ("query-id", "query_id"):
                    continue
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
        queries = {}
        with (folder / "queries.jsonl").open() as fh:
            for line in fh:
                q = json.loads(line)
                if str(q["_id"]) in qrels:
                    queries[str(q["_id"])] = q["text"]
        return cls(folder, queries, qrels)


def ranked_documents(hits: Iterable[Hit], k: int) -> list[str]:
    seen: list[str] = []
    for hit in hits:
        if hit.chunk.doc_id not in seen:
            seen.append(hit.chunk.doc_id)
        if len(seen) == k:
            break
    return seen


def score(beir: BeirSet, retriever: Retriever, k: int = 10, progress: bool = False,
          desc: str = "queries") -> dict[str, Any]:
    ndcg, recall, mrr, latency = [], [], [], []
    for qid, text in tqdm(beir.queries.items(), desc=desc, unit="q", file=sys.stderr, disable=not progress):
        start = time.perf_counter()
        hits = retriever.search(retriever.embed(text), EVERYONE, limit=k * 3)
        latency.append((time.perf_counter() - start) * 1000)
        ranked = ranked_documents(hits, k)
        ndcg.append(ndcg_at_k(ranked, beir.qrels[qid], k))
        recall.append(recall_at_k(ranked, beir.qrels[qid], k))
        mrr.append(mrr_at_k(ranked, beir.qrels[qid], k))
    n = len(ndcg) or 1
    return {f"ndcg@{k}": round(sum(ndcg) / n, 4), f"recall@{k}": round(sum(recall) / n, 4),
            f"mrr@{k}": round(sum(mrr) / n, 4), "queries": len(ndcg),
            "latency_ms": {"p50": round(percentile(latency, 0.5), 2), "p99": round(percentile(latency, 0.99), 2)}}


def evaluate(folder: Path, *, embedder: Embedder, index_factory: Callable[[Path, int], VectorIndex],
             strategies: list[str], k: int = 10,
             dense_weight: float = 0.95, candidates: int = 50, progress: bool = False,
             index_dir: Path | None = None) -> dict[str, Any]:
    """Ingest ``folder`` into an index and score each strategy; {strategy: metrics}.

    The index is thrown away unless ``index_dir`` is given; ingesting into a kept index again
    skips every unchanged document, so repeated experiments cost only the queries."""
    beir = BeirSet.load(folder)
    with tempfile.TemporaryDirectory(prefix="chatops-eval-") as tmp:
        index = index_factory(Path(index_dir) if index_dir else Path(tmp), embedder.dim)
        try:
            ingest(BeirSource(folder), index, embedder, progress=progress)
            index.optimize()
            results: dict[str, Any] = {}
            for strategy in strategies:
                # the names the CLI offers are STRATEGIES
                retriever = Retriever(index, embedder, strategy=cast(Strategy, strategy), dense_weight=dense_weight,
                                      candidates=candidates)
                results[strategy] = score(beir, retriever, k, progress=progress, desc=strategy)
            return results
        finally:
            index.close()
