"""Ingestion split into batches, without Celery: the plan against a real embedded index, the
batches against the one-process path, and the job record in the real Redis (a batch delivered
twice counts once; a redelivered plan re-sends its own batches; failures and retries).

The embedder is a stand-in (``tests/ingest_helpers.py``): what is compared is which documents
are written, under which chunk ids and hashes, not the vectors.
"""

from __future__ import annotations

import uuid

import pytest
import redis

from connectors.index.edge_index import EdgeIndex
from connectors.sources.filesystem.connector import FilesystemSource
from connectors.sources.registry import filesystem_spec, open_source
from tests.ingest_helpers import DIM, HashEmbedder, index_points
from chatops_app.tasks import TASKS
from workers.celery_app import Runtime, _run_ingest
from usecases.ingest import ingest, write_batch
from workers.ingest_jobs import IngestJobs
from usecases.ingest_plan import plan_ingest
from workers.ingest_tasks import IngestHandler, IngestTasks, record_failure

ACL = "- match: '**'\n  public: true\n- match: 'drafts/**'\n  public: false\n"
LONG = "# Long\n\n" + "\n\n".join(f"Paragraph {i} " + "word " * 150 for i in range(6))  # 6 chunks
FILES = {
    ".acl.yml": ACL,
    "a.md": "# A\n\nalpha text\n",
    "b.md": "# B\n\nbeta text\n",
    "c.md": "# C\n\ngamma text\n",
    "d.md": "# D\n\ndelta text\n",
    "long.md": LONG,
    "drafts/secret.md": "# Secret\n\nno rule admits anyone\n",
}


def write(root, files):
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def change_folder(root):
    """a.md edited, b.md deleted, c.md hidden by a new rule, e.md new; d.md and long.md unchanged."""
    (root / "a.md").write_text("# A\n\nalpha text, edited\n")
    (root / "b.md").unlink()
    (root / ".acl.yml").write_text(ACL + "- match: c.md\n  public: false\n")
    (root / "e.md").write_text("# E\n\nepsilon text\n")


def run_planned(source, index, embedder, *, max_docs, max_chunks):
    """What the workers do, in this process: plan, remove what is gone, write every batch."""
    plan = plan_ingest(source, index, max_docs=max_docs, max_chunks=max_chunks)
    index.delete_documents(source.source_id, plan.gone)
    for ids in plan.batches:
        write_batch(open_source(filesystem_spec(source.root)), ids, index, embedder)
    return plan


@pytest.fixture
def indexes(tmp_path):
    split = EdgeIndex(path=tmp_path / "split", dim=DIM)
    one = EdgeIndex(path=tmp_path / "one", dim=DIM)
    yield split, one
    split.close()
    one.close()


def test_plan_counts_and_batches_and_the_batches_write_what_one_process_writes(tmp_path, indexes):
    split, one = indexes
    root = write(tmp_path / "docs", FILES)
    embedder = HashEmbedder()

    plan = run_planned(FilesystemSource(root), split, embedder, max_docs=2, max_chunks=6)
    r = plan.report
    assert (r.added, r.updated, r.unchanged, r.deleted) == (5, 0, 0, 0)
    assert r.no_acl == ["drafts/secret.md"]
    # paths() order; two documents a batch, and long.md (6 chunks) fills a batch of its own.
    assert plan.batches == [["a.md", "b.md"], ["c.md", "d.md"], ["long.md"]] and r.batches == 3
    assert plan.gone == []
    ingest(FilesystemSource(root), one, HashEmbedder())
    assert index_points(split) == index_points(one)
    assert len({doc for doc, _, _ in index_points(split).values()}) == 5

    change_folder(root)
    embedder.embedded.clear()
    plan = run_planned(FilesystemSource(root), split, embedder, max_docs=2, max_chunks=6)
    r = plan.report
    assert (r.added, r.updated, r.unchanged, r.deleted) == (1, 1, 2, 2)
    assert plan.gone == ["b.md", "c.md"]
    assert plan.batches == [["a.md", "e.md"]]
    assert sorted(embedder.embedded) == ["A\nalpha text, edited", "E\nepsilon text"]  # nothing else re-embedded
    again = ingest(FilesystemSource(root), one, HashEmbedder())
    assert (again.added, again.updated, again.unchanged, again.deleted) == (1, 1, 2, 2)
    assert index_points(split) == index_points(one)


def test_a_batch_removes_a_document_gone_since_the_plan(tmp_path, indexes):
    split, _ = indexes
    root = write(tmp_path / "docs", FILES)
    ingest(FilesystemSource(root), split, HashEmbedder())
    (root / "a.md").write_text("# A\n\nalpha, changed\n")
    plan = plan_ingest(FilesystemSource(root), split, max_docs=64, max_chunks=1024)
    assert plan.batches == [["a.md"]]
    (root / "a.md").unlink()
    result = write_batch(FilesystemSource(root), plan.batches[0], split, HashEmbedder())
    assert result.chunks == 0
    assert "a.md" not in {doc for doc, _, _ in index_points(split).values()}


# -- the job record and the task handler, on the real Redis -------------------------------------


@pytest.fixture
def jobs():
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    prefix = f"chatops-test-ingest-{uuid.uuid4().hex[:8]}"
    yield IngestJobs(client, prefix)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


class NoOptimize:
    """The worker's index: optimize() would stop every thread of the worker for minutes."""

    def __init__(self, index):
        self._index = index

    def __getattr__(self, name):
        return getattr(self._index, name)

    def optimize(self):
        raise AssertionError("optimize() called in the worker")


class Tasks:
    """The worker's handler with the tasks it sends kept in a list instead of a queue."""

    def __init__(self, index, jobs):
        self.sent: list[tuple[str, dict]] = []
        self.handler = IngestTasks(NoOptimize(index), HashEmbedder(), jobs,
                                   lambda kind, payload: self.sent.append((kind, payload)))

    def plan(self, root, job, batch_docs=2):
        payload = {"cid": job, "job": job, "source": filesystem_spec(root), "batch_docs": batch_docs,
                   "batch_chunks": 6}
        self.handler.ingest_plan(payload)
        return payload


def start(jobs, root, job):
    jobs.create(job, f"fs:{root}")
    return job


@pytest.mark.redis
def test_a_batch_delivered_twice_counts_once(tmp_path, indexes, jobs):
    split, one = indexes
    root = write(tmp_path / "docs", FILES)
    tasks = Tasks(split, jobs)
    job = start(jobs, root, "job1")
    tasks.plan(root, job)
    assert [k for k, _ in tasks.sent] == ["ingest_batch"] * 3
    assert all(set(p) == {"cid", "job", "source", "batch", "ids", "batch_chunks"} for _, p in tasks.sent)
    assert jobs.progress(job).state == "running" and jobs.progress(job).total == 3

    for _, payload in tasks.sent:
        tasks.handler.ingest_batch(payload)
    once = jobs.progress(job)
    assert (once.done, once.failed, once.finished) == (3, 0, True)
    tasks.handler.ingest_batch(tasks.sent[0][1])  # redelivered after a worker died: written again, not counted
    assert jobs.progress(job) == once

    expected = ingest(FilesystemSource(root), one, HashEmbedder())
    assert jobs.report(job).summary() == expected.summary()
    assert index_points(split) == index_points(one)


@pytest.mark.redis
def test_a_redelivered_plan_resends_its_own_unfinished_batches(tmp_path, indexes, jobs):
    split, _ = indexes
    root = write(tmp_path / "docs", FILES)
    tasks = Tasks(split, jobs)
    job = start(jobs, root, "job2")
    payload = tasks.plan(root, job)
    first = [p for _, p in tasks.sent]
    tasks.handler.ingest_batch(first[0])
    (root / "new.md").write_text("# New\n\nwritten after the plan\n")  # a new plan would differ
    tasks.sent.clear()
    tasks.handler.ingest_plan(payload)
    assert [p["batch"] for _, p in tasks.sent] == [p["batch"] for p in first[1:]]
    assert [p["ids"] for _, p in tasks.sent] == [p["ids"] for p in first[1:]]
    assert jobs.progress(job).total == 3


@pytest.mark.redis
def test_a_failed_batch_is_reported_once_with_its_documents(tmp_path, indexes, jobs):
    split, _ = indexes
    root = write(tmp_path / "docs", FILES)
    tasks = Tasks(split, jobs)
    job = start(jobs, root, "job3")
    tasks.plan(root, job)
    batches = [p for _, p in tasks.sent]
    tasks.handler.ingest_batch(batches[0])
    record_failure(jobs, batches[1], "RuntimeError: disk full")
    tasks.handler.ingest_batch(batches[1])  # a late delivery of the failed batch changes nothing
    tasks.handler.ingest_batch(batches[2])
    progress = jobs.progress(job)
    assert (progress.done, progress.failed, progress.finished) == (2, 1, True)
    report = jobs.report(job)
    assert report.failed == [("batch b00001 (c.md and 1 more)", "RuntimeError: disk full")]
    assert report.summary().endswith("; 1 of 3 batch(es) failed")


class FakeTask:
    """Enough of a bound Celery task for the runner: retries so far, and retry()."""

    class Retry(Exception):
        pass

    soft_time_limit = 900

    def __init__(self, retries, max_retries=3):
        self.request = type("Request", (), {"retries": retries})()
        self.max_retries = max_retries
        self.countdowns = []

    def retry(self, countdown, exc):
        self.countdowns.append(countdown)
        return self.Retry(exc)


class Failing:
    def __init__(self, exc, jobs):
        self.exc = exc
        self.jobs = jobs

    def ingest_batch(self, payload):
        raise self.exc


def runtime_for(tasks) -> Runtime:
    """The task runner's view of the ingest handlers (no Slack tasks here)."""
    return Runtime(tasks=TASKS, handler=lambda kind: IngestHandler(tasks, kind), inflight=lambda: None,
                   health=lambda: None)


@pytest.mark.redis
@pytest.mark.parametrize("exc, retries, outcome", [
    (ConnectionError("reset by peer"), 0, "retry"),
    (ConnectionError("reset by peer"), 3, "ConnectionError: reset by peer"),
    (ValueError("bad spec"), 0, "ValueError: bad spec"),
])
def test_transient_failures_are_retried_then_recorded(jobs, exc, retries, outcome):
    jobs.create("job4", "fs:/x")
    services = runtime_for(Failing(exc, jobs))
    task = FakeTask(retries)
    payload = {"job": "job4", "batch": "b00000", "ids": ["a.md"]}
    if outcome == "retry":
        with pytest.raises(FakeTask.Retry):
            _run_ingest(services, "ingest_batch", task, payload)
        assert task.countdowns == [1] and jobs.report("job4").failed == []
    else:
        _run_ingest(services, "ingest_batch", task, payload)
        assert task.countdowns == [] and jobs.report("job4").failed == [("batch b00000", outcome)]


@pytest.mark.redis
def test_a_failed_plan_fails_the_job(jobs):
    jobs.create("job5", "fs:/nowhere")
    services = runtime_for(IngestTasks(None, None, jobs, lambda kind, payload: None))
    payload = {"job": "job5", "source": {"kind": "filesystem", "path": "/nowhere/at/all"},
               "batch_docs": 2, "batch_chunks": 6}
    _run_ingest(services, "ingest_plan", FakeTask(0), payload)
    progress = jobs.progress("job5")
    assert progress.state == "failed" and progress.finished
    assert progress.error == "FileNotFoundError: /nowhere/at/all is not a folder"
