"""The workers' own task kinds: ingestion and the sources' syncs (the Slack features declare
theirs in ``bot/<feature>/task.py``; ``chatops_app/tasks.py`` joins them into one table)."""

from __future__ import annotations

from chatops.tasks import TaskKind

INGEST_PLAN = TaskKind("ingest_plan", "chatops.ingest_plan", ingest=True)
INGEST_BATCH = TaskKind("ingest_batch", "chatops.ingest_batch", ingest=True)
# one window of a source's sync
SOURCE_SYNC = TaskKind("source_sync", "chatops.source_sync", ingest=True, key_fields=("source", "mode", "chain"))

# `chatops index rebuild` when a worker holds the embedded index (chatops_app/index_rebuild.py)
INDEX_REBUILD = TaskKind("index_rebuild", "chatops.index_rebuild", ingest=True)

WORKER_TASKS = (INGEST_PLAN, INGEST_BATCH, SOURCE_SYNC, INDEX_REBUILD)
