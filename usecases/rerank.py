"""The second stage of retrieval: the audience's candidates reordered by a reranker
(``connectors/rerank``, ``CHATOPS_RERANK``).

Only ever given hits of a search already filtered by the answer's audience (the pipeline calls it
after that search; never with the asker's own search, which only counts hidden documents). Each
reranked hit keeps the reranker's score as ``Hit.rerank_score`` (None: not reranked). On any failure
(unreachable, refused, too slow, a reply that is not a ranking) the first-stage order stands and the
answer still goes out: a warning line and ``chatops_rerank_total{outcome=…}`` say so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Callable, Sequence

from chatops import metrics, tracing
from connectors.index.base import Hit
from connectors.rerank.base import Reranker, RerankFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reranked:
    hits: list[Hit]                  # best first, cut to the limit
    outcome: str                     # ok, error, timeout, invalid, skipped (over budget), none (nothing to rank)
    usage: tuple[str, int | None, int | None] | None = None   # the model's call: model, input and output tokens


def passage_text(hit: Hit) -> str:
    """What a reranker reads of a candidate: its document's title, section heading and text."""
    c = hit.chunk
    return "\n".join(part for part in (c.title, c.heading, c.text) if part)


def rerank_hits(reranker: Reranker, query: str, hits: Sequence[Hit], limit: int, *,
                over_budget: Callable[[], object | None] = lambda: None) -> Reranked:
    """``hits`` (first-stage order, every one visible to the audience) reordered by ``reranker``,
    cut to ``limit``; the first-stage order, cut, when it fails or the budget allows no model call."""
    candidates = list(hits[:reranker.candidates])
    if len(candidates) < 2:
        return Reranked(list(hits[:limit]), "none")
    if reranker.uses_model and over_budget() is not None:
        metrics.RERANKS.labels(reranker=reranker.name, outcome="skipped").inc()
        return Reranked(list(hits[:limit]), "skipped")
    with tracing.span("chatops rerank", attributes={"chatops.rerank.reranker": reranker.name,
                                                   "chatops.rerank.candidates": len(candidates)}) as span:
        try:
            ranking = reranker.rerank(query, [passage_text(h) for h in candidates])
        except RerankFailed as exc:
            return _first_stage(reranker, hits, limit, exc.outcome, str(exc))
        except Exception as exc:  # noqa: BLE001 - a reranker's bug must not cost the answer
            return _first_stage(reranker, hits, limit, "error", f"{type(exc).__name__}: {exc}")
        span.set_attribute("chatops.rerank.outcome", "ok")
    placed = {r.index for r in ranking.ranked}
    ordered = [replace(candidates[r.index], rerank_score=r.score) for r in ranking.ranked]
    ordered += [h for i, h in enumerate(candidates) if i not in placed]   # left out: first-stage order after
    ordered += hits[len(candidates):]                                    # beyond the candidates (CHATOPS_TOP_K larger)
    metrics.RERANKS.labels(reranker=reranker.name, outcome="ok").inc()
    usage = ((ranking.model, ranking.prompt_tokens, ranking.completion_tokens)
             if ranking.model is not None else None)
    return Reranked(ordered[:limit], "ok", usage)


def _first_stage(reranker: Reranker, hits: Sequence[Hit], limit: int, outcome: str, why: str) -> Reranked:
    log.warning("reranking failed; the first-stage order stands",
                extra={"reranker": reranker.name, "outcome": outcome, "error": why})
    metrics.RERANKS.labels(reranker=reranker.name, outcome=outcome).inc()
    return Reranked(list(hits[:limit]), outcome)
