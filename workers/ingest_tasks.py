"""The worker's side of ``chatops ingest --via-workers``: plan a source, write its batches.

Uses the index and the embedder the worker process already holds. Task payloads
carry a job id, a source spec (opened through :mod:`usecases.ingest_specs`) and document ids,
never document text. Progress and results go to the job record
(:class:`workers.ingest_jobs.IngestJobs`).

Never calls the embedded index's ``optimize()``: it holds the GIL for minutes and
this process answers questions. Searches stay exact until a one-shot ``chatops
ingest`` builds HNSW (docs/permissions-and-sources.md, "Ingestion through the workers").
"""

from __future__ import annotations

import logging
from typing import Callable

import redis

from chatops.errors import TransientError
from usecases.ingest import write_batch
from usecases.ingest_plan import plan_ingest
from usecases.ingest_specs import open_spec
from workers.ingest_jobs import IngestJobs, batch_id
from workers.tasks import INGEST_BATCH

log = logging.getLogger(__name__)


class IngestTasks:
    def __init__(self, index, embedder, jobs: IngestJobs, dispatch: Callable[[str, dict], None],
                 groups=None, settings=None):
        self.groups = groups  # chatops.groups.GroupNames: how ACL files name groups
        self.settings = settings  # chatops.settings.Settings: the sources' parse limits
        self.index = index
        self.embedder = embedder
        self.jobs = jobs
        self.dispatch = dispatch

    def ingest_plan(self, payload: dict) -> None:
        """Compare the source with the index, record the plan, remove the documents gone from
        the source and send one ``ingest_batch`` task per batch. A redelivered plan re-sends the
        recorded plan's unfinished batches (planning again would see half-written batches)."""
        job, spec = payload["job"], payload["source"]
        self.jobs.start(job)
        source = open_spec(spec, self.groups, self.settings)
        recorded = self.jobs.plan(job)
        if recorded is None:
            plan = plan_ingest(source, self.index, max_docs=payload["batch_docs"],
                               max_chunks=payload["batch_chunks"])
            batches = {batch_id(n): ids for n, ids in enumerate(plan.batches)}
            self.jobs.record_plan(job, plan.report, batches, plan.gone)
            recorded = self.jobs.plan(job)
        batches, gone = recorded
        self.index.delete_documents(source.source_id, gone)
        finished = self.jobs.finished_batches(job)
        todo = [b for b in batches if b not in finished]
        log.info("ingest planned", extra={"source": source.source_id, "batches": len(batches),
                                          "sending": len(todo), "removed": len(gone)})
        for batch in todo:
            self.dispatch(INGEST_BATCH.kind, {"cid": payload.get("cid"), "job": job, "source": spec, "batch": batch,
                                              "ids": batches[batch], "batch_chunks": payload["batch_chunks"]})

    def ingest_batch(self, payload: dict) -> None:
        source = open_spec(payload["source"], self.groups, self.settings)
        result = write_batch(source, payload["ids"], self.index, self.embedder,
                             batch_chunks=payload["batch_chunks"])
        counted = self.jobs.account(payload["job"], payload["batch"], chunks=result.chunks, skipped=result.skipped)
        log.info("ingest batch written", extra={"batch": payload["batch"], "documents": len(payload["ids"]),
                                                "chunks": result.chunks, "counted": counted})


class IngestHandler:
    """One ingest task kind as the task runner calls it (workers.celery_app.Handler)."""

    def __init__(self, tasks: IngestTasks, kind: str):
        self.tasks = tasks
        self.kind = kind

    def handle(self, payload: dict) -> None:
        getattr(self.tasks, self.kind)(payload)

    def failed(self, payload: dict, reason: str, detail: str = "") -> None:
        record_failure(self.tasks.jobs, payload, reason if not detail else f"{reason} ({detail})")


def record_failure(jobs: IngestJobs, payload: dict, reason: str) -> None:
    """A batch that failed for good is counted as failed; a failed plan fails the job."""
    if "batch" in payload:
        jobs.account(payload["job"], payload["batch"], failure=reason)
    else:
        jobs.fail(payload["job"], reason)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the network, Redis or the index server hiccupped (not a bad file or spec)."""
    return isinstance(exc, (TransientError, ConnectionError, TimeoutError, redis.ConnectionError,
                            redis.TimeoutError))


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__
