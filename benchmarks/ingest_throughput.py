"""Ingestion throughput against the embedding model's own throughput, and peak memory.

    .venv/bin/python benchmarks/ingest_throughput.py --beir ../shared/data/beir/dbpedia --docs 2000

Each measurement runs in its own process so its peak RSS is its own:
  * ``embed``: the dense model alone on the chunks' texts (``Embedder.embed_dense``: sorted by
    length, the same batches as ingestion);
  * ``ingest``: the whole path — read, chunk, dense + BM25 embedding, upserts into a fresh
    embedded index.
The ratio ingest/embed is the share of time the pipeline spends on anything but the model.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _texts(beir: Path, docs: int) -> list[str]:
    from connectors.sources.beir import BeirSource
    from connectors.sources.chunking import chunk_document

    source = BeirSource(beir, limit=docs)
    return [c.embedding_text() for d in source.documents() for c in chunk_document(d, source.source_id)]


def run_embed(beir: Path, docs: int, batch: int) -> dict:
    from chatops_app.container import Container
    from chatops.settings import Settings

    texts = _texts(beir, docs)
    embedder = Container(Settings.load(CHATOPS_EMBEDDING_BATCH_SIZE=str(batch))).embedder
    start = time.perf_counter()
    embedder.embed_dense(texts)
    seconds = time.perf_counter() - start
    return {"chunks": len(texts), "seconds": round(seconds, 2), "chunks_per_s": round(len(texts) / seconds, 1)}


def run_ingest(beir: Path, docs: int, batch: int) -> dict:
    from chatops_app.container import Container
    from chatops.settings import Settings
    from connectors.sources.beir import BeirSource
    from usecases.ingest import ingest

    with tempfile.TemporaryDirectory() as tmp:
        container = Container(Settings.load(QDRANT_PATH=tmp, CHATOPS_EMBEDDING_BATCH_SIZE=str(batch)))
        container.embedder  # noqa: B018 - load the model before the clock starts, as embed does
        start = time.perf_counter()
        report = ingest(BeirSource(beir, limit=docs), container.index, container.embedder)
        seconds = time.perf_counter() - start
        container.close()
    return {"chunks": report.chunks, "seconds": round(seconds, 2), "chunks_per_s": round(report.chunks / seconds, 1)}


def child(kind: str, beir: Path, docs: int, batch: int) -> None:
    result = (run_embed if kind == "embed" else run_ingest)(beir, docs, batch)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--beir", type=Path, required=True, help="a BEIR folder (corpus.jsonl)")
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--child", choices=["embed", "ingest"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.beir, args.docs, args.batch)
        return
    out = {}
    for kind in ("embed", "ingest"):
        print(f"[bench] {kind}: {args.docs} documents", file=sys.stderr, flush=True)
        done = subprocess.run([sys.executable, __file__, "--beir", str(args.beir), "--docs", str(args.docs),
                               "--batch", str(args.batch), "--child", kind],
                              capture_output=True, text=True, check=True)
        out[kind] = json.loads(done.stdout.strip().splitlines()[-1])
    out["ingest_vs_embed"] = round(out["ingest"]["chunks_per_s"] / out["embed"]["chunks_per_s"], 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
