"""The work the web process and the CLI hand to the workers: one table of task kinds.

Each kind has its name on the queue and says whether it is ingestion (its own queue and
time limit, no lease) or a Slack task (under a lease, its failure reported to the person:
``workers.inflight``). ``task_key`` names one piece of work the same way for every
delivery of it (the lease, the done mark and the step record use it).
"""

from __future__ import annotations

from dataclasses import dataclass

QUESTION = "question"
DECISION = "decision"
ANSWER_IN_DM = "answer_in_dm"
INGEST_PLAN = "ingest_plan"
INGEST_BATCH = "ingest_batch"
SOURCE_SYNC = "source_sync"
FEEDBACK = "feedback"
MAINTENANCE = "maintenance"


@dataclass(frozen=True)
class TaskKind:
    kind: str
    name: str          # the Celery task name
    ingest: bool       # ingestion: the ingest queue and time limit, no lease

    @property
    def leased(self) -> bool:
        return not self.ingest


TASKS: dict[str, TaskKind] = {t.kind: t for t in (
    TaskKind(QUESTION, "chatops.question", ingest=False),
    TaskKind(DECISION, "chatops.decision", ingest=False),
    TaskKind(ANSWER_IN_DM, "chatops.answer_in_dm", ingest=False),
    TaskKind(FEEDBACK, "chatops.feedback", ingest=False),       # a vote, an escalation, a resolution
    # the scheduler's periodic jobs: no lease (each run is new work; each job is idempotent)
    TaskKind(MAINTENANCE, "chatops.maintenance", ingest=True),
    TaskKind(INGEST_PLAN, "chatops.ingest_plan", ingest=True),
    TaskKind(INGEST_BATCH, "chatops.ingest_batch", ingest=True),
    TaskKind(SOURCE_SYNC, "chatops.source_sync", ingest=True),      # one window of a source's sync
)}


def task_key(kind: str, payload: dict) -> str:
    """One key per piece of work, the same for every delivery of it."""
    if kind == QUESTION:
        return f"question:{payload.get('channel')}:{payload.get('ts')}"
    if kind == ANSWER_IN_DM:
        return f"answer_in_dm:{payload.get('offer_id')}:{payload.get('user')}"
    if kind == SOURCE_SYNC:
        return f"source_sync:{payload.get('source')}:{payload.get('mode')}:{payload.get('chain')}"
    return f"{kind}:{payload.get('cid')}"
