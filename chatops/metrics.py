"""Prometheus metrics: what an operator counts. Named by Prometheus conventions
(``chatops_`` prefix, ``_total`` counters); no person or channel ids as labels.

Each process counts its own; the worker's health port (``CHATOPS_WORKER_HEALTH_PORT``)
serves ``GET /metrics``. The web process logs each refusal it counts.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest

SLACK_REQUESTS_REFUSED = Counter(
    "chatops_slack_requests_refused_total",
    "Requests to /slack/events refused before any handling, by reason "
    "(too_large, malformed, bad_signature_header, foreign_app, foreign_team).",
    ["reason"])
FAILURE_REPORTS = Counter(
    "chatops_failure_report_attempts_total",
    "Attempts to tell a person that answering failed, by channel (update, thread, dm) and outcome.",
    ["via", "outcome"])
TASKS_REQUEUED = Counter(
    "chatops_tasks_requeued_total",
    "Slack tasks re-queued because the worker running them stopped renewing its lease.", ["kind"])
TASKS_SKIPPED = Counter(
    "chatops_tasks_skipped_total",
    "Slack task deliveries skipped as duplicates (already done, or running elsewhere).", ["why"])
AUDIENCE_RECHECKS = Counter(
    "chatops_audience_rechecks_total",
    "Channel member lists read again just before posting, by outcome (same, narrowed).", ["outcome"])
LINKS_REMOVED = Counter(
    "chatops_answer_links_removed_total",
    "URLs in answers rendered inert (not a cited source, host not allow-listed).")
STATE_CLAIMS_REMOVED = Counter(
    "chatops_answer_state_claims_removed_total",
    "Sentences removed from generated answers because they claimed an approval, execution or "
    "permission change.")
WORKER_LAST_CONSUMED = Gauge(
    "chatops_worker_last_consumer_tick_seconds",
    "Unix time of the worker consumer loop's last tick (this process).")


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
