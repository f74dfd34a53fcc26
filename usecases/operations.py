"""What the operator console shows about the workers: queue depths, workers alive, failures.

Read-only. The Redis keys are the ones ``workers/health.py`` writes (both named by
``chatops/keys.py``): ``workers`` (a sorted set of worker names by last-seen time, kept for a day)
and ``consumed`` (when a task was last taken). A queue's depth is the length of its Redis list (Celery's Redis broker
keeps a queue's waiting tasks in a list named after it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

import redis

from chatops import keys
from chatops.store.answers import Answers
from chatops.store.store import Store


@dataclass(frozen=True)
class WorkerSeen:
    name: str
    last_seen: datetime
    alive: bool


@dataclass(frozen=True)
class WorkerOverview:
    queues: dict[str, int]
    workers: list[WorkerSeen]
    last_taken: datetime | None

    @property
    def alive(self) -> int:
        return sum(1 for w in self.workers if w.alive)


@dataclass
class Failures:
    since: datetime
    questions: list[dict[str, Any]] = field(default_factory=list)    # question rows with mode "failed"
    questions_total: int = 0
    proposals: list[dict[str, Any]] = field(default_factory=list)    # "failed" audit events of proposals


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


def worker_overview(client: redis.Redis, prefix: str, queues: Sequence[str], *, stale_after: float,
                    now: float | None = None) -> WorkerOverview:
    """Each queue's depth, every worker seen in the last day (alive: seen within ``stale_after``
    seconds) and when a task was last taken."""
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.llen(queue)
    pipe.zrevrange(keys.workers(prefix), 0, -1, withscores=True)
    pipe.get(keys.consumed(prefix))
    *depths, seen, consumed = pipe.execute()
    now_s = datetime.now(timezone.utc).timestamp() if now is None else now
    workers = [WorkerSeen(name=(name.decode() if isinstance(name, bytes) else str(name)), last_seen=_at(score),
                          alive=score >= now_s - stale_after) for name, score in seen]
    return WorkerOverview(queues=dict(zip(queues, (int(d) for d in depths))), workers=workers,
                          last_taken=_at(float(consumed)) if consumed else None)


def recent_failures(answers: Answers, store: Store, *, hours: float = 24, limit: int = 50,
                    now: datetime | None = None) -> Failures:
    """Questions that failed and proposals whose action failed in the last ``hours``."""
    since = (now or datetime.now(timezone.utc)) - timedelta(hours=hours)
    rows, total = answers.history(since, modes=("failed",), limit=limit)
    failed = [e for e in store.export(since) if e["kind"] == "failed" and e.get("proposal_id")]
    return Failures(since=since, questions=rows, questions_total=total, proposals=failed[-limit:][::-1])
