"""The question pipeline: who is asking, who will read, retrieve, answer.

Used by the Celery task and, in-process, by ``chatops ask``. Every exit is an
``Answer`` or a ``Refusal`` with a message meant for the asker.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Protocol

from chatops import metrics, tracing
from chatops.access import Audience, Principal
from chatops.catalogue import Catalogue
from chatops.costs import PriceTable
from connectors.identity.base import IdentityProvider
from connectors.index.base import Hit, VectorIndex
from connectors.index.retriever import QueryEmbedder, Retriever, Strategy
from connectors.llm.base import LLM, LLMUnavailable
from connectors.rerank.base import Reranker
from usecases import answer as answers
from usecases.answer_cache import AnswerCache
from usecases.budgets import BudgetGuard, OverBudget
from usecases.evidence import EvidenceRule, RuleOfEmbedder, signals as evidence_signals
from usecases.rerank import rerank_hits
from usecases.people import IDENTITY_DOWN, IDENTITY_UNKNOWN, Refusal, Someone, reader, resolve
from usecases.threads import Exchange, basis_of, reusable
from usecases.tool_loop import LiveTools
from usecases.tools import Toolbox, caller_of

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
    private_reply: bool = False             # a shared conversation, but the answer goes to the asker alone
    # The thread's earlier exchanges, as stored; the pipeline gives the model only those this
    # question's audience may read (usecases.threads). None: one stored without its audience.
    history: list[Exchange | None] = field(default_factory=list)
    allow_actions: bool = True              # offer the action catalogue to the model
    allow_tools: bool = True                # offer the live tools the asker may use
    # Told each step of live work ("Checking PagerDuty…"), for the working message.
    on_step: Callable[[str], None] | None = None
    # Told each step as a task: its id ("audience", "search", "tool:<label>"), its title and its
    # status ("in_progress", "complete", "error"), for a streamed answer's task updates.
    on_task: Callable[[str, str, str], None] | None = None
    correlation_id: str | None = None       # recorded with each tool call
    sources: tuple[str, ...] | None = None  # only these index sources (a channel's limit); None: all
    # Stream the model's answer: called with the answer's audience just before the final answer is
    # written (after retrieval and tools), it settles that the audience still holds and returns
    # where to write the answer's safe pieces (usecases/streaming.py), or None: not streamed.
    stream: Callable[[Audience], Callable[[str], None] | None] | None = None

    @property
    def is_private(self) -> bool:
        """The answer is made for the asker alone (a DM, or a private reply in a channel)."""
        return self.channel is None or self.channel_type == "im" or self.private_reply

    @property
    def shared_channel(self) -> str | None:
        """The channel asked in, whatever the reply mode (None in a DM): its budget counts the question."""
        return self.channel if self.channel and self.channel_type != "im" else None

    @property
    def asker(self) -> Someone:
        return Someone(chat_id=self.asker_slack_id, email=self.asker_email, external=self.asker_external)


@dataclass
class Timings:
    identity_ms: float = 0.0
    audience_ms: float = 0.0
    cache_ms: float = 0.0
    retrieval_ms: float = 0.0
    rerank_ms: float = 0.0           # the second stage (usecases/rerank.py); 0 without a reranker
    generation_ms: float = 0.0

    def stages(self) -> dict[str, float]:
        return {name[:-3]: round(value, 2) for name, value in vars(self).items()}


EXTERNAL_NOTE = ("You are not one of this organisation's own people in Slack (another organisation or a "
                 "guest), so I only used documents that are public to everyone here.")
def resolve_asker(q: Question, identity: IdentityProvider) -> Principal:
    """The asker. Someone of another organisation (Slack Connect) is unknown: public documents only;
    an own person the directory does not know, or a directory that cannot be asked, is refused."""
    return resolve(identity, q.asker)


SEARCHING = "Searching the documents"


def task(q: Question, task_id: str, title: str, status: str) -> None:
    """Tell the question's task listener a step's status; a progress line is never worth the answer."""
    if q.on_task is None:
        return
    try:
        q.on_task(task_id, title, status)
    except Exception:  # noqa: BLE001 - see above
        log.warning("could not show a step", exc_info=True)


def resolve_audience(q: Question, asker: Principal, identity: IdentityProvider,
                     directory: ChannelDirectory | None, *, max_members: int) -> Audience:
    """Everyone who will read the answer. Members who can't be resolved see public documents only."""
    if q.is_private or q.channel is None:   # no channel: private too
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
    # The no-evidence rule (usecases/evidence.py), calibrated per embedder; None: the floor alone.
    evidence: EvidenceRule | RuleOfEmbedder | None = None   # RuleOfEmbedder: follows an index switch
    strategy: Strategy = "feedback"        # see connectors.index.retriever
    dense_weight: float = 0.95
    catalogue: Catalogue | None = None     # actions the model may propose
    directory: ChannelDirectory | None = None
    # The sources whose permissions are too old to trust now (usecases.freshness): their restricted
    # documents are withheld from every answer.
    withheld: Callable[[], frozenset[str]] | None = None
    # Routing: a smaller model for questions one document answers with confidence.
    small_model: str | None = None
    route_min_similarity: float = 0.6
    route_margin: float = 0.1
    prices: PriceTable = field(default_factory=PriceTable)
    budgets: BudgetGuard | None = None
    cache: AnswerCache | None = None
    # Live read-only tools (usecases/tools.py) and the loop's bounds (usecases/tool_loop.py).
    toolbox: Toolbox | None = None
    tool_max_steps: int = 4
    tool_timeout: float = 10.0
    tool_deadline: float = 30.0
    # The second stage (connectors/rerank, CHATOPS_RERANK): reorders the audience's candidates; None: none.
    reranker: Reranker | None = None

    def ask(self, q: Question) -> tuple[Answer, Timings]:
        t = Timings()
        hello = None if q.history else answers.greeting(q.text)
        if hello is not None:
            return hello, t
        start = time.perf_counter()
        with tracing.span("chatops identity"):
            asker = resolve_asker(q, self.identity)
        t.identity_ms = (time.perf_counter() - start) * 1000

        start = time.perf_counter()
        if not q.is_private:
            task(q, "audience", "Checking who can read this channel", "in_progress")
        with tracing.span("chatops audience") as span:
            audience = resolve_audience(q, asker, self.identity, self.directory, max_members=self.max_members)
            span.set_attribute("chatops.audience.people", len(audience.principals))
        if not q.is_private:
            task(q, "audience", "Checking who can read this channel", "complete")
        withheld = self.withheld() if self.withheld is not None else frozenset()
        if withheld:
            log.warning("permissions of some sources are stale; their restricted documents are withheld",
                        extra={"sources": sorted(withheld)})
            audience = audience.withholding(withheld)
        audience = audience.limited_to(q.sources)
        history = reusable(q.history, asker=q.asker_slack_id, private=q.is_private, audience=audience,
                           index=self.index) if q.history else []
        t.audience_ms = (time.perf_counter() - start) * 1000
        live = self._live_tools(q, asker, audience)

        if self.cache is not None and live is None:   # live data is never served from the cache
            start = time.perf_counter()
            with tracing.span("chatops cache") as span:
                cached = None if history else self.cache.get(audience, q.text)
                span.set_attribute("chatops.cache.hit", cached is not None)
            if history:
                metrics.CACHE_LOOKUPS.labels(outcome="bypass").inc()
            t.cache_ms = (time.perf_counter() - start) * 1000
            if cached is not None:
                cached.mode, cached.usage, cached.hidden_documents, cached.costs = "cached", {}, 0, {}
                return self._finish(q, cached, asker, audience, 0, t), t

        start = time.perf_counter()
        over_budget = self._budget_check(q, asker)
        pairs = [(e.question, e.answer) for e in history]
        search_text, rewrite_usage = self._standalone(q.text, pairs, over_budget)
        retriever = Retriever(self.index, self.embedder, strategy=self.strategy,
                              dense_weight=self.dense_weight, candidates=self.candidates)
        task(q, "search", SEARCHING, "in_progress")
        with tracing.span("chatops retrieval", attributes={"db.operation.name": "search",
                                                          "chatops.retrieval.strategy": self.strategy}) as span:
            query = retriever.embed(search_text)
            found = retriever.search(query, audience, limit=max(self.top_k, self.reranker.candidates)
                                     if self.reranker is not None else self.top_k)
            found, rerank_usage = self._rerank(search_text, found, t, over_budget)   # the audience's alone
            hits = self._relevant(found)
            signals = evidence_signals(search_text, found)
            if self.evidence is not None and not self.evidence.enough(signals):
                hits = []   # the nearest passages do not answer: "couldn't find", not a guess
            hidden = 0
            if not q.is_private:
                mine = Audience.of(asker).withholding(withheld).limited_to(q.sources)   # the channel's sources
                own = self._relevant(retriever.search(query, mine, limit=self.top_k))
                hidden = len({h.chunk.doc_id for h in own if not audience.may_use(h.chunk.acl, h.chunk.source)})
            span.set_attribute("chatops.retrieval.hits", len(hits))
        t.retrieval_ms = (time.perf_counter() - start) * 1000 - t.rerank_ms
        task(q, "search", SEARCHING, "complete")

        whom = "you" if q.is_private else "everyone in this conversation"
        tools = (self.catalogue.tools(asker)
                 if (q.allow_actions and self.llm is not None and self.catalogue is not None) else [])
        if not hits and not tools and live is None:
            result = answers.no_evidence(whom)
        else:
            sources = answers.group_sources(hits)
            start = time.perf_counter()
            with tracing.span("chatops generation"):
                # nothing found: the model's text would be replaced by "couldn't find", so not streamed
                opener = functools.partial(q.stream, audience) if q.stream is not None and hits else None
                result = self._generate(q.text, pairs, sources, tools, over_budget, live, opener=opener,
                                        shared=not q.is_private)
            t.generation_ms = (time.perf_counter() - start) * 1000
            if not hits and not result.tool_calls and not any(u.get("n") for u in result.tools_used):
                result = _without_evidence(result, whom)  # no sources: never let the model guess
            else:
                result.basis = _basis(hits, result.considered)
        if history:   # what the history rests on, the answer rests on too
            result.basis = [list(b) for b in sorted({tuple(b) for b in result.basis + basis_of(history)})]
        if rewrite_usage is not None:
            result.add_usage(*rewrite_usage)
        if rerank_usage is not None:
            result.add_usage(*rerank_usage)
        result.top_similarity = round(max(h.similarity for h in found), 4) if found else None
        result.evidence = signals.as_json() if signals is not None else {}
        result.retrieved = [{"doc_id": h.chunk.doc_id, "source": h.chunk.source, "title": h.chunk.title,
                             "score": round(h.similarity, 4)} for h in _best_per_document(found)]
        result.costs = self.prices.costs(result.usage)
        if self.budgets is not None:
            self.budgets.spend(asker.slack_user_id or asker.email, q.shared_channel, sum(result.tokens), result.cost)
        self._finish(q, result, asker, audience, hidden, t)
        if self.cache is not None and not history and live is None and not result.stopped:
            self.cache.put(audience, q.text, result)
        return result, t

    def _live_tools(self, q: Question, asker: Principal, audience: Audience) -> LiveTools | None:
        """The live tools this question may use: a model to call them, tools this person may use, and
        functions an operator approved. None: no tools for this question."""
        if (self.toolbox is None or not self.toolbox or self.llm is None or not q.allow_tools or asker.email is None
                or self.tool_max_steps < 1):
            return None
        caller = caller_of(asker)
        offers = self.toolbox.offers(asker, caller)
        if not offers:
            return None
        return LiveTools(self.toolbox, offers, caller, audience, max_steps=self.tool_max_steps,
                         timeout=self.tool_timeout, deadline=self.tool_deadline, on_step=q.on_step, on_task=q.on_task,
                         correlation_id=q.correlation_id)

    def _finish(self, q: Question, result: Answer, asker: Principal, audience: Audience, hidden: int,
                t: Timings) -> Answer:
        result.hidden_documents = hidden
        if asker.email is None and not result.note:
            result.note = EXTERNAL_NOTE
        result.asker = asker
        result.audience = audience.reason or "asker"
        result.audience_members = audience.members if audience.as_of is not None else None
        result.members_as_of = audience.as_of
        log.info("question answered", extra={
            "mode": result.mode, "route": result.route, "cited": [c.source for c in result.citations],
            "hidden_documents": hidden, "audience": audience.reason or "asker",
            "timings_ms": {k: round(v, 1) for k, v in vars(t).items()},
        })
        return result

    def _budget_check(self, q: Question, asker: Principal) -> Callable[[], OverBudget | None]:
        """Whether a budget is spent: read once, before the first model call this question would make."""
        budgets = self.budgets
        if budgets is None or self.llm is None:
            return lambda: None
        person = asker.slack_user_id or asker.email
        return functools.cache(lambda: budgets.over(person, q.shared_channel))

    def _standalone(self, text: str, history: list[tuple[str, str]],
                    over_budget: Callable[[], OverBudget | None] = lambda: None
                    ) -> tuple[str, tuple[str, int | None, int | None] | None]:
        """The text to search for. A thread follow-up ("and on staging?") is rewritten into a
        standalone question by the model when there is one (and no budget is spent); otherwise the
        previous question is prepended so retrieval keeps the thread's subject. Also the rewrite's
        usage (model, input and output tokens), when the model was asked."""
        if not history:
            return text, None
        fallback = f"{history[-1][0]}\n{text}"
        if self.llm is None or over_budget() is not None:
            return fallback, None
        try:
            completion = self.llm.complete(answers.rewrite_messages(text, history), max_tokens=80)
        except LLMUnavailable:
            return fallback, None
        usage = (completion.model, completion.prompt_tokens, completion.completion_tokens)
        rewritten = completion.text
        rewritten = " ".join(rewritten.split())
        return (rewritten if 0 < len(rewritten) <= 500 else fallback), usage

    def _rerank(self, text: str, found: list[Hit], t: Timings, over_budget: Callable[[], OverBudget | None]
                ) -> tuple[list[Hit], tuple[str, int | None, int | None] | None]:
        """``found`` (searched for this audience) reordered by the reranker and cut to ``top_k``, and
        the model's usage when it called one; the first-stage order when there is none or it fails."""
        if self.reranker is None:
            return found, None
        start = time.perf_counter()
        reranked = rerank_hits(self.reranker, text, found, self.top_k, over_budget=over_budget)
        t.rerank_ms = (time.perf_counter() - start) * 1000
        return reranked.hits, reranked.usage

    def _relevant(self, hits: Iterable[Hit]) -> list[Hit]:
        """Below the similarity floor a passage is noise: better 'not found' than a guess."""
        return [h for h in hits if h.similarity >= self.min_similarity]

    def _route(self, sources: list[answers.SourceDoc],
               tools: list[dict[str, Any]]) -> tuple[list[answers.SourceDoc], str | None]:
        """The sources to give the model and the model to give them to (None: the default one).
        One document clearly ahead and confident: the small model, with that document alone (and
        the actions on offer, if any)."""
        if not self.small_model or not sources:
            return sources, None
        ranked = sorted(sources, key=lambda s: -s.similarity)
        best = ranked[0].similarity
        second = ranked[1].similarity if len(ranked) > 1 else 0.0
        if best >= self.route_min_similarity and best - second >= self.route_margin:
            return [replace(ranked[0], n=1)], self.small_model
        return sources, None

    def _generate(self, text: str, history: list[tuple[str, str]], sources: list[answers.SourceDoc],
                  tools: list[dict[str, Any]], over_budget: Callable[[], OverBudget | None],
                  live: LiveTools | None = None, *, opener: answers.Opener | None = None,
                  shared: bool = False) -> "Answer":
        if self.llm is None:
            return answers.extractive(sources, note="Extractive answer: no language model is "
                                      "configured, so here are the most relevant passages.")
        over = over_budget()
        if over is not None:
            result = answers.extractive(sources, note="Quoted from the documents: the language-model "
                                        "budget is used up for now.")
            result.private_note = over.note()
            return result
        sources, model = self._route(sources, tools) if live is None else (sources, None)
        try:
            return answers.generate(text, sources, self.llm, history, tools=tools, model=model, live=live,
                                    opener=opener, shared=shared)
        except LLMUnavailable as exc:
            log.error("language model unavailable; falling back to extractive", extra={"error": str(exc)})
            return answers.extractive(sources, note="The language model is unavailable right now, so "
                                      "here are the most relevant passages instead.")


def _without_evidence(result: Answer, whom: str) -> Answer:
    """Nothing found and no live result: "couldn't find", keeping what was tried and spent."""
    empty = answers.no_evidence(whom)
    result.text, result.citations, result.mode = empty.text, [], empty.mode
    return result


def _best_per_document(hits: Iterable[Hit]) -> list[Hit]:
    seen: set[tuple[str, str]] = set()
    out: list[Hit] = []
    for h in sorted(hits, key=lambda h: -h.similarity):
        key = (h.chunk.source, h.chunk.doc_id)
        if key not in seen:
            seen.add(key)
            out.append(h)
    return out


def _basis(hits: Iterable[Hit], considered: list[str]) -> list[list[str]]:
    """[source, doc_id, doc_hash] of every document the model was given."""
    wanted = set(considered)
    out: list[list[str]] = []
    seen: set[tuple[str, str]] = set()
    for h in hits:
        key = (h.chunk.source, h.chunk.doc_id)
        if h.chunk.doc_id in wanted and key not in seen:
            seen.add(key)
            out.append([h.chunk.source, h.chunk.doc_id, h.chunk.doc_hash])
    return out


Answer = answers.Answer
