"""The scheduler's timetable: the sources' syncs and the service's own upkeep."""

from __future__ import annotations

from datetime import timedelta

from celery.schedules import crontab

from chatops.settings import Settings
from chatops.tasks import TASKS
from workers.beat import beat_schedule


def test_maintenance_jobs_are_scheduled_even_without_sources():
    schedule = beat_schedule(Settings.load(CHATOPS_REPORT_HOUR="6"), [])
    jobs = {name: entry for name, entry in schedule.items() if entry["task"] == TASKS["maintenance"].name}
    assert {e["kwargs"]["payload"]["job"] for e in jobs.values()} == {"expire_proposals", "cache_cleanup",
                                                                      "daily_report"}
    assert jobs["expire proposals"]["schedule"] == timedelta(seconds=300)
    report = jobs["daily report"]["schedule"]
    assert isinstance(report, crontab) and report.hour == {6} and report.minute == {0}


def test_each_source_is_synced_three_ways():
    schedule = beat_schedule(Settings.load(), ["wiki"], subscriptions=True)
    modes = {e["kwargs"]["payload"]["mode"] for n, e in schedule.items() if n.startswith("sync wiki")}
    assert modes == {"changes", "permissions", "full"} and "graph subscriptions" in schedule
