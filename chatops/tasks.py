"""The work the web process and the CLI hand to the workers: task kinds, and the table of them.

Each kind is declared where its work lives: a Slack feature in its folder (``bot/<feature>/task.py``,
listed in ``bot/features.py``), the workers' own in ``workers/tasks.py``; the composition root joins
them into one ``TaskTable`` (``chatops_app/tasks.py``). A kind has its name on the queue and says
whether it is ingestion (its own queue and time limit, no lease) or a Slack task (under a lease,
its failure reported to the person: ``workers.inflight``). Its key names one piece of work the
same way for every delivery of it (the lease, the done mark and the step record use it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from chatops import keys


@dataclass(frozen=True)
class TaskKind:
    kind: str
    name: str                           # the Celery task name
    ingest: bool                        # ingestion: the ingest queue and time limit, no lease
    key_fields: tuple[str, ...] = ("cid",)   # the payload's fields that name one piece of work

    @property
    def leased(self) -> bool:
        return not self.ingest

    def key(self, payload: dict[str, Any]) -> str:
        """``kind:field:field``: one key per piece of work, the same for every delivery of it."""
        return keys.task(self.kind, *(payload.get(name) for name in self.key_fields))


class TaskTable(Mapping[str, TaskKind]):
    """Every task kind of the service, by kind; two kinds never share a kind or a Celery name."""

    def __init__(self, *kinds: TaskKind):
        self._kinds: dict[str, TaskKind] = {}
        for t in kinds:
            if t.kind in self._kinds or any(t.name == other.name for other in self._kinds.values()):
                raise ValueError(f"task kind {t.kind!r} ({t.name}) is declared twice")
            self._kinds[t.kind] = t

    def __getitem__(self, kind: str) -> TaskKind:
        return self._kinds[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)

    def key(self, kind: str, payload: dict[str, Any]) -> str:
        return self[kind].key(payload)
