"""Helpers shared by the index benchmarks: seeded synthetic chunks, latency summaries,
machine facts. No embedding model: dense vectors are random unit vectors.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import uuid
from importlib import metadata
from pathlib import Path
from typing import Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatops.access import Acl  # noqa: E402
from connectors.index.base import Chunk  # noqa: E402

DIM = 384
_NS = uuid.UUID("3d3f1f8a-61f5-4b0e-8a57-0c7b0f1e2a44")


def unit_vectors(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    """``n`` random unit vectors (float32, shape (n, dim)), uniform on the sphere."""
    v = rng.normal(size=(n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def point_id(i: int) -> str:
    """The stable point id (a UUID string) of synthetic point ``i``."""
    return str(uuid.uuid5(_NS, str(i)))


def synthetic_chunk(i: int, acl: Acl) -> Chunk:
    """Point ``i`` of a synthetic corpus: four chunks per document, id :func:`point_id`."""
    return Chunk(id=point_id(i), source="fs:/bench", doc_id=f"doc/{i // 4}.md",
                 title=f"Doc {i // 4}", heading=f"Part {i % 4}", text=f"synthetic chunk {i}",
                 position=i % 4, acl=acl, doc_hash=f"h{i // 4}")


def latency_summary(ms: Sequence[float]) -> dict:
    a = np.asarray(ms, dtype=float)
    return {"p50_ms": round(float(np.percentile(a, 50)), 2), "p99_ms": round(float(np.percentile(a, 99)), 2),
            "mean_ms": round(float(a.mean()), 2), "max_ms": round(float(a.max()), 2)}


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def rss_mb() -> float:
    """Resident set size of this process now (Linux: /proc/self/status; elsewhere the peak)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return peak_rss_mb()


def machine_info(*packages: str) -> dict:
    info = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    for name in packages:
        info[name.replace("-", "_")] = metadata.version(name)
    return info
