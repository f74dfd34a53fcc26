"""The question pipeline: who is asking, who will read, retrieve, answer.

Used by the Celery task and, in-process, by ``chatops ask``. Every exit is an
``Answer`` or a ``Refusal`` with a message meant for the asker.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

from chatops.access import Audience, Principal
from connectors.identity.base import IdentityProvider
from connectors.index.base import VectorIndex
from connectors.index.retriever import QueryEmbedder, Retriever
from connectors.llm.base import LLM, LLMUnavailable
from usecases import answer as answers
from usecases.people import IDENTITY_DOWN, IDENTITY_UNKNOWN, Refusal, Someone, reader, resolve

log = logging.getLogger(__name__)

__all__ = ["IDENTITY_DOWN", "IDENTITY_UNKNOWN", "ChannelDirectory", "Pipeline", "Question", "Refusal",
           "resolve_asker", "resolve_audience"]


class ChannelDirectory(Protocol):
    """What the pipeline needs to know about a conversation: who is in it."""

    def members(self, channel: str, *, max_age: float | None = None) -> tuple[list[Someone], float]:
        """The members, and when the list was read (Unix time); ``max_age``: read it again when
        the known list is older than that many seconds."""
        ...


@dataclass
class Question:
    text: str
    asker_slack_id: str | None = None       # the chat platform's id (kept on the principal)
    asker_email: str | None = None          # what the directory knows the asker by
    asker_external: bool = False            # another organisation: public documents only
    channel: str | None = None
    channel_type: str | None = None        # "im" for a DM; anything else is shared
    history: list[tuple[str, str]] = field(default_factory=list)
    allow_actions: bool = True              # offer the action catalogue to the model

    @property
    def is_private(self) -> bool:
        return self.channel is None or self.channel_type == "im"

    @property
    def asker(self) -> Someone:
        return Someone(chat_id=self.asker_slack_id, email=self.asker_email, external=self.asker_external)


@dataclass
class Timings:
    identity_ms: float = 0.0
    audience_ms: float = 0.0
    retrieval_ms: float = 0.0
    generation_ms: float = 0.0


EXTERNAL_NOTE = ("You are not one of this organisation's own people in Slack (another organisation or a "
                 "guest), so I only used documents that are public to everyone here.")
def resolve_asker(q: Question, identity: IdentityProvider) -> Principal:
    """The asker. Someone of another organisation (Slack Connect) is unknown: public documents only;
    an own person the directory does not know, or a directory that cannot be asked, is refused."""
    return resolve(identity, q.asker)


def resolve_audience(q: Question, asker: Principal, identity: IdentityProvider,
                     directory: ChannelDirectory | None, *, max_members: int) -> Audience:
    """Everyone who will read the answer. Members who can't be resolved see public documents only."""
    if q.is_private:
        return Audience.of(asker)
    if directory is None:
        return Audience.public("the channel's members could not be listed")
    try:
        members, as_of = directory.members(q.channel)
    except Exception as exc:  # noqa: BLE001 - any failure here means: don't widen access
        log.warning("could not list channel members; public documents only",
                    extra={"channel": q.channel, "error": type(exc).__name__})
        return Audience.public("the channel's members could not be listed")
    others = [m for m in members if m.chat_id != asker.slack_user_id]
    if len(others) + 1 > max_members:
        return Audience.public(f"the channel has more than {max_members} members")
    principals = [asker] + [reader(identity, m) for m in others if not m.bot]
    return Audience.everyone(principals, reason=f"{len(principals)} channel members",
                             members=[m.chat_id for m in members if m.chat_id], as_of=as_of)


@dataclass
class Pipeline:
    identity: IdentityProvider
    index: VectorIndex
    embedder: QueryEmbedder
    llm: LLM | None
    top_k: int = 6
    candidates: int = 50
    max_members: int = 200
    min_similarity: float = 0.3
    strategy: str = "feedback"             # see connectors.index.retriever
    dense_weight: float = 0.95
    catalogue: object | None = None        # chatops.catalogue.Catalogue: actions the model may propose
    directory: ChannelDirectory | None = None
    # The sources whose permissions are too old to trust now (usecases.freshness): their restricted
    # documents are withheld from every answer.
    withheld: Callable[[], frozenset[str]] | None = None

    def ask(self, q: Question) -> tuple[Answer, Timings]:
        t = Timings()
        start = time.perf_counter()
        asker = resolve_asker(q, self.identity)
        t.identity_ms = (time.perf_counter() - start) * 1000

        start = time.perf_counter()
        audience = resolve_audience(q, asker, self.identity, self.directory, max_members=self.max_members)
        withheld = self.withheld() if self.withheld is not None else frozenset()
        if withheld:
            log.warning("permissions of some sources are stale; their restricted documents are withheld",
                        extra={"sources": sorted(withheld)})
            audience = audience.withholding(withheld)
        t.audience_ms = (time.perf_counter() - start) * 1000

        start = time.perf_counter()
        search_text = self._standalone(q)
        retriever = Retriever(self.index, self.embedder, strategy=self.strategy,
                              dense_weight=self.dense_weight, candidates=self.candidates)
        query = retriever.embed(search_text)
        hits = self._relevant(retriever.search(query, audience, limit=self.top_k))
        hidden = 0
        if not q.is_private:
            own = self._relevant(retriever.search(query, Audience.of(asker).withholding(withheld), limit=self.top_k))
            hidden = len({h.chunk.doc_id for h in own if not audience.may_use(h.chunk.acl, h.chunk.source)})
        t.retrieval_ms = (time.perf_counter() - start) * 1000

        whom = "you" if q.is_private else "everyone in this conversation"
        tools = (self.catalogue.tools(asker)
                 if (q.allow_actions and self.llm is not None and self.catalogue is not None) else [])
        if not hits and not tools:
            result = answers.no_evidence(whom)
        else:
            sources = answers.group_sources(hits)
            start = time.perf_counter()
            result = self._generate(q, sources, tools)
            t.generation_ms = (time.perf_counter() - start) * 1000
            if not hits and not result.tool_calls:
                result = answers.no_evidence(whom)  # no sources: never let the model guess
        result.hidden_documents = hidden
        if asker.email is None and not result.note:
            result.note = EXTERNAL_NOTE
        result.asker = asker
        result.audience = audience.reason or "asker"
        result.audience_members = audience.members if audience.as_of is not None else None
        result.members_as_of = audience.as_of
        log.info("question answered", extra={
            "mode": result.mode, "cited": [c.source for c in result.citations],
            "hidden_documents": hidden, "audience": audience.reason or "asker",
            "timings_ms": {k: round(v, 1) for k, v in vars(t).items()},
        })
        return result, t

    def _standalone(self, q: Question) -> str:
        """The text to search for. A thread follow-up ("and on staging?") is rewritten into a
        standalone question by the model when there is one; otherwise the previous question is
        prepended so retrieval keeps the thread's subject."""
        if not q.history:
            return q.text
        fallback = f"{q.history[-1][0]}\n{q.text}"
        if self.llm is None:
            return fallback
        try:
            rewritten = self.llm.complete(answers.rewrite_messages(q.text, q.history), max_tokens=80).text
        except LLMUnavailable:
            return fallback
        rewritten = " ".join(rewritten.split())
        return rewritten if 0 < len(rewritten) <= 500 else fallback

    def _relevant(self, hits):
        """Below the similarity floor a passage is noise: better 'not found' than a guess."""
        return [h for h in hits if h.similarity >= self.min_similarity]

    def _generate(self, q: Question, sources, tools: list[dict]) -> "Answer":
        if self.llm is None:
            return answers.extractive(sources, note="Extractive answer: no language model is "
                                      "configured, so here are the most relevant passages.")
        try:
            return answers.generate(q.text, sources, self.llm, q.history, tools=tools)
        except LLMUnavailable as exc:
            log.error("language model unavailable; falling back to extractive", extra={"error": str(exc)})
            return answers.extractive(sources, note="The language model is unavailable right now, so "
                                      "here are the most relevant passages instead.")


Answer = answers.Answer
