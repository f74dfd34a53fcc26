"""The gauges a worker sets when Prometheus scrapes it (``/metrics``, ``workers/health.py``):
the queues' depth, the index's size, the sources' freshness. The web process sets only the
queues' depth."""

from __future__ import annotations

from typing import Callable

from chatops import metrics


def refresh_worker_gauges(*, queue_depths: Callable[[], None], index_embedded: bool, index_opened: bool,
                          index_count: Callable[[], int], freshness: Callable[[], object] | None = None) -> None:
    """Set the worker's gauges. An embedded index admits one opener: it is counted only by the
    process that opened it to answer (a pool process, with prefork: it set the gauge when it
    opened it), never opened here only for this. ``freshness`` sets each source's ACL age and
    staleness (None: no sources)."""
    queue_depths()
    if not index_embedded or index_opened:
        metrics.INDEX_POINTS.set(index_count())
    if freshness is not None:
        freshness()
