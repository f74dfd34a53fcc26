"""The worker process's entry: ``celery -A chatops_app.worker worker`` or ``chatops worker``."""

from __future__ import annotations

import logging

from celery import signals

from chatops import logs
from chatops_app.container import Container
from chatops.settings import Settings
from workers.celery_app import Services, create_celery, make_dispatch, redelivery_window, register_tasks
from workers.health import ConsumerTick, Health, serve
from workers.inflight import InFlight, Reaper
from bot.responder import Responder

log = logging.getLogger(__name__)


def default_pool(settings: Settings) -> str:
    """Threads when the index is embedded (one process may open it), processes otherwise."""
    return "prefork" if settings.qdrant_url else "threads"


def build(settings: Settings | None = None, pool: str | None = None, *, health_port: int | None = None):
    settings = settings or Settings.load()
    pool = pool or default_pool(settings)
    logs.setup(settings.log_level, settings.log_format)
    app = create_celery(settings)
    container = Container(settings)
    tasks = services(app, container)
    register_tasks(app, tasks, max_retries=settings.task_max_retries, ingest_time_limit=settings.ingest_time_limit)
    health = tasks.get("health")
    app.chatops_health = health  # read by the ConsumerTick bootstep
    app.steps["consumer"].add(ConsumerTick)
    port = health_port if health_port is not None else settings.worker_health_port

    def warm_up(**_kwargs):
        # Load the model and open the index before the first question, not during it.
        try:
            app.chatops_warm_up()
        except Exception:  # noqa: BLE001 - the first task will report the same problem to the asker
            log.exception("worker warm-up failed")

    def start_reaper(**_kwargs):
        # Re-queue the Slack tasks of workers that died (this one's earlier life included): now,
        # and every few seconds. It also records this worker as alive while it consumes.
        inflight = tasks.get("inflight")
        Reaper(inflight, make_dispatch(app, settings), interval=min(5.0, settings.task_lease_ttl / 3),
               on_tick=health.publish).start()
        if port:
            serve(port, health)

    (signals.worker_process_init if pool == "prefork" else signals.worker_ready).connect(warm_up, weak=False)
    signals.worker_ready.connect(start_reaper, weak=False)
    return app, container


def services(app, container: Container) -> Services:
    """What the tasks run on; the ingest tasks use the index and model the responder uses."""
    from workers.ingest_jobs import IngestJobs
    from workers.ingest_tasks import IngestTasks

    settings = container.settings

    def jobs() -> IngestJobs:
        return IngestJobs(container.redis, settings.key_prefix)

    return Services({
        "responder": lambda: Responder(container, progress_ttl=redelivery_window(settings)),
        "inflight": lambda: InFlight(container.redis, settings.key_prefix, lease_ttl=settings.task_lease_ttl,
                                     done_ttl=redelivery_window(settings)),
        "health": lambda: Health(container.redis, settings.key_prefix,
                                 stale_after=max(3 * 5.0, settings.worker_stale_after / 2)),
        "ingest_jobs": jobs,
        "ingest": lambda: IngestTasks(container.index, container.embedder, jobs(), make_dispatch(app, settings),
                                      groups=settings.group_names),
    })


def __getattr__(name: str):
    # ``celery -A chatops_app.worker worker`` looks up ``app``; build it on first use only.
    if name in ("app", "celery"):
        built = globals().get("_built")
        if built is None:
            built = globals()["_built"] = build()
        return built[0]
    raise AttributeError(name)
