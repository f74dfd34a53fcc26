"""The ``feedback`` task: one per click or form (a vote, an escalation, a resolution)."""

from __future__ import annotations

from chatops.tasks import TaskKind

FEEDBACK = TaskKind("feedback", "chatops.feedback", ingest=False)
