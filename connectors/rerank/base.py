"""The reranker interface: a question and candidate passages in, their order (and scores) out.

A reranker only ever receives passages the answer's audience may see: the pipeline calls it after
the permission-filtered search (``usecases/rerank.py``). It raises ``RerankFailed`` for anything
that is not a ranking (unreachable, refused, too slow, a reply that does not validate); the
pipeline then keeps the first-stage order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, Sequence

#: ``error``: unreachable or refused (4xx, 5xx after the retries that fit); ``timeout``: no ranking
#: within CHATOPS_RERANK_TIMEOUT; ``invalid``: a reply that is not a valid ranking.
Failure = Literal["error", "timeout", "invalid"]


class RerankFailed(Exception):
    """The reranker gave no usable ranking; ``outcome`` says how it failed."""

    def __init__(self, message: str, outcome: Failure = "error") -> None:
        super().__init__(message)
        self.outcome: Failure = outcome


@dataclass(frozen=True)
class Ranked:
    index: int        # the candidate's position in the documents given
    score: float      # the reranker's relevance score (comparable within one reranker and model)


@dataclass(frozen=True)
class Ranking:
    """Candidates best first (it may leave some out: they keep their first-stage order after these),
    and, for a reranker that calls a language model, the model and its token counts."""

    ranked: tuple[Ranked, ...]
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class Reranker(Protocol):
    name: str           # its registry name: "http", "llm"
    candidates: int     # how many first-stage candidates it looks at (CHATOPS_RERANK_CANDIDATES)
    uses_model: bool    # it calls the language model (its tokens count against the budgets)

    def rerank(self, query: str, documents: Sequence[str]) -> Ranking:
        """The documents ranked for ``query``; raises ``RerankFailed``."""
        ...
