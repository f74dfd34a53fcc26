"""A thread's history: each answer kept with the audience it was made for, and handed to a later
question in the thread only if that question's audience may read it.

An exchange (a question and its answer) is stored with
* ``private`` and ``asker``: whether it was a private reply (a DM, or a channel with ``reply:
  ephemeral``) and the chat id of the one person it was made for;
* ``basis``: every document it rests on, [source, doc_id, doc_hash]: those the model was given
  and those of the earlier exchanges it was given as history.

A new question gets an exchange as history only when
* the exchange was a private reply: the new one is also a private reply, to the same person;
* always: every document of its basis is still indexed and may be used for the new question's
  audience (``Audience.may_use``, the rule retrieval applies).
What cannot be confirmed (an exchange stored without its audience, a document gone, the index
unreachable) is left out: a follow-up loses context, never someone else's answer.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from chatops import metrics
from chatops.access import Audience
from connectors.index.base import VectorIndex

log = logging.getLogger(__name__)

MAX_ANSWER_CHARS = 4000
KEEP = 3          # exchanges given to a follow-up (the prompt takes the last three)


@dataclass(frozen=True)
class Exchange:
    question: str
    answer: str
    private: bool = False                         # made for one person alone
    asker: str | None = None                      # that person (a private reply without one: nobody's)
    basis: tuple[tuple[str, str, str], ...] = ()  # (source, doc_id, doc_hash)

    @classmethod
    def of(cls, question: str, answer: str, *, private: bool, asker: str | None,
           basis: Iterable[Sequence[str]]) -> Exchange:
        return cls(question, answer[:MAX_ANSWER_CHARS], private, asker if private else None,
                   tuple(sorted({(str(s), str(d), str(h)) for s, d, h in basis})))

    def to_record(self) -> dict[str, Any]:
        return {"q": self.question, "a": self.answer, "private": self.private, "for": self.asker,
                "basis": [list(b) for b in self.basis]}

    @classmethod
    def from_record(cls, data: Any) -> Exchange | None:
        """None for anything else: an exchange stored before audiences were kept ([q, a]), or garbage."""
        try:
            private, asker = data["private"], data["for"]
            if not isinstance(private, bool) or not (asker is None or isinstance(asker, str)):
                return None
            return cls(str(data["q"]), str(data["a"]), private, asker,
                       tuple((str(s), str(d), str(h)) for s, d, h in data["basis"]))
        except (KeyError, TypeError, ValueError):
            return None


def basis_of(history: Iterable[Exchange]) -> list[list[str]]:
    """The documents a set of exchanges rests on, as an ``Answer.basis``."""
    return [list(b) for b in sorted({b for e in history for b in e.basis})]


def reusable(history: Sequence[Exchange | None], *, asker: str | None, private: bool, audience: Audience,
             index: VectorIndex, limit: int = KEEP) -> list[Exchange]:
    """The latest ``limit`` exchanges a question may be given as history (oldest first): see the
    module's rule. ``asker``: the new question's asker (chat id); ``private``: its answer goes to
    the asker alone; ``index``: ``documents(source, doc_ids)`` as indexed now."""
    kept: list[Exchange] = []
    left_out = 0
    for exchange in reversed(history):
        if len(kept) >= limit:
            break
        if exchange is None:
            outcome = "unconfirmed"
        elif exchange.private and not (private and asker is not None and asker == exchange.asker):
            outcome = "withheld"
        else:
            outcome = _visible(exchange, audience, index)
        metrics.THREAD_HISTORY.labels(outcome=outcome).inc()
        if outcome == "reused" and exchange is not None:
            kept.append(exchange)
        else:
            left_out += 1
    if left_out:
        log.info("earlier exchanges of the thread left out of this question's history: made for someone else, "
                 "or resting on documents its audience may not see", extra={"kept": len(kept), "left_out": left_out})
    return kept[::-1]


def _visible(exchange: Exchange, audience: Audience, index: VectorIndex) -> str:
    by_source: dict[str, set[str]] = defaultdict(set)
    for source, doc_id, _hash in exchange.basis:
        by_source[source].add(doc_id)
    try:
        for source, doc_ids in by_source.items():
            now = index.documents(source, sorted(doc_ids))
            for doc_id in doc_ids:
                state = now.get(doc_id)
                if state is None:
                    return "unconfirmed"
                if not audience.may_use(state.acl, source):
                    return "withheld"
    except Exception as exc:  # noqa: BLE001 - cannot confirm who may read it: left out
        log.warning("could not check a thread's history against the index; left out",
                    extra={"error": type(exc).__name__})
        return "unconfirmed"
    return "reused"
