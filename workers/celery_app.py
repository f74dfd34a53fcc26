"""The Celery app on Redis, and the tasks it runs.

Slack tasks carry ids and the question's text; ingest tasks carry ids and paths
only. Delivery is at-least-once (``acks_late``). A Slack task holds a lease while it
runs (``workers.inflight``): if its worker dies, another worker re-queues it within
seconds, and the done mark and the recorded steps (``chatops.progress``) make every
copy after the first a no-op. An ingest batch counts once.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from typing import Callable, Protocol

import redis
from celery import Celery
from celery.exceptions import Retry, SoftTimeLimitExceeded
from kombu import Queue

from chatops import metrics, tracing
from chatops.errors import TransientError
from chatops.logs import correlated
from chatops.settings import Settings
from chatops.tasks import TaskTable
from workers.health import Health
from workers.inflight import InFlight
from workers.ingest_tasks import is_transient, one_line

log = logging.getLogger(__name__)

HARD_LIMIT_MARGIN = 30  # seconds between an ingest task's soft and hard time limits


def visibility_timeout(settings: Settings) -> int:
    """Seconds before Redis hands an unacknowledged task to another worker: longer than any task
    may run (an ingest batch included), or a running task would run twice."""
    return max(3600, settings.task_time_limit * 4, (settings.ingest_time_limit + HARD_LIMIT_MARGIN) * 2)


def redelivery_window(settings: Settings) -> int:
    """How long a task can come back: done marks and recorded steps are kept this long."""
    return visibility_timeout(settings) + 3600


def create_celery(settings: Settings) -> Celery:
    app = Celery("chatops", broker=settings.redis_url)
    app.conf.update(
        task_serializer="json", accept_content=["json"], result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        task_default_queue=settings.queue_name,
        # Consumed by a worker started without --queues (``celery -A chatops_app.worker worker``).
        task_queues=[Queue(settings.queue_name), Queue(settings.ingest_queue)],
        task_soft_time_limit=settings.task_soft_time_limit, task_time_limit=settings.task_time_limit,
        # Longer than any task may run, or Redis hands a running task to a second worker. Slack
        # tasks do not wait for it: their leases bring them back within seconds (workers.inflight).
        broker_transport_options={"visibility_timeout": visibility_timeout(settings)},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False, worker_redirect_stdouts=False,
    )
    return app


def queue_for(kind: str, settings: Settings, tasks: TaskTable) -> str:
    """Ingestion has its own queue, so questions do not wait behind a whole ingestion."""
    return settings.ingest_queue if tasks[kind].ingest else settings.queue_name


def make_dispatch(app: Celery, settings: Settings, tasks: TaskTable):
    """Send a task by name (the web process, the CLI and the ingest planner; no worker code imported)."""
    def dispatch(kind: str, payload: dict) -> None:
        # argsrepr/kwargsrepr: no question text in message headers or monitoring (and no
        # per-message repr cost on the acknowledgement path).
        app.send_task(tasks[kind].name, kwargs={"payload": payload}, queue=queue_for(kind, settings, tasks),
                      countdown=payload.get("countdown"),   # a task that should not run before then
                      argsrepr="()", kwargsrepr=f"{{payload: {kind} {payload.get('cid', '')}}}")
    return dispatch


class Handler(Protocol):
    """What runs one kind of task (built by the composition root)."""

    def handle(self, payload: dict) -> None: ...

    def failed(self, payload: dict, reference: str, detail: str = "") -> None:
        """It failed for good: tell the person (Slack tasks) or record it (ingest jobs)."""
        ...


@dataclass(frozen=True)
class Runtime:
    """What the task runners use, each built on first use in the process that runs tasks."""

    tasks: TaskTable                           # every task kind (chatops_app/tasks.py)
    handler: Callable[[str], Handler]          # task kind -> its handler
    inflight: Callable[[], InFlight]
    health: Callable[[], Health]


def register_tasks(app: Celery, runtime: Runtime, *, max_retries: int = 3,
                   ingest_time_limit: int | None = None) -> None:
    """Bind every kind of the task table (``runtime.tasks``) to its runner: Slack tasks under a lease
    (``_run_slack``), ingest tasks with their own time limit (``_run_ingest``)."""
    ingest_limits = ({"soft_time_limit": ingest_time_limit, "time_limit": ingest_time_limit + HARD_LIMIT_MARGIN}
                     if ingest_time_limit else {})
    for kind, spec in runtime.tasks.items():
        runner, limits = (_run_ingest, ingest_limits) if spec.ingest else (_run_slack, {})
        _define(app, spec.name, functools.partial(runner, runtime, kind), max_retries=max_retries, **limits)


def _define(app: Celery, name: str, body, **options) -> None:
    @app.task(name=name, bind=True, **options)
    def task(self, payload: dict) -> None:
        kind = body.args[1] if isinstance(body, functools.partial) else name
        started = time.perf_counter()
        outcome = "failed"
        try:
            outcome = body(self, payload) or "done"
        except Retry:
            outcome = "retried"
            raise
        finally:
            metrics.TASKS.labels(kind=kind, outcome=outcome).inc()
            metrics.TASK_SECONDS.labels(kind=kind).observe(time.perf_counter() - started)


def _retry_or(task, exc: BaseException, give_up) -> str:
    """Retry with backoff (1, 2, 4 s ...) while retries are left; then ``give_up()`` ("failed")."""
    if task.request.retries >= task.max_retries:
        log.error("giving up after retries", extra={"error": str(exc)})
        give_up()
        return "failed"
    delay = 2 ** task.request.retries
    log.warning("transient failure; will retry", extra={"error": str(exc), "in_s": delay})
    raise task.retry(countdown=delay, exc=exc)


def _run_slack(runtime: Runtime, kind: str, task, payload: dict) -> str:
    """Run a Slack task under its lease; skip it when done or running elsewhere; report failures.
    Returns the outcome: done, skipped or failed (a retry raises). Traced as a continuation of
    the trace the web process started (its ``traceparent`` is in the payload)."""
    with tracing.continued(payload.get("trace"), f"chatops {kind}", attributes={"chatops.task.kind": kind}), \
            correlated(payload.get("cid")) as cid:
        inflight = runtime.inflight()
        try:
            begun = inflight.begin(kind, payload)
        except redis.RedisError as exc:  # cannot tell whether it ran: try again later
            return _retry_or(task, exc, lambda: log.error("task dropped: Redis unreachable", extra={"kind": kind}))
        _quietly(runtime.health().consumed)
        if begun != "run":
            metrics.TASKS_SKIPPED.labels(why=begun).inc()
            log.info("task skipped", extra={"kind": kind, "why": begun})
            return "skipped"
        handler = runtime.handler(kind)
        outcome = "done"
        try:
            handler.handle(payload)
        except (TransientError, redis.RedisError) as exc:
            if task.request.retries < task.max_retries:
                _quietly(inflight.pause, kind, payload)   # the retry takes the lease again
            detail = f"{exc.service if isinstance(exc, TransientError) else 'Redis'} kept failing"
            outcome = _retry_or(task, exc, lambda: handler.failed(payload, cid, detail))
        except SoftTimeLimitExceeded:
            log.error("task ran out of time")
            handler.failed(payload, cid, "it took too long")
            outcome = "failed"
        except Exception:
            log.exception("task failed")
            handler.failed(payload, cid)
            outcome = "failed"
        _quietly(inflight.finish, kind, payload)
        return outcome


def _run_ingest(runtime: Runtime, kind: str, task, payload: dict) -> str:
    """Run an ingest task; a transient failure is retried, any other recorded in the job."""
    with correlated(payload.get("cid")):
        handler = runtime.handler(kind)
        try:
            handler.handle(payload)
        except SoftTimeLimitExceeded:
            log.error("ingest task ran out of time")
            handler.failed(payload, f"ran out of time ({task.soft_time_limit} s)")
            return "failed"
        except Exception as exc:
            reason = one_line(exc)
            if is_transient(exc):
                return _retry_or(task, exc, lambda: handler.failed(payload, reason))
            log.exception("ingest task failed")
            handler.failed(payload, reason)
            return "failed"
        return "done"


def _quietly(step, *args) -> None:
    """A bookkeeping step that must not turn a task's outcome into a failure (Redis away)."""
    try:
        step(*args)
    except redis.RedisError as exc:
        log.error("task bookkeeping failed", extra={"step": getattr(step, "__name__", "?"),
                                                    "error": type(exc).__name__})
