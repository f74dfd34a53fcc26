"""Slack tasks in flight: a lease per task, so a task whose worker died runs again within
seconds, and a done mark, so no task runs twice.

Celery acknowledges a task after it ran (``acks_late``). On Redis an unacknowledged task
comes back only after the broker's visibility timeout, which must stay longer than the
longest ingestion batch (an hour or more) or Redis would hand a running batch to a second
worker. A question whose worker was killed would wait that long. So each Slack task
(question, decision, "send me the full answer") also takes, when it starts:

* an entry in ``{prefix}:inflight`` (what to send again: task kind and payload), indexed by
  the time it was last seen alive in ``{prefix}:inflight:seen``;
* a lease ``{prefix}:lease:{key}`` holding the worker's id, with a TTL of
  ``CHATOPS_TASK_LEASE_TTL`` seconds, renewed every third of that by a thread of the
  process running the task.

A task that finishes (answered, or failed and reported) sets ``{prefix}:done:{key}`` (kept
longer than the broker's visibility timeout) and drops its entry and lease. A task retried
later (Slack rate-limited us) drops only its lease. Every worker runs a reaper, at start-up
and every few seconds: an entry whose lease is gone and that was not seen for a lease TTL
is sent again, once (the claim is one Lua script). When a copy starts, it finds the done
mark and does nothing, or a live lease and does nothing (the holder is alive), or neither
and runs, picking up from the steps it recorded (``chatops.progress``). A task whose
worker dies between taking it from the queue and starting it has no entry yet and waits
for the visibility timeout; with one task prefetched per pool slot that window is the
time it takes a thread to pick the task up.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Callable, Literal

import redis

from chatops import keys, metrics

log = logging.getLogger(__name__)

Begin = Literal["run", "done", "busy"]

_BEGIN = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 'done' end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'EX', ARGV[2]) then return 'busy' end
redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[4])
return 'run'
"""

_FINISH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[3])
redis.call('ZREM', KEYS[4], ARGV[3])
return 1
"""

_PAUSE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3]) end
return 1
"""

_RENEW = """
local kept = 0
for i = 5, #ARGV do
  local key = ARGV[i]
  if redis.call('GET', ARGV[3] .. key) == ARGV[1] then
    redis.call('EXPIRE', ARGV[3] .. key, ARGV[2])
    redis.call('ZADD', KEYS[1], 'XX', ARGV[4], key)
    kept = kept + 1
  end
end
return kept
"""

_REAP = """
local out = {}
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, ARGV[4])
for _, key in ipairs(stale) do
  if redis.call('EXISTS', ARGV[3] .. key) == 0 then
    local entry = redis.call('HGET', KEYS[2], key)
    if entry then
      redis.call('ZADD', KEYS[1], ARGV[1], key)
      table.insert(out, entry)
    else
      redis.call('ZREM', KEYS[1], key)
    end
  end
end
return out
"""


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class InFlight:
    """``task_key``: (kind, payload) -> the task's key (``chatops.tasks.TaskTable.key``)."""

    def __init__(self, client: redis.Redis, prefix: str, *, task_key: Callable[[str, dict], str],
                 lease_ttl: int = 30, done_ttl: int = 7200, clock: Callable[[], float] = time.time):
        self.redis = client
        self.prefix = prefix
        self.task_key = task_key
        self.lease_ttl = lease_ttl
        self.done_ttl = done_ttl
        self.clock = clock
        self._entries = keys.inflight(prefix)
        self._seen = keys.inflight_seen(prefix)
        self._leases = keys.lease(prefix, "")       # each lease is this and the task's key (the scripts)
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._me = worker_id()
        self._renewer: threading.Thread | None = None
        self._scripts = {name: client.register_script(src) for name, src in
                         (("begin", _BEGIN), ("finish", _FINISH), ("pause", _PAUSE), ("renew", _RENEW),
                          ("reap", _REAP))}

    # -- one task ---------------------------------------------------------------

    def begin(self, kind: str, payload: dict) -> Begin:
        """Take the task's lease: "run" it, or skip it because it is "done" or "busy" elsewhere."""
        self._after_fork()
        key = self.task_key(kind, payload)
        entry = json.dumps({"kind": kind, "payload": payload})
        outcome = self._scripts["begin"](
            keys=[keys.done(self.prefix, key), keys.lease(self.prefix, key), self._entries, self._seen],
            args=[self._me, self.lease_ttl, self.clock(), key, entry])
        outcome = outcome.decode() if isinstance(outcome, bytes) else outcome
        if outcome == "run":
            with self._lock:
                self._held.add(key)
            self._ensure_renewer()
        return outcome  # type: ignore[return-value]

    def finish(self, kind: str, payload: dict) -> None:
        """The task is done for good (answered, or its failure reported)."""
        key = self.task_key(kind, payload)
        with self._lock:
            self._held.discard(key)
        self._scripts["finish"](keys=[keys.lease(self.prefix, key), keys.done(self.prefix, key), self._entries,
                                      self._seen],
                                args=[self._me, self.done_ttl, key])

    def pause(self, kind: str, payload: dict) -> None:
        """The task will run again later (a retry): give up the lease, keep the entry."""
        key = self.task_key(kind, payload)
        with self._lock:
            self._held.discard(key)
        self._scripts["pause"](keys=[keys.lease(self.prefix, key), self._entries, self._seen],
                               args=[self._me, self.clock(), key])

    def is_done(self, kind: str, payload: dict) -> bool:
        return bool(self.redis.exists(keys.done(self.prefix, self.task_key(kind, payload))))

    # -- the lease renewer (one thread per process holding leases) --------------------

    def renew(self) -> int:
        """Extend every lease this process still holds; returns how many that is."""
        with self._lock:
            held = sorted(self._held)
        if not held:
            return 0
        return int(self._scripts["renew"](keys=[self._seen],
                                          args=[self._me, self.lease_ttl, self._leases, self.clock(), *held]))

    def _ensure_renewer(self) -> None:
        with self._lock:
            if self._renewer is not None and self._renewer.is_alive():
                return
            self._renewer = threading.Thread(target=self._renew_forever, name="chatops-lease-renewer",
                                             daemon=True)
            self._renewer.start()

    def _renew_forever(self) -> None:
        while True:
            time.sleep(max(1.0, self.lease_ttl / 3))
            try:
                self.renew()
            except Exception as exc:  # noqa: BLE001 - Redis away: the leases may lapse; keep trying
                log.warning("could not renew task leases", extra={"error": type(exc).__name__})

    def _after_fork(self) -> None:
        """A forked pool process holds none of its parent's leases and needs its own thread."""
        if os.getpid() != self._pid:
            with self._lock:
                self._pid, self._me, self._held, self._renewer = os.getpid(), worker_id(), set(), None

    # -- the reaper (every worker) ----------------------------------------------

    def reap(self, dispatch: Callable[[str, dict], None], *, limit: int = 100) -> int:
        """Send again every task whose lease lapsed (its worker died); returns how many."""
        now = self.clock()
        entries = self._scripts["reap"](keys=[self._seen, self._entries],
                                        args=[now, now - self.lease_ttl, self._leases, limit])
        sent = 0
        for raw in entries:
            entry = json.loads(raw)
            try:
                dispatch(entry["kind"], entry["payload"])
            except Exception as exc:  # noqa: BLE001 - the entry stays; the next round tries again
                log.error("could not re-queue a task whose worker died",
                          extra={"kind": entry["kind"], "error": type(exc).__name__})
                continue
            sent += 1
            metrics.TASKS_REQUEUED.labels(kind=entry["kind"]).inc()
            log.warning("re-queued a task whose worker stopped renewing its lease",
                        extra={"kind": entry["kind"], "task_cid": entry["payload"].get("cid")})
        return sent

    def waiting(self) -> int:
        """How many tasks are in flight (started and not finished)."""
        return int(self.redis.hlen(self._entries))


class Reaper:
    """Runs ``InFlight.reap`` now and then every ``interval`` seconds, in a daemon thread."""

    def __init__(self, inflight: InFlight, dispatch: Callable[[str, dict], None], *, interval: float = 5.0,
                 on_tick: Callable[[], None] | None = None):
        self.inflight = inflight
        self.dispatch = dispatch
        self.interval = interval
        self.on_tick = on_tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Reaper":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="chatops-reaper", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.inflight.reap(self.dispatch)
                if self.on_tick is not None:
                    self.on_tick()
            except Exception as exc:  # noqa: BLE001 - Redis away: try again next round
                log.warning("reaper round failed", extra={"error": type(exc).__name__})
            self._stop.wait(self.interval)
