"""Finding 2, the mechanism: leases, the reaper and the done mark (workers/inflight.py) on real Redis.

The end-to-end proof (a worker killed with SIGKILL) is in test_worker_faults.py; these
pin the rules it relies on, with a clock the test moves.
"""

from __future__ import annotations

import uuid

import pytest

from tests.security.conftest import redis_or_skip
from workers.celery_app import visibility_timeout
from chatops_app.tasks import TASKS
from workers.inflight import InFlight

pytestmark = pytest.mark.redis

QUESTION = {"channel": "C1", "ts": "1700000000.000100", "user": "U1", "text": "q", "cid": "c1"}


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def redis_client():
    client = redis_or_skip()
    prefix = f"chatops-inflight-{uuid.uuid4().hex[:8]}"
    yield client, prefix
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def make(redis_client, clock, **kw) -> InFlight:
    client, prefix = redis_client
    return InFlight(client, prefix, task_key=TASKS.key, lease_ttl=30, done_ttl=600, clock=clock, **kw)


def test_a_running_task_is_not_taken_twice_and_a_finished_one_never_again(redis_client):
    clock = Clock()
    a, b = make(redis_client, clock), make(redis_client, clock)
    assert a.begin("question", QUESTION) == "run"
    assert b.begin("question", QUESTION) == "busy"      # a redelivery while it runs
    a.finish("question", QUESTION)
    assert b.begin("question", QUESTION) == "done"      # the broker's late copy, an hour later
    assert a.waiting() == 0


def test_a_dead_workers_task_is_requeued_once_after_its_lease_lapses(redis_client):
    client, prefix = redis_client
    clock = Clock()
    dead, alive = make(redis_client, clock), make(redis_client, clock)
    assert dead.begin("question", QUESTION) == "run"
    sent: list = []
    assert alive.reap(lambda kind, payload: sent.append((kind, payload))) == 0   # the lease is live
    client.delete(f"{prefix}:lease:{TASKS.key('question', QUESTION)}")             # the worker died: it lapses
    clock.now += 31
    assert alive.reap(lambda kind, payload: sent.append((kind, payload))) == 1
    assert sent == [("question", QUESTION)]
    assert alive.reap(lambda kind, payload: sent.append((kind, payload))) == 0   # claimed: not again at once
    assert alive.begin("question", QUESTION) == "run"                            # the copy runs
    alive.finish("question", QUESTION)
    clock.now += 100
    assert alive.reap(lambda kind, payload: sent.append((kind, payload))) == 0 and len(sent) == 1


def test_renewing_keeps_a_slow_task_from_being_requeued(redis_client):
    client, prefix = redis_client
    clock = Clock()
    slow = make(redis_client, clock)
    slow.begin("question", QUESTION)
    key = f"{prefix}:lease:{TASKS.key('question', QUESTION)}"
    for _ in range(10):                      # five minutes of work, renewed as it goes
        clock.now += 30
        assert slow.renew() == 1
        assert 0 < client.ttl(key) <= 30
        assert slow.reap(lambda kind, payload: pytest.fail("a running task was re-queued")) == 0


def test_a_retry_keeps_the_task_but_frees_the_lease(redis_client):
    client, prefix = redis_client
    clock = Clock()
    worker = make(redis_client, clock)
    worker.begin("question", QUESTION)
    worker.pause("question", QUESTION)
    assert worker.waiting() == 1
    assert not client.exists(f"{prefix}:lease:{TASKS.key('question', QUESTION)}")
    assert worker.begin("question", QUESTION) == "run"    # the retry itself


def test_ingest_tasks_never_take_leases_and_the_broker_timeout_stays_long():
    """A long ingestion batch must not run twice: it is never reaped, and Redis only hands an
    unacknowledged task to another worker after a visibility timeout longer than any batch."""
    from chatops.settings import Settings
    from workers.celery_app import HARD_LIMIT_MARGIN

    settings = Settings.load(CHATOPS_INGEST_TIME_LIMIT="3000")
    assert visibility_timeout(settings) >= 2 * (3000 + HARD_LIMIT_MARGIN)
    assert all(not t.leased for t in TASKS.values() if t.ingest)
