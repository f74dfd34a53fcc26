"""``chatops ingest --via-workers``: hand a source to the Celery workers, follow the job in Redis.

Opens no index and loads no model: it writes the job record, sends one
``ingest_plan`` task and reads the record back (:mod:`workers.ingest_jobs`).
"""

from __future__ import annotations

import sys
import time
import uuid
from typing import Callable

from tqdm import tqdm

from usecases.ingest import IngestReport
from workers.ingest_jobs import IngestJobs
from workers.tasks import INGEST_PLAN


class NoWorker(Exception):
    """No worker took the job in time."""


class JobFailed(Exception):
    """The job failed as a whole (its plan), or its record is gone."""


def submit(jobs: IngestJobs, dispatch: Callable[[str, dict], None], spec: dict, source_id: str, *,
           batch_docs: int, batch_chunks: int) -> str:
    job = uuid.uuid4().hex
    jobs.create(job, source_id)
    dispatch(INGEST_PLAN.kind, {"cid": job, "job": job, "source": spec, "batch_docs": batch_docs,
                                "batch_chunks": batch_chunks})
    return job


def wait(jobs: IngestJobs, job: str, *, pickup_timeout: float, where: str, progress: bool = False,
         poll: float = 0.5, clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep) -> IngestReport:
    """Follow the job until every batch is done or failed; its report.

    ``where`` names the queue in the error when no worker takes the job within ``pickup_timeout``."""
    started = clock()
    bar = tqdm(desc="waiting for a worker", unit="batch", total=None, file=sys.stderr, disable=not progress)
    try:
        while True:
            state = jobs.progress(job)
            if state is None:
                raise JobFailed(f"ingest job {job} has no record in Redis (expired, or another REDIS_URL?)")
            if not state.picked_up and clock() - started > pickup_timeout:
                raise NoWorker(f"no worker took ingest job {job} within {pickup_timeout:g} s: is `chatops worker` "
                               f"running with {where}? The job stays queued; if the workers are busy, "
                               "raise --timeout")
            if state.state == "failed":
                raise JobFailed(f"ingest job {job} failed in the worker: {state.error}")
            if state.state == "planning":
                bar.set_description("planning", refresh=True)
            if state.state == "running":
                bar.set_description("ingest", refresh=False)
                bar.total = state.total
                bar.n = state.done + state.failed
                bar.set_postfix({"chunks": state.chunks, **({"failed": state.failed} if state.failed else {})},
                                refresh=False)
                bar.refresh()
            if state.finished:
                return jobs.report(job)
            sleep(poll)
    finally:
        bar.close()
