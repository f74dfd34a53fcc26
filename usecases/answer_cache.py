"""The answer cache: the same question from the same audience, answered once.

Safe across permissions by construction:

* the key is a fingerprint of the **audience's** ACL terms (every reader's email and groups, the
  withheld sources, the channel's source limit), never of the asker alone, plus the version of
  everything that shapes an answer (models, prompt, retrieval settings) and the normalised
  question: two audiences that may see different documents never share a key;
* only answers the model wrote from documents are kept: never refusals, errors, fallbacks,
  answers with proposals (those belong to their asker), or "nothing found";
* on a hit, every document the answer was made from is checked again in the index: still
  there, same content hash, and still visible to the current audience; if one is not, the
  entry is dropped and the question answered afresh;
* entries expire (``CHATOPS_CACHE_TTL``); thread follow-ups never use the cache.

Redis trouble is a miss, never an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import unicodedata
from collections import defaultdict
from typing import Iterable

import redis

from chatops import keys, metrics
from chatops.access import Audience
from connectors.index.base import VectorIndex
from usecases.answer import SYSTEM_PROMPT, Answer

log = logging.getLogger(__name__)


def normalise(question: str) -> str:
    """Case, accents' composition, spacing and trailing punctuation do not make a new question."""
    text = unicodedata.normalize("NFKC", question).casefold()
    text = re.sub(r"\s+", " ", text).strip()
    return text.rstrip(" ?!.")


def answer_version(*, model: str, small_model: str | None, route_min_similarity: float, route_margin: float,
                   top_k: int, candidates: int, min_similarity: float, retrieval: str, dense_weight: float,
                   embedding_model: str | None, max_tokens: int, with_model: bool, rerank: str = "none",
                   evidence: str = "floor") -> str:
    """Everything that shapes an answer besides the documents (the models and whether there is
    one, routing, the prompt, retrieval, the embedder, the reranker): a change starts a new cache.
    ``rerank``: connectors/rerank/settings.py ``rerank_version`` ("none" leaves the version as it was);
    ``evidence``: the no-evidence rule (usecases/evidence.py ``evidence_version``; "floor" leaves it as it was)."""
    parts: tuple[object, ...] = (model, small_model, route_min_similarity, route_margin, SYSTEM_PROMPT, top_k,
                                 candidates, min_similarity, retrieval, dense_weight, embedding_model, max_tokens,
                                 with_model)
    if rerank != "none":
        parts += (rerank,)
    if evidence != "floor":
        parts += (evidence,)
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def audience_fingerprint(audience: Audience) -> str:
    terms = audience.filter_terms()
    data = {
        "terms": None if terms is None else sorted([email or "", list(groups)] for email, groups in terms),
        "withheld": sorted(audience.withheld),
        "sources": None if audience.sources is None else sorted(audience.sources),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


class AnswerCache:
    def __init__(self, redis_client: redis.Redis, prefix: str, *, ttl: int, version: str, index: VectorIndex):
        self.redis = redis_client
        self.prefix = prefix
        self.ttl = ttl
        self.version = version          # models, prompt, retrieval settings: answer_version
        self.index = index

    def key(self, audience: Audience, question: str) -> str:
        digest = hashlib.sha256("\x00".join(
            (self.version, audience_fingerprint(audience), normalise(question))).encode()).hexdigest()
        return keys.answer(self.prefix, digest)

    def get(self, audience: Audience, question: str) -> Answer | None:
        key = self.key(audience, question)
        try:
            raw = self.redis.get(key)
        except Exception as exc:  # noqa: BLE001
            log.warning("answer cache unavailable", extra={"error": type(exc).__name__})
            metrics.CACHE_LOOKUPS.labels(outcome="miss").inc()
            return None
        if raw is None:
            metrics.CACHE_LOOKUPS.labels(outcome="miss").inc()
            return None
        try:
            answer = Answer.from_record(json.loads(raw))
        except (ValueError, KeyError, TypeError):
            self._drop(key)
            metrics.CACHE_LOOKUPS.labels(outcome="stale").inc()
            return None
        if not self.still_valid(answer.basis, audience):
            self._drop(key)
            metrics.CACHE_LOOKUPS.labels(outcome="stale").inc()
            log.info("cached answer dropped: a document it rests on changed or is no longer visible")
            return None
        metrics.CACHE_LOOKUPS.labels(outcome="hit").inc()
        return answer

    def put(self, audience: Audience, question: str, answer: Answer) -> bool:
        if not cacheable(answer) or self.ttl <= 0:
            return False
        try:
            self.redis.set(self.key(audience, question), json.dumps(answer.to_record()), ex=self.ttl)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not cache the answer", extra={"error": type(exc).__name__})
            return False
        return True

    def still_valid(self, basis: Iterable[list[str]], audience: Audience | None) -> bool:
        """Every document still indexed, with the same content, and visible to this audience (None:
        content only)."""
        by_source: dict[str, dict[str, str]] = defaultdict(dict)
        try:
            for source, doc_id, doc_hash in basis:
                by_source[source][doc_id] = doc_hash
            if not by_source:
                return False
            for source, docs in by_source.items():
                now = self.index.documents(source, sorted(docs))
                for doc_id, doc_hash in docs.items():
                    state = now.get(doc_id)
                    if state is None or state.doc_hash != doc_hash:
                        return False
                    if audience is not None and not audience.may_use(state.acl, source):
                        return False
        except Exception as exc:  # noqa: BLE001 - cannot confirm: not a hit
            log.warning("could not re-check a cached answer's documents", extra={"error": type(exc).__name__})
            return False
        return True

    def sweep(self, batch: int = 500) -> tuple[int, int]:
        """Drop entries whose documents changed or went away (the beat's clean-up): (checked, dropped).
        Visibility is re-checked on every hit, for the audience asking; here only content."""
        checked = dropped = 0
        for key in self.redis.scan_iter(match=keys.answers_pattern(self.prefix), count=batch):
            checked += 1
            raw = self.redis.get(key)
            if raw is None:
                continue
            try:
                basis = json.loads(raw).get("basis") or []
            except (ValueError, AttributeError):   # unreadable: dropped (an empty basis confirms nothing)
                basis = []
            fresh = self.still_valid(basis, None)
            if not fresh:
                self._drop(key)
                dropped += 1
        return checked, dropped

    def _drop(self, key: str) -> None:
        try:
            self.redis.delete(key)
        except Exception:  # noqa: BLE001
            pass


def cacheable(answer: Answer) -> bool:
    """Only the model's own answers from documents, with nothing personal in them."""
    return (answer.mode == "llm" and bool(answer.basis) and not answer.tool_calls and not answer.note
            and not answer.private_note and bool(answer.citations))
