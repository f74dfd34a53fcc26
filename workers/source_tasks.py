"""Source syncs on the workers: one window per task, on the ingest queue, chained.

A sync of a source (``changes``, ``permissions`` or ``full``) runs as a **chain** of
``source_sync`` tasks: each runs one window (``CHATOPS_SYNC_WINDOW_ITEMS`` items or
``CHATOPS_SYNC_WINDOW_SECONDS``) and, if there is more, queues the next at the back of the
ingest queue - so windows of other sources (and the question queue, which every worker also
consumes) get their turn, and one huge source cannot starve the rest.

At most one chain per (source, mode) is alive: its first task claims
``{prefix}:sources:chain:{name}:{mode}`` (refreshed by each window, so a chain whose worker
died frees it within ``CHAIN_TTL``). A sync asked for while a chain is alive (the scheduler's
next tick, a Graph notification) sets ``...:again``, and the chain runs once more when it ends
instead of starting a second chain beside it. The per-source lease in the store still
guarantees one window per source at a time, whatever the mode.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Callable

import redis

from chatops import keys, metrics
from usecases.sync import MODES, Budget, Sync, SyncReport
from workers.tasks import SOURCE_SYNC

log = logging.getLogger(__name__)

CHAIN_TTL = 900   # seconds without a window before a chain's claim lapses


class SourceChains:
    """Which syncs are under way (Redis), and how a new one is asked for."""

    def __init__(self, client: redis.Redis, prefix: str, dispatch: Callable[[str, dict], None]):
        self.redis = client
        self.prefix = prefix
        self.dispatch = dispatch

    def _key(self, name: str, mode: str) -> str:
        return keys.source_chain(self.prefix, name, mode)

    def request(self, name: str, mode: str, *, cid: str | None = None) -> bool:
        """Start a chain for this sync, or ask the live one to run again when it ends; True if a
        chain was started."""
        if mode not in MODES:
            raise ValueError(f"unknown sync mode {mode!r}")
        chain = uuid.uuid4().hex[:12]
        if self.redis.set(self._key(name, mode), chain, nx=True, ex=CHAIN_TTL):
            self.dispatch(SOURCE_SYNC.kind, {"source": name, "mode": mode, "chain": chain, "cid": cid or chain})
            return True
        self.redis.set(keys.source_chain_again(self.prefix, name, mode), 1, ex=CHAIN_TTL)
        return False

    def owns(self, name: str, mode: str, chain: str) -> bool:
        """This chain is the live one (and keeps its claim for another CHAIN_TTL)."""
        key = self._key(name, mode)
        if self.redis.get(key) not in (chain, chain.encode()):
            return False
        self.redis.expire(key, CHAIN_TTL)
        return True

    def end(self, name: str, mode: str, chain: str) -> None:
        """The chain is over; if a sync was asked for meanwhile, start it now."""
        key = self._key(name, mode)
        if self.redis.get(key) in (chain, chain.encode()):
            self.redis.delete(key)
        if self.redis.delete(keys.source_chain_again(self.prefix, name, mode)):
            self.request(name, mode)


@dataclass
class SourceSyncHandler:
    """Runs one window of a chain (workers.celery_app.Handler)."""

    sync_for: Callable[[str], Sync]          # the source's sync, against this worker's index
    chains: SourceChains
    budget: Callable[[], Budget]
    watch: Callable[[str], dict] | None = None   # create/renew a source's Graph subscriptions ("*": all)

    def handle(self, payload: dict) -> None:
        name, mode, chain = payload["source"], payload["mode"], payload.get("chain")
        if mode == "subscriptions":
            done = self.watch(name) if self.watch is not None else {}
            log.info("graph subscriptions checked", extra={"source": name, "result": done})
            if done:   # catch up on what happened while the subscriptions were not there
                for source in done:
                    self.chains.request(source, "changes", cid=payload.get("cid"))
            return
        if chain is None:   # the scheduler's tick (or a notification): start a chain, or run again
            started = self.chains.request(name, mode, cid=payload.get("cid"))
            log.info("source sync requested", extra={"source": name, "mode": mode, "started": started})
            return
        if not self.chains.owns(name, mode, chain):
            log.info("sync chain superseded; skipped", extra={"source": name, "mode": mode})
            return
        report = self.sync_for(name).window(mode, self.budget())
        _count(report)
        if report.busy:
            # Another window of this source is running (another mode's chain): come back later.
            self.chains.dispatch(SOURCE_SYNC.kind, {**payload, "countdown": 5})
            return
        if report.done or report.error:
            self.chains.end(name, mode, chain)
            return
        self.chains.dispatch(SOURCE_SYNC.kind, payload)   # the next window, at the back of the queue

    def failed(self, payload: dict, reason: str) -> None:
        log.error("source sync task failed", extra={"source": payload.get("source"), "mode": payload.get("mode"),
                                                    "error": reason})
        metrics.SOURCE_SYNC_WINDOWS.labels(source=payload.get("source", "?"), mode=payload.get("mode", "?"),
                                           outcome="error").inc()
        self.chains.end(payload.get("source", ""), payload.get("mode", ""), payload.get("chain", ""))


def _count(report: SyncReport) -> None:
    outcome = "busy" if report.busy else "error" if report.error else "done" if report.done else "more"
    metrics.SOURCE_SYNC_WINDOWS.labels(source=report.source, mode=report.mode, outcome=outcome).inc()
    for change, n in (("added", report.added), ("updated", report.updated), ("deleted", report.deleted),
                      ("renamed", report.renamed), ("permissions", report.permissions_changed),
                      ("skipped", len(report.skipped)), ("failed", len(report.failed)),
                      ("unreadable", report.unreadable)):
        if n:
            metrics.SOURCE_CHANGES.labels(source=report.source, change=change).inc(n)
