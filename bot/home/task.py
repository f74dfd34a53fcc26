"""The ``home`` task: one per opening of the App Home (its Home tab or its Messages tab)."""

from __future__ import annotations

from chatops.tasks import TaskKind

HOME = TaskKind("home", "chatops.home", ingest=False)
