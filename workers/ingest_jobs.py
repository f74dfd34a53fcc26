"""The record of an ingestion split across workers, in Redis under its job id.

``{prefix}:ingest:{job}`` is a hash (state, totals, counters); beside it the plan's
batches (batch id -> doc ids), the ids it removes and those without an ACL, the set
of finished batches, their failures and the files that could not be read. Every key
expires ``JOB_TTL`` seconds after the job's last change.

States: ``queued`` (the CLI sent it) → ``planning`` (a worker took it) → ``running``
(plan recorded, batches sent) or ``failed`` (the plan itself failed). A job is
finished when every batch is done or failed.

Accounting is idempotent: a batch counts once, whichever delivery reports first
(Celery redelivers a task whose worker died), and a plan is recorded once (a
redelivered plan re-sends the recorded batches instead of planning again).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import redis

from chatops import keys
from usecases.ingest import IngestReport

JOB_TTL = 7 * 86400
_PARTS = ("batches", "gone", "no_acl", "finished", "failures", "skipped")

# KEYS: job hash, then the _PARTS keys. ARGV: ttl, batch id, chunks, failure ("" if none), skipped...
_ACCOUNT = """
if redis.call('SADD', KEYS[5], ARGV[2]) == 0 then return 0 end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[6], ARGV[2], ARGV[4])
  redis.call('HINCRBY', KEYS[1], 'failed', 1)
else
  redis.call('HINCRBY', KEYS[1], 'done', 1)
  redis.call('HINCRBY', KEYS[1], 'chunks', ARGV[3])
end
for i = 5, #ARGV do redis.call('RPUSH', KEYS[7], ARGV[i]) end
for i = 1, #KEYS do redis.call('EXPIRE', KEYS[i], ARGV[1]) end
return 1
"""

# KEYS: as above. ARGV: ttl, counters (JSON object), gone (JSON), no_acl (JSON), skipped count,
# skipped entries..., then batch id / doc ids (JSON) pairs.
_RECORD_PLAN = """
if redis.call('HEXISTS', KEYS[1], 'total') == 1 then return 0 end
for k, v in pairs(cjson.decode(ARGV[2])) do redis.call('HSET', KEYS[1], k, v) end
redis.call('SET', KEYS[3], ARGV[3])
redis.call('SET', KEYS[4], ARGV[4])
local n = tonumber(ARGV[5])
for i = 6, 5 + n do redis.call('RPUSH', KEYS[7], ARGV[i]) end
for i = 6 + n, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
for i = 1, #KEYS do redis.call('EXPIRE', KEYS[i], ARGV[1]) end
return 1
"""

# KEYS: job hash. ARGV: ttl. A redelivered plan must not move a running job back.
_START = """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'running' and state ~= 'failed' then redis.call('HSET', KEYS[1], 'state', 'planning') end
redis.call('EXPIRE', KEYS[1], ARGV[1])
"""


@dataclass(frozen=True)
class Progress:
    state: str
    total: int = 0
    done: int = 0
    failed: int = 0
    chunks: int = 0
    error: str = ""

    @property
    def picked_up(self) -> bool:
        return self.state != "queued"

    @property
    def finished(self) -> bool:
        return self.state == "failed" or (self.state == "running" and self.done + self.failed >= self.total)


class IngestJobs:
    def __init__(self, client: redis.Redis, prefix: str, ttl: int = JOB_TTL):
        self.redis = client
        self.prefix = prefix
        self.ttl = ttl
        self._account = client.register_script(_ACCOUNT)
        self._record_plan = client.register_script(_RECORD_PLAN)
        self._start = client.register_script(_START)

    def _keys(self, job: str) -> list[str]:
        return [keys.ingest_job(self.prefix, job), *(keys.ingest_job(self.prefix, job, part) for part in _PARTS)]

    # -- the CLI ---------------------------------------------------------------------------

    def create(self, job: str, source: str) -> None:
        key = self._keys(job)[0]
        pipe = self.redis.pipeline()
        pipe.hset(key, mapping={"state": "queued", "source": source, "created": f"{time.time():.3f}"})
        pipe.expire(key, self.ttl)
        pipe.execute()

    def progress(self, job: str) -> Progress | None:
        raw = self.redis.hgetall(self._keys(job)[0])
        if not raw:
            return None
        h = {k.decode(): v.decode() for k, v in raw.items()}
        return Progress(state=h.get("state", "queued"), total=int(h.get("total", 0)), done=int(h.get("done", 0)),
                        failed=int(h.get("failed", 0)), chunks=int(h.get("chunks", 0)), error=h.get("error", ""))

    def report(self, job: str) -> IngestReport:
        """What a finished job did, in the one-process ingest's terms."""
        main, batches, _gone, no_acl, _finished, failures, skipped = self._keys(job)
        pipe = self.redis.pipeline()
        pipe.hgetall(main)
        pipe.get(no_acl)
        pipe.hgetall(failures)
        pipe.lrange(skipped, 0, -1)
        h, no_acl_ids, failed, unreadable = pipe.execute()
        h = {k.decode(): v.decode() for k, v in h.items()}
        failed = sorted((k.decode(), v.decode()) for k, v in failed.items())
        failed_ids = self.redis.hmget(batches, [b for b, _ in failed]) if failed else []
        docs = [json.loads(ids or "[]") for ids in failed_ids]
        n = {name: int(h.get(name, 0)) for name in ("added", "updated", "unchanged", "removed", "chunks", "total")}
        return IngestReport(
            source=h.get("source", ""), added=n["added"], updated=n["updated"], unchanged=n["unchanged"],
            deleted=n["removed"], chunks=n["chunks"], no_acl=json.loads(no_acl_ids or "[]"),
            skipped=[tuple(json.loads(s)) for s in unreadable], batches=n["total"],
            failed=[(_describe(batch, ids), reason) for (batch, reason), ids in zip(failed, docs)])

    # -- the workers -------------------------------------------------------------------------

    def start(self, job: str) -> None:
        self._start(keys=self._keys(job)[:1], args=[self.ttl])

    def fail(self, job: str, reason: str) -> None:
        key = self._keys(job)[0]
        pipe = self.redis.pipeline()
        pipe.hset(key, mapping={"state": "failed", "error": reason})
        pipe.expire(key, self.ttl)
        pipe.execute()

    def record_plan(self, job: str, report: IngestReport, batches: dict[str, list[str]], gone: list[str]) -> bool:
        """Record the plan, once; False if this job already has one (that one stands)."""
        counters = {"state": "running", "source": report.source, "total": len(batches), "added": report.added,
                    "updated": report.updated, "unchanged": report.unchanged, "removed": len(gone)}
        counters = {k: str(v) for k, v in counters.items()}
        skipped = [json.dumps(list(s)) for s in report.skipped]
        pairs = [x for bid, ids in batches.items() for x in (bid, json.dumps(ids))]
        args = [self.ttl, json.dumps(counters), json.dumps(gone), json.dumps(report.no_acl), len(skipped),
                *skipped, *pairs]
        return bool(self._record_plan(keys=self._keys(job), args=args))

    def plan(self, job: str) -> tuple[dict[str, list[str]], list[str]] | None:
        """The recorded batches and removed doc ids, or None before the plan is recorded."""
        main, batches, gone = self._keys(job)[:3]
        pipe = self.redis.pipeline()
        pipe.hexists(main, "total")
        pipe.hgetall(batches)
        pipe.get(gone)
        planned, raw_batches, raw_gone = pipe.execute()
        if not planned:
            return None
        ordered = sorted(raw_batches.items())
        return {k.decode(): json.loads(v) for k, v in ordered}, json.loads(raw_gone or "[]")

    def finished_batches(self, job: str) -> set[str]:
        return {b.decode() for b in self.redis.smembers(self._keys(job)[4])}

    def account(self, job: str, batch: str, *, chunks: int = 0, skipped=(), failure: str | None = None) -> bool:
        """Count a finished (or, with ``failure``, failed) batch; False if it was counted before."""
        if failure is not None and not failure.strip():
            failure = "failed"
        args = [self.ttl, batch, chunks, failure or "", *(json.dumps(list(s)) for s in skipped)]
        return bool(self._account(keys=self._keys(job), args=args))


def batch_id(n: int) -> str:
    return f"b{n:05d}"


def _describe(batch: str, ids: list[str]) -> str:
    if not ids:
        return f"batch {batch}"
    more = f" and {len(ids) - 1} more" if len(ids) > 1 else ""
    return f"batch {batch} ({ids[0]}{more})"
