"""Is the worker alive, and is anyone taking the questions?

* A consumer bootstep ticks from Celery's own event loop every few seconds: while the
  worker is connected and consuming, the tick is fresh. (A process whose consumer died
  or hangs stops ticking, whatever its other threads do.)
* ``chatops worker --health-port P`` (or ``CHATOPS_WORKER_HEALTH_PORT``) serves
  ``GET /healthz``: 200 while the tick is fresh, 503 otherwise, for a compose
  healthcheck or a Kubernetes liveness probe; and ``GET /metrics`` (Prometheus).
* While its tick is fresh, each worker records itself in ``{prefix}:workers`` (a sorted
  set of last-seen times), and each task start stamps ``{prefix}:consumed``. The web
  process's ``GET /healthz`` (:func:`web_status`) is 503 when no worker was seen for
  ``CHATOPS_WORKER_STALE_AFTER`` seconds, or when questions wait in the queue and none
  was taken for that long.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis
from celery import bootsteps

from chatops import keys, metrics

log = logging.getLogger(__name__)

TICK_S = 5.0


class Health:
    def __init__(self, client: redis.Redis, prefix: str, *, stale_after: float = 60.0, name: str | None = None):
        self.redis = client
        self.prefix = prefix
        self.stale_after = stale_after
        self.name = name or socket.gethostname()
        self._last_tick: float | None = None

    def tick(self) -> None:
        self._last_tick = time.monotonic()
        metrics.WORKER_LAST_CONSUMED.set(time.time())

    def status(self) -> tuple[bool, str]:
        if self._last_tick is None:
            return False, "the consumer has not started"
        age = time.monotonic() - self._last_tick
        if age > self.stale_after:
            return False, f"the consumer loop has not run for {age:.0f} s (broker unreachable?)"
        return True, "ok"

    def publish(self) -> None:
        """Record this worker as alive in Redis, if its consumer is."""
        if not self.status()[0]:
            return
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(keys.workers(self.prefix), {self.name: now})
        pipe.zremrangebyscore(keys.workers(self.prefix), "-inf", now - 86400)
        pipe.execute()

    def consumed(self) -> None:
        """A task was taken from the queue."""
        self.redis.set(keys.consumed(self.prefix), f"{time.time():.3f}", ex=7 * 86400)


class ConsumerTick(bootsteps.StartStopStep):
    """Ticks ``app.chatops_health`` from the consumer's event loop."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self._timer_entry = None

    def start(self, c):
        health = getattr(c.app, "chatops_health", None)
        if health is None:
            return
        health.tick()
        self._timer_entry = c.timer.call_repeatedly(TICK_S, health.tick)

    def stop(self, c):
        if self._timer_entry is not None:
            self._timer_entry.cancel()
            self._timer_entry = None

    shutdown = stop


def serve(port: int, health: Health, host: str = "0.0.0.0", *, metrics_token: str | None = None,
          refresh_metrics=None) -> ThreadingHTTPServer:
    """``GET /healthz`` and ``GET /metrics`` (a Bearer token when ``metrics_token``; the gauges read
    on scrape set by ``refresh_metrics()``) on ``port``, in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            if self.path.split("?", 1)[0] == "/healthz":
                ok, detail = health.status()
                body, status, kind = detail.encode(), 200 if ok else 503, "text/plain; charset=utf-8"
            elif self.path.split("?", 1)[0] == "/metrics":
                if metrics.authorized(metrics_token, self.headers.get("Authorization")):
                    (body, kind), status = metrics.exposition(refresh_metrics), 200
                else:
                    body, status, kind = b"a Bearer token is required (CHATOPS_METRICS_TOKEN)", 401, "text/plain"
            else:
                body, status, kind = b"not found", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="chatops-health", daemon=True).start()
    log.info("worker health endpoint listening", extra={"port": server.server_address[1]})
    return server


def queue_depths(client: redis.Redis, queues) -> None:
    """Set the queue-depth gauge: tasks waiting in each Celery queue (a Redis list each)."""
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.llen(queue)
    for queue, depth in zip(queues, pipe.execute()):
        metrics.QUEUE_DEPTH.labels(queue=queue).set(depth)


def consumer_stale_after(worker_stale_after: float) -> float:
    """How long a worker's consumer may go without a tick before its /healthz says so: half the
    time after which the web process counts the worker gone, and at least three ticks."""
    return max(3 * TICK_S, worker_stale_after / 2)


def web_ready(client: redis.Redis, prefix: str, queue: str, stale_after: float) -> tuple[bool, str]:
    """The web process's readiness: Redis answers, and :func:`web_status` is good."""
    try:
        client.ping()
        return web_status(client, prefix, queue, stale_after)
    except Exception as exc:  # noqa: BLE001 - redis-py's connection errors, whatever their kind
        return False, f"redis unavailable: {type(exc).__name__}"


def web_status(client: redis.Redis, prefix: str, queue: str, stale_after: float) -> tuple[bool, str]:
    """What the web process's /healthz says about the workers (Redis must answer)."""
    now = time.time()
    seen = client.zrevrange(keys.workers(prefix), 0, 0, withscores=True)
    if not seen or seen[0][1] < now - stale_after:
        return False, f"no worker has been alive in the last {stale_after:.0f} s"
    waiting = client.llen(queue)
    if waiting:
        raw = client.get(keys.consumed(prefix))
        last = float(raw) if raw else 0.0
        if last < now - stale_after:
            return False, f"{waiting} task(s) waiting and none taken in the last {stale_after:.0f} s"
    return True, "ok"


def workers_seen(client: redis.Redis, prefix: str) -> list[tuple[str, float]]:
    """(worker name, seconds since it was last alive), most recent first."""
    now = time.time()
    return [(name.decode() if isinstance(name, bytes) else name, max(0.0, now - seen))
            for name, seen in client.zrevrange(keys.workers(prefix), 0, -1, withscores=True)]


# -- the scheduler ---------------------------------------------------------------------------

BEAT_BEAT_S = 30.0   # beat wakes at least this often (beat_max_loop_interval) and records itself


def record_beat(client: redis.Redis, prefix: str) -> None:
    """``chatops beat`` is alive (each time its scheduler wakes)."""
    client.set(keys.beat(prefix), f"{time.time():.3f}", ex=86400)


def beat_seen(client: redis.Redis, prefix: str) -> float | None:
    """Seconds since beat last recorded itself; None if it never did (within a day)."""
    raw = client.get(keys.beat(prefix))
    return max(0.0, time.time() - float(raw)) if raw else None
