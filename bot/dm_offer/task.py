"""The ``answer_in_dm`` task: one per offer and person who clicked it."""

from __future__ import annotations

from chatops.tasks import TaskKind

ANSWER_IN_DM = TaskKind("answer_in_dm", "chatops.answer_in_dm", ingest=False, key_fields=("offer_id", "user"))
