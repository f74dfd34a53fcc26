"""The ``question`` task: one per message asked, named by its channel and timestamp (the Slack
retry of a message, and the app_mention and message events of one post, are one task)."""

from __future__ import annotations

from chatops.tasks import TaskKind

QUESTION = TaskKind("question", "chatops.question", ingest=False, key_fields=("channel", "ts"))
