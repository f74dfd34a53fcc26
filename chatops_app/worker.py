"""The worker process: ``chatops worker`` or ``celery -A chatops_app.worker worker``.

The Celery app, its tasks bound to the composition root's handlers, the consumer's
health tick, and at start-up the reaper (re-queues the Slack tasks of workers that died)
and the health endpoint.
"""

from __future__ import annotations

import logging
import os

from celery import signals
from prometheus_client import multiprocess
from celery.apps.beat import Beat

from bot.links import ANY_TENANT_FIX, any_tenant_warning
from bot.maintenance.task import MAINTENANCE
from chatops import logs
from chatops.settings import Settings
from chatops_app.container import Container
from chatops_app.settings import load_settings
from workers.beat import RecordingScheduler, beat_schedule, describe
from workers.celery_app import register_tasks
from workers.health import BEAT_BEAT_S, ConsumerTick, record_beat, serve
from workers.inflight import Reaper

log = logging.getLogger(__name__)


def default_pool(container: Container) -> str:
    """Threads when the index is embedded (one process may open it), processes otherwise."""
    return "threads" if container.engine.embedded else "prefork"


def build(settings: Settings | None = None, pool: str | None = None, *, health_port: int | None = None):
    settings = settings or load_settings()
    logs.setup(settings.log_level, settings.log_format)
    too_wide = any_tenant_warning(settings.link_hosts)   # the worker is what links answers
    if too_wide:
        log.warning(f"{too_wide}: {ANY_TENANT_FIX}")
    container = Container(settings)
    pool = pool or default_pool(container)
    app = container.celery
    register_tasks(app, container.runtime(), max_retries=settings.task_max_retries,
                   ingest_time_limit=settings.ingest_time_limit)
    app.chatops_health = container.health  # read by the ConsumerTick bootstep
    app.steps["consumer"].add(ConsumerTick)
    port = health_port if health_port is not None else settings.worker_health_port

    def warm_up(**_kwargs):
        try:
            container.warm_up()
        except Exception:  # noqa: BLE001 - the first task will report the same problem to the asker
            log.exception("worker warm-up failed")

    def start_reaper(**_kwargs):
        # Re-queue the Slack tasks of workers that died (this one's earlier life included): now,
        # and every few seconds. It also records this worker as alive while it consumes.
        Reaper(container.inflight, container.dispatch, interval=min(5.0, settings.task_lease_ttl / 3),
               on_tick=container.health.publish).start()
        if port:
            serve(port, container.health,
                  metrics_token=settings.metrics_token.get_secret_value() if settings.metrics_token else None,
                  refresh_metrics=container.refresh_worker_metrics)

    (signals.worker_process_init if pool == "prefork" else signals.worker_ready).connect(warm_up, weak=False)
    if pool == "prefork" and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        signals.worker_process_shutdown.connect(_process_gone, weak=False)
    signals.worker_ready.connect(start_reaper, weak=False)
    return app, container


def _process_gone(pid=None, **_kwargs) -> None:
    """A pool process ended: its live gauges stop counting (its counters stay in the totals)."""
    multiprocess.mark_process_dead(pid or os.getpid())


def __getattr__(name: str):
    # ``celery -A chatops_app.worker worker`` looks up ``app``; build it on first use only.
    if name in ("app", "celery"):
        built = globals().get("_built")
        if built is None:
            built = globals()["_built"] = build()
        return built[0]
    raise AttributeError(name)


def run_beat(container: Container, schedule_file=None, *, announce=print) -> None:
    """``chatops beat``: Celery beat with the sources' timetable (workers.beat)."""
    settings = container.settings
    app = container.celery
    app.conf.beat_schedule = beat_schedule(settings, container.sources, maintenance=MAINTENANCE,
                                           subscriptions=container.notifications_configured)
    path = schedule_file or settings.data_dir / "celerybeat-schedule"
    path.parent.mkdir(parents=True, exist_ok=True)
    for name, entry in sorted(app.conf.beat_schedule.items()):
        announce(f"{describe(entry)}: {name}")
    app.chatops_beat_alive = lambda: record_beat(container.redis, settings.key_prefix)
    Beat(app=app, schedule=str(path), loglevel=settings.log_level, quiet=True, scheduler=RecordingScheduler,
         max_interval=BEAT_BEAT_S).run()
