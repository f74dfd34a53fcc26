"""The scheduler's timetable: the sources' syncs and the service's own upkeep."""

from __future__ import annotations

from datetime import timedelta

from celery import Celery
from celery.beat import PersistentScheduler
from celery.schedules import crontab

from chatops.settings import Settings
from bot.maintenance.task import MAINTENANCE
from workers.beat import beat_schedule, describe


def test_maintenance_jobs_are_scheduled_even_without_sources():
    schedule = beat_schedule(Settings.load(CHATOPS_REPORT_HOUR="6"), [], maintenance=MAINTENANCE)
    jobs = {name: entry for name, entry in schedule.items() if entry["task"] == MAINTENANCE.name}
    assert {e["kwargs"]["payload"]["job"] for e in jobs.values()} == {"expire_proposals", "cache_cleanup",
                                                                      "daily_report"}
    assert jobs["expire proposals"]["schedule"] == timedelta(seconds=300)
    report = jobs["daily report"]["schedule"]
    assert isinstance(report, crontab) and report.hour == {6} and report.minute == {0}


def test_each_source_is_synced_three_ways():
    schedule = beat_schedule(Settings.load(), ["wiki"], maintenance=MAINTENANCE, subscriptions=True)
    modes = {e["kwargs"]["payload"]["mode"] for n, e in schedule.items() if n.startswith("sync wiki")}
    assert modes == {"changes", "permissions", "full"} and "graph subscriptions" in schedule


def test_what_must_not_wait_an_interval_is_due_when_beat_starts_and_a_restart_keeps_its_times(tmp_path):
    """Celery beat's own scheduler over this timetable: on a fresh schedule file the subscriptions,
    the first changes sync and the proposals' expiry are due at once, the rest one interval on;
    a beat restarted on a file that has run them keeps their times instead of running them again."""
    app = Celery("beat-test", set_as_current=False)
    app.conf.beat_schedule = beat_schedule(Settings.load(), ["wiki"], maintenance=MAINTENANCE, subscriptions=True)
    path = str(tmp_path / "celerybeat-schedule")
    first = PersistentScheduler(app=app, schedule_filename=path)
    due = {name for name, entry in first.schedule.items() if entry.is_due()[0]}
    assert due == {"graph subscriptions", "sync wiki changes", "expire proposals"}
    for name in due:   # what beat does when it sends one
        first.schedule[name] = next(first.schedule[name])
    first.close()

    again = PersistentScheduler(app=app, schedule_filename=path)
    try:
        assert {name for name, entry in again.schedule.items() if entry.is_due()[0]} == set()
    finally:
        again.close()


def test_every_entry_says_when_it_runs():
    """`chatops beat` prints its timetable at start: an interval, or the daily report's time (a crontab,
    which has no total_seconds: printing it used to stop beat at start)."""
    schedule = beat_schedule(Settings.load(CHATOPS_REPORT_HOUR="7"), ["wiki"], maintenance=MAINTENANCE, subscriptions=True)
    said = {name: describe(entry) for name, entry in schedule.items()}
    assert said["daily report"] == "at 07:00 UTC daily"
    assert said["sync wiki changes"] == "every 300 s, first at start"
    assert said["sync wiki full"] == "every 86400 s"
    assert said["graph subscriptions"] == "every 3600 s, first at start"
