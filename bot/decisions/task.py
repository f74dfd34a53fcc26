"""The ``decision`` task: one per Approve click or Reject submission."""

from __future__ import annotations

from chatops.tasks import TaskKind

DECISION = TaskKind("decision", "chatops.decision", ingest=False)
