"""Re-embedding the index into a new generation (``chatops index rebuild``, issue 23): what it costs.

    .venv/bin/python benchmarks/rebuild.py [--corpus ../shared/data/handbook-37signals] [--copies 4] \\
        [--server-delay 0.0] [--json]

Ingests ``--copies`` copies of the corpus folder with the local model into a temporary data folder
(``chatops ingest``), then times, each as its own ``chatops`` process:

1. ``index rebuild --embedder openai:text-embedding-3-small`` against the loopback /v1/embeddings
   stand-in (``standins/fake_embeddings.py``; every request takes ``--server-delay`` s more at the
   server): chunks re-embedded per second, the whole command's time (model load, copy, check, switch);
2. the same command once more (nothing to do), and ``index switch chatops`` (the rollback);
3. ``index rebuild`` back to the local model from the openai generation's stored text (the local model's
   throughput: the CPU's).

The stand-in's own time per request (hashing in Python) is in the numbers, as a server's would be.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from standins.fake_embeddings import FakeEmbeddings  # noqa: E402

MODEL = "text-embedding-3-small"


def run(env: dict, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).parent / "chatops"), *args], env=env, capture_output=True,
                          text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"chatops {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return time.perf_counter() - started, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared/data/handbook-37signals"))
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--server-delay", type=float, default=0.0)
    parser.add_argument("--json", action="store_true")
    a = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeEmbeddings({MODEL: 1536}) as server:
        server.delay = a.server_delay
        corpus = Path(tmp) / "corpus"
        for i in range(a.copies):
            shutil.copytree(a.corpus, corpus / f"copy{i}")
        (corpus / ".acl.yml").write_text("- match: '**'\n  public: true\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATOPS_", "QDRANT_"))}
        env.update(CHATOPS_DATA_DIR=str(Path(tmp) / "data"), CHATOPS_EMBEDDING_URL=server.base_url,
                   CHATOPS_EMBEDDING_API_KEY="sk-bench", CHATOPS_EMBEDDING_DIMENSIONS="512",
                   REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
        ingest_s, _ = run(env, "ingest", str(corpus))
        status = json.loads(run(env, "index", "status", "--json")[1].stdout)
        points = status["generations"][0]["points"]
        to_openai_s, done = run(env, "index", "rebuild", "--embedder", f"openai:{MODEL}")
        rate = re.search(r"at (\d+)/s", done.stdout)
        again_s, _ = run(env, "index", "rebuild", "--embedder", f"openai:{MODEL}")
        switch_s, _ = run(env, "index", "switch", "chatops")
        run(env, "index", "switch", f"chatops__openai-{MODEL}-512")
        to_local_s, back = run(env, "index", "rebuild", "--embedder", "local")
        out = {"chunks": points, "documents": status["generations"][0]["documents"], "ingest_s": round(ingest_s, 1),
               "rebuild_to_openai_s": round(to_openai_s, 1),
               "openai_chunks_per_s": int(rate.group(1)) if rate else None,
               "nothing_to_do_s": round(again_s, 2), "switch_s": round(switch_s, 2),
               "rebuild_to_local_s": round(to_local_s, 1),
               "local_chunks_per_s": int(m.group(1)) if (m := re.search(r"at (\d+)/s", back.stdout)) else None,
               "server_delay_s": a.server_delay, "embedding_requests": len(server.requests)}
    if a.json:
        print(json.dumps(out))
        return
    for k, v in out.items():
        print(f"{k:>22}: {v}")


if __name__ == "__main__":
    main()
