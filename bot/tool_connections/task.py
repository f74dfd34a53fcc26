"""The ``tool_connection`` task: one per Disconnect click."""

from __future__ import annotations

from chatops.tasks import TaskKind

TOOL_CONNECTION = TaskKind("tool_connection", "chatops.tool_connection", ingest=False)
