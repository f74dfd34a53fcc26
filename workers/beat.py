"""The scheduler's timetable (``chatops beat``: Celery beat).

Per configured source: its changes every ``CHATOPS_SYNC_CHANGES_EVERY`` seconds (default 5
minutes), its permissions every ``CHATOPS_SYNC_PERMISSIONS_EVERY`` (15 minutes), a full
reconciliation every ``CHATOPS_SYNC_FULL_EVERY`` (a day). Each entry sends a ``source_sync``
task without a chain: the worker that takes it starts the chain, or asks the one already under
way to run again when it ends (workers.source_tasks). With Graph change notifications set up
(``CHATOPS_PUBLIC_URL``), the subscriptions are created and renewed every hour.

Celery beat sends an interval entry first one interval after it meets it. What must not wait
that long runs as soon as beat starts with a schedule file that has never run it (a fresh
deployment): the Graph subscriptions (else notifications start an hour late), each source's
changes sync (else the first documents arrive after five minutes), and the proposals' expiry
(what lapsed while no beat ran loses its buttons now). Their entries carry a
``last_run_at`` long past; a schedule file that has run them keeps its own times, so a
restarted beat does not send them again early.

And the service's own upkeep (``maintenance`` tasks): overdue proposals expired and their
buttons taken off every 5 minutes, the answer cache cleaned every hour, the daily report at
``CHATOPS_REPORT_HOUR`` (UTC) to ``CHATOPS_REPORT_CHANNEL``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

from celery.beat import PersistentScheduler
from celery.schedules import crontab, schedule as interval

from chatops.settings import Settings
from chatops.tasks import TaskKind
from workers.tasks import SOURCE_SYNC

log = logging.getLogger(__name__)

SUBSCRIPTIONS_EVERY = 3600
EXPIRE_EVERY = 300          # proposals past their expiry lose their buttons within 5 minutes
CACHE_CLEANUP_EVERY = 3600
# An entry with this last run is due the moment beat first meets it (see the module's text).
AT_START = datetime(2000, 1, 1, tzinfo=timezone.utc)


def beat_schedule(settings: Settings, sources: Iterable[str], *, maintenance: TaskKind,
                  subscriptions: bool = False) -> dict:
    """``maintenance``: the task kind the upkeep jobs go to (the Slack feature's, bot/maintenance/)."""
    schedule: dict = {}
    every = {"changes": settings.sync_changes_every, "permissions": settings.sync_permissions_every,
             "full": settings.sync_full_every}
    task = SOURCE_SYNC.name
    options = {"queue": settings.ingest_queue}   # source syncs are ingestion (workers/tasks.py)
    for name in sorted(sources):
        for mode, seconds in every.items():
            schedule[f"sync {name} {mode}"] = {
                "task": task, "schedule": timedelta(seconds=seconds), "options": options,
                "kwargs": {"payload": {"source": name, "mode": mode, "chain": None}},
                **({"last_run_at": AT_START} if mode == "changes" else {})}
    jobs = {"expire proposals": ("expire_proposals", timedelta(seconds=EXPIRE_EVERY)),
            "answer cache clean-up": ("cache_cleanup", timedelta(seconds=CACHE_CLEANUP_EVERY)),
            "daily report": ("daily_report", crontab(minute=0, hour=settings.report_hour))}
    for name, (job, when) in jobs.items():
        schedule[name] = {"task": maintenance.name, "schedule": when, "options": options,
                          "kwargs": {"payload": {"job": job}},
                          **({"last_run_at": AT_START} if job == "expire_proposals" else {})}
    if subscriptions:
        schedule["graph subscriptions"] = {
            "task": task, "schedule": timedelta(seconds=SUBSCRIPTIONS_EVERY), "options": options,
            "kwargs": {"payload": {"source": "*", "mode": "subscriptions", "chain": None}},
            "last_run_at": AT_START}
    return schedule


def describe(entry: dict) -> str:
    """When an entry runs, for people: "every 300 s, first at start", "at 08:00 UTC daily"."""
    when = entry["schedule"]
    if isinstance(when, (timedelta, interval)):
        seconds = (when if isinstance(when, timedelta) else when.run_every).total_seconds()
        text = f"every {seconds:g} s"
    elif isinstance(when, crontab) and len(when.hour) == len(when.minute) == 1 and len(when.day_of_week) == 7 \
            and len(when.day_of_month) == 31 and len(when.month_of_year) == 12:
        text = f"at {min(when.hour):02d}:{min(when.minute):02d} UTC daily"
    else:
        text = str(when)
    return text + (", first at start" if entry.get("last_run_at") == AT_START else "")



class RecordingScheduler(PersistentScheduler):
    """Celery's scheduler with its schedule file, recording each time it wakes that beat is alive
    (``app.chatops_beat_alive``, a callable; ``chatops doctor`` reads what it records)."""

    def tick(self, *args, **kwargs):
        alive: Callable[[], None] | None = getattr(self.app, "chatops_beat_alive", None)
        if alive is not None:
            try:
                alive()
            except Exception as exc:  # noqa: BLE001 - a missed record only makes beat look late
                log.warning("could not record that beat is alive", extra={"error": type(exc).__name__})
        return super().tick(*args, **kwargs)
