"""Prometheus metrics: what an operator counts. Named by Prometheus conventions
(``chatops_`` prefix, ``_total`` counters); no person or channel ids as labels.

The web process serves ``GET /metrics``, the worker on its health port
(``CHATOPS_WORKER_HEALTH_PORT``); both want ``Authorization: Bearer <CHATOPS_METRICS_TOKEN>``
when that is set. Several web worker processes (``chatops serve --workers N``) count into
prometheus_client's multiprocess files (``PROMETHEUS_MULTIPROC_DIR``, set by ``serve``), and any
one of them answers for all.
"""

from __future__ import annotations

import hmac
import logging
import os
from typing import Callable

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest,
                               multiprocess)

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
SLACK_APPS_UNTRUSTED = Counter(
    "chatops_slack_apps_untrusted_total",
    "App and bot users looked at as readers and counted as unknown (public documents only), by reason "
    "(external: another organisation's; not_listed: not in CHATOPS_TRUSTED_BOTS).", ["reason"])
DIRECTORY_RELOADS = Counter(
    "chatops_directory_reloads_total",
    "Re-readings of the YAML directory file after it changed, by outcome (reloaded; failed: unreadable or "
    "invalid, questions are refused until it is fixed).", ["outcome"])
LINKS_REMOVED = Counter(
    "chatops_answer_links_removed_total",
    "URLs in answers rendered inert (not a cited source, host not allow-listed).")
STATE_CLAIMS_REMOVED = Counter(
    "chatops_answer_state_claims_removed_total",
    "Sentences removed from generated answers because they claimed an approval, execution or "
    "permission change.")
ANSWERS = Counter(
    "chatops_answers_total",
    "Questions handled, by mode (llm, extractive, cached, greeting, no-evidence, refused) and route (the "
    "model that wrote it, or none).", ["mode", "route"])
STAGE_SECONDS = Histogram(
    "chatops_answer_stage_duration_seconds",
    "Time spent in each stage of answering a question (queue_wait, identity, audience, cache, retrieval, "
    "rerank, generation, slack_post).", ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0))
RERANKS = Counter(
    "chatops_rerank_total",
    "Second-stage reranking of a question's candidates, by reranker (http, llm) and outcome (ok; error, timeout, "
    "invalid: the first-stage order stood; skipped: the budget allowed no model call).", ["reranker", "outcome"])
TOP_SIMILARITY = Histogram(
    "chatops_answer_top_similarity",
    "Cosine similarity of the best passage retrieved for a question (answers that searched).",
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0))
CITATIONS = Counter(
    "chatops_answer_citations_total",
    "Citations in generated answers, by outcome (kept; dropped: the model cited a source it was not given).",
    ["outcome"])
FEEDBACK = Counter(
    "chatops_feedback_total",
    "Feedback clicks on answers, by kind (helpful, not_helpful, needs_human, resolved).", ["kind"])
LLM_TOKENS = Counter(
    "chatops_llm_tokens_total",
    "Tokens the language model counted (its usage), by model and direction (input, output).", ["model", "direction"])
LLM_COST = Counter(
    "chatops_llm_cost_total",
    "What the language model cost, in the price table's currency (models: in CHATOPS_CONFIG), by model.",
    ["model"])
CACHE_LOOKUPS = Counter(
    "chatops_answer_cache_lookups_total",
    "Answer cache lookups, by outcome (hit; miss; stale: a cited document changed or is no longer visible, "
    "the entry was dropped; bypass: a thread follow-up).", ["outcome"])
THREAD_HISTORY = Counter(
    "chatops_thread_history_total",
    "Earlier exchanges of a thread considered as a follow-up's history, by outcome (reused; withheld: a "
    "private reply to someone else, or documents this audience may not see; unconfirmed: stored without its "
    "audience, a document gone, or the index unreachable).", ["outcome"])
BUDGET_REJECTIONS = Counter(
    "chatops_budget_rejections_total",
    "Questions over a limit, by scope (person, channel, overall: the answer was extractive, no model call; "
    "rate: the person asked too often and was told to wait).", ["scope"])
TOOL_CALLS = Counter(
    "chatops_tool_calls_total",
    "Live tool calls made for people, by tool (its configured name) and outcome (ok, error, timeout, "
    "refused, not_connected, skipped).", ["tool", "outcome"])
TOOL_SECONDS = Histogram(
    "chatops_tool_call_duration_seconds",
    "How long each live tool call took, by tool (its configured name).", ["tool"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
TOOL_ROUNDS = Histogram(
    "chatops_tool_rounds",
    "Rounds of tool calls the model made for one answer (0 when it used none).",
    buckets=(0, 1, 2, 3, 4, 6, 8, 16))
TOOL_DEFINITION_CHANGES = Counter(
    "chatops_tool_definition_changes_total",
    "Times a tool's function was not offered because its live definition no longer matches what an "
    "operator approved (chatops tools approve), by tool.", ["tool"])
SLACK_EVENTS = Counter(
    "chatops_slack_events_total",
    "Slack events and clicks that reached a listener, by kind and outcome (queued, duplicate, ignored, "
    "rate_limited, disabled).", ["kind", "outcome"])
ACK_SECONDS = Histogram(
    "chatops_slack_ack_duration_seconds",
    "Time from receiving a Slack request to acknowledging it (HTTP answer or Socket Mode ack).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 3.0))
TASKS = Counter(
    "chatops_tasks_total",
    "Worker task runs by kind and outcome (done, retried, failed, skipped).", ["kind", "outcome"])
TASK_SECONDS = Histogram(
    "chatops_task_duration_seconds",
    "Worker task run time by kind.", ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0))
QUEUE_DEPTH = Gauge(
    "chatops_queue_depth",
    "Tasks waiting in each Celery queue (read from Redis when scraped).", ["queue"],
    multiprocess_mode="max")
INDEX_POINTS = Gauge(
    "chatops_index_points",
    "Passages (points) in the vector index (read when scraped).", multiprocess_mode="max")
SLACK_API_CALLS = Counter(
    "chatops_slack_api_calls_total",
    "Slack Web API calls by method and final outcome (ok, rate_limited, server_error, unreachable, error), "
    "after the SDK's own retries.", ["method", "outcome"])
SLACK_RATE_LIMITED = Counter(
    "chatops_slack_rate_limited_total",
    "429 answers from Slack's Web API, each one (the SDK waits Retry-After and tries again).")
WORKER_LAST_CONSUMED = Gauge(
    "chatops_worker_last_consumer_tick_seconds",
    "Unix time of the worker consumer loop's last tick (this process).")


def exposition(refresh: Callable[[], object] | None = None) -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type: this process's, or every
    process's that counts into the same ``PROMETHEUS_MULTIPROC_DIR``. ``refresh()`` first sets the
    gauges that are read when scraped (queue depth, index size); its failure leaves them as they were."""
    if refresh is not None:
        try:
            refresh()
        except Exception:  # noqa: BLE001 - a scrape still answers with what it has
            logging.getLogger(__name__).warning("could not refresh the scraped gauges", exc_info=True)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def authorized(token: str | None, authorization: str | None) -> bool:
    """May this request read the metrics (no token configured: anyone who reaches the port)?"""
    if not token:
        return True
    return hmac.compare_digest((authorization or "").encode(), f"Bearer {token}".encode())


# -- document sources (usecases/sync.py, usecases/freshness.py) ---------------------------------

SOURCE_SYNC_WINDOWS = Counter(
    "chatops_source_sync_windows_total",
    "Windows of source syncs, by source, mode (changes, permissions, full) and outcome "
    "(done, more, error, busy).", ["source", "mode", "outcome"])
SOURCE_CHANGES = Counter(
    "chatops_source_documents_changed_total",
    "Documents changed in the index by source syncs, by source and change (added, updated, deleted, "
    "renamed, permissions, skipped, failed: reading it failed, tried again at the next sync, unreadable).",
    ["source", "change"])
PARSE_FAILURES = Counter(
    "chatops_parse_failures_total",
    "Files whose parsing failed in its child process, by reason (cpu, memory, timeout: a limit passed; "
    "crashed; error: the parser refused the file).", ["reason"])
SOURCE_ACL_AGE = Gauge(
    "chatops_source_acl_age_seconds",
    "Seconds since the start of the source's last complete permission pass (its ACL watermark).", ["source"])
SOURCE_STALE = Gauge(
    "chatops_source_acl_stale",
    "1 while a source's permissions are older than CHATOPS_MAX_ACL_AGE: its restricted documents are "
    "withheld from answers.", ["source"])
GRAPH_NOTIFICATIONS = Counter(
    "chatops_graph_notifications_total",
    "Graph change notifications received, by outcome (changes, subscriptions: what they queued; refused: a "
    "clientState that did not check out).", ["outcome"])
GRAPH_NOTIFY_REFUSED = Counter(
    "chatops_graph_notify_refused_total",
    "Requests to the Graph notification endpoint refused, by reason (bad_client_state, bad_validation_token, "
    "unknown_source, too_large, malformed).", ["reason"])
