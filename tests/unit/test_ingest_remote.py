"""chatops_app.ingest_remote.wait: following a job's record until it finishes (a scripted record)."""

import pytest

from chatops_app.ingest_remote import JobFailed, NoWorker, wait
from usecases.ingest import IngestReport
from workers.ingest_jobs import Progress


class Scripted:
    """Answers progress() from a script, one state per poll (the last one repeats)."""

    def __init__(self, *states):
        self.states = list(states)
        self.polls = 0

    def progress(self, job):
        self.polls += 1
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def report(self, job):
        return IngestReport(source="fs:/docs", added=2, chunks=5, batches=2)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def follow(jobs, timeout=5.0):
    clock = Clock()
    return wait(jobs, "j1", pickup_timeout=timeout, where="queue q", clock=clock, sleep=clock.sleep), clock


def test_follows_the_job_to_its_report():
    jobs = Scripted(Progress("queued"), Progress("planning"), Progress("running", total=2),
                    Progress("running", total=2, done=1, chunks=3), Progress("running", total=2, done=2, chunks=5))
    report, clock = follow(jobs)
    assert report.summary().startswith("ingested fs:/docs: 2 added")
    assert jobs.polls == 5 and clock.now == 2.0


def test_a_slow_job_is_not_a_missing_worker():
    jobs = Scripted(Progress("planning"), *[Progress("running", total=1)] * 30, Progress("running", total=1, done=1))
    report, clock = follow(jobs, timeout=1)
    assert clock.now > 1 and report.added == 2


def test_no_worker_in_time_says_what_to_do():
    with pytest.raises(NoWorker, match=r"within 5 s: is `chatops worker` running with queue q\?"):
        follow(Scripted(Progress("queued")))


@pytest.mark.parametrize("states, message", [
    ((Progress("planning"), Progress("failed", error="FileNotFoundError: /docs is not a folder")),
     "ingest job j1 failed in the worker: FileNotFoundError: /docs is not a folder"),
    ((None,), "ingest job j1 has no record in Redis"),
])
def test_a_failed_or_vanished_job_is_one_error(states, message):
    with pytest.raises(JobFailed, match=message):
        follow(Scripted(*states))
