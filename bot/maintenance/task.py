"""The ``maintenance`` task: one of the scheduler's periodic jobs. No lease (each run is new work;
each job is idempotent), so it goes on the ingest queue."""

from __future__ import annotations

from chatops.tasks import TaskKind

MAINTENANCE = TaskKind("maintenance", "chatops.maintenance", ingest=True)
