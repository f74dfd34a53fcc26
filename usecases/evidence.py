"""When retrieval found nothing that answers: the no-evidence rule.

The nearest passage always exists; whether it answers is another matter. The rule decides from
signals that can be calibrated per embedder (``chatops eval answers --calibrate``):

* the top cosine similarity, measured against the embedder's own distribution: a similarity of
  0.35 is high for one model and noise for another, so the thresholds are the calibration's;
* lexical overlap: the share of the question's content words (stopwords excluded) that appear in
  the best passages (their text, heading and title);
* the reranker's score, when a reranking stage gave the hits one (``rerank_score``): a
  cross-encoder judges relevance better than either, so with one its own threshold decides.

Evidence when: top similarity >= ``min_similarity`` and (similarity >= ``strong_similarity`` or
overlap >= ``min_overlap``); with a reranker score and ``min_rerank`` set, the reranker's score
>= ``min_rerank`` instead of the similarity/overlap pair (the similarity floor still applies).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from connectors.index.base import Hit
from connectors.index.stopwords import ENGLISH_STOPWORDS

# Function words of the other languages questions come in (German, French, Spanish), and words
# every question has whatever it asks about.
_OTHER_STOPWORDS = frozenset("""
    der die das den dem des ein eine einen einem einer und oder ist sind wie was wer wo wann warum
    ich du er sie es wir ihr mein meine bei mit von zu zum zur für auf aus im in an am nicht kann
    können muss werde wird habe hat haben gibt es le la les un une des du de et ou est sont comment
    quoi qui où quand pourquoi je tu il elle nous vous mon ma mes au aux avec pour sur dans pas
    peut dois puis que qu quel quelle quels quelles el los las y o es son cómo qué para por con
    get got need know tell please much many long anything something someone thing things
""".split())
STOPWORDS = ENGLISH_STOPWORDS | _OTHER_STOPWORDS
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def content_words(text: str) -> set[str]:
    """The words that carry meaning: lowercased, stopwords and one-letter words dropped, a plural
    's' cut (``services`` and ``service`` match)."""
    out = set()
    for word in _WORD.findall(text.lower()):
        if len(word) < 2 or word in STOPWORDS:
            continue
        out.add(word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word)
    return out


def overlap(question: str, passages: Sequence[str]) -> float:
    """The share of the question's content words found in the passages (0 when it has none)."""
    wanted = content_words(question)
    if not wanted:
        return 0.0
    found: set[str] = set()
    for text in passages:
        found |= content_words(text)
    return len(wanted & found) / len(wanted)


@dataclass(frozen=True)
class Signals:
    top_similarity: float
    overlap: float
    rerank: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {"top_similarity": round(self.top_similarity, 4), "overlap": round(self.overlap, 4),
                "rerank": None if self.rerank is None else round(self.rerank, 4)}


def rerank_score(hit: Hit) -> float | None:
    """The reranker's relevance score of a hit, when a reranking stage gave it one."""
    value = getattr(hit, "rerank_score", None)
    return float(value) if isinstance(value, (int, float)) else None


def signals(question: str, hits: Sequence[Hit], *, passages: int = 3) -> Signals | None:
    """The signals of what retrieval found (best first), None when it found nothing."""
    if not hits:
        return None
    top = list(hits)[:passages]
    texts = [f"{h.chunk.title}\n{h.chunk.heading}\n{h.chunk.text}" for h in top]
    reranked = [s for s in (rerank_score(h) for h in hits) if s is not None]
    return Signals(top_similarity=max(h.similarity for h in hits), overlap=overlap(question, texts),
                   rerank=max(reranked) if reranked else None)


@dataclass(frozen=True)
class EvidenceRule:
    min_similarity: float = 0.3        # below: never evidence (CHATOPS_MIN_SIMILARITY)
    strong_similarity: float = 1.01    # at or above: evidence whatever the overlap (> 1: never)
    min_overlap: float = 0.0           # between the two: needs this much lexical overlap
    min_rerank: float | None = None    # with a reranker's score: evidence iff it is at least this
    embedder: str | None = None        # the embedder it was calibrated for (None: not calibrated)

    def enough(self, s: Signals | None) -> bool:
        if s is None or s.top_similarity < self.min_similarity:
            return False
        if s.rerank is not None and self.min_rerank is not None:
            return s.rerank >= self.min_rerank
        return s.top_similarity >= self.strong_similarity or s.overlap >= self.min_overlap

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], *, min_similarity: float) -> "EvidenceRule":
        """A calibration's thresholds over the operator's floor (CHATOPS_MIN_SIMILARITY)."""
        known = {k: data[k] for k in ("strong_similarity", "min_overlap", "min_rerank", "embedder") if k in data}
        return cls(min_similarity=min_similarity, **known)


# Calibrated here with `chatops eval answers --calibrate` on demo/eval/answers.yml and
# benchmarks/sets/handbook.yml for the embedded default (MiniLM-L6, int8); see docs/retrieval.md.
CALIBRATED: dict[str, dict[str, Any]] = {
    "sentence-transformers/all-MiniLM-L6-v2": {"strong_similarity": 0.45, "min_overlap": 0.7},
}


def evidence_version(setting: str) -> str:
    """What the answer cache's version holds of the rule (CHATOPS_NO_EVIDENCE_RULE and the shipped
    calibrations): answers cached under another rule are not served. A calibration saved with
    ``--calibrate`` takes effect for cached answers within CHATOPS_CACHE_TTL."""
    return "floor" if setting == "floor" else f"calibrated:{json.dumps(CALIBRATED, sort_keys=True)}"


def calibration_path(data_dir: Path, embedder: str | None, reranker: str | None = None) -> Path:
    """Where ``--calibrate`` keeps the rule for an embedder (and reranker: its scores have their own scale)."""
    name = (embedder or "default") + (f"+{reranker}" if reranker else "")
    return Path(data_dir) / "calibration" / f"evidence-{re.sub(r'[^A-Za-z0-9._+-]+', '_', name)}.json"


def rule_for(embedder: str | None, data_dir: Path | None, *, min_similarity: float,
             reranker: str | None = None) -> EvidenceRule:
    """The rule for this embedder (and reranker): its calibration file in the data folder (written by
    ``chatops eval answers --calibrate``), else the calibration shipped for the embedder, else the
    similarity floor with a lexical-overlap check (uncalibrated). ``min_similarity``
    (CHATOPS_MIN_SIMILARITY) is the floor (the calibration does not move it)."""
    if data_dir is not None:
        path = calibration_path(data_dir, embedder, reranker)
        if path.exists():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                data = None
            if isinstance(data, dict) and isinstance(data.get("rule"), dict):
                return EvidenceRule.from_json({**data["rule"], "embedder": embedder}, min_similarity=min_similarity)
    shipped = CALIBRATED.get(embedder or "")
    if shipped is not None:
        return EvidenceRule.from_json({**shipped, "embedder": embedder}, min_similarity=min_similarity)
    return EvidenceRule(min_similarity=min_similarity, strong_similarity=0.6, min_overlap=0.34)


def calibrate(samples: Sequence[tuple[Signals | None, bool]], *, floor: float = 0.0,
              embedder: str | None = None) -> tuple[EvidenceRule, dict[str, Any]]:
    """The rule that makes the fewest errors on ``samples`` ((signals, answerable) per question):
    an unanswerable question answered, or an answerable one told "couldn't find", counted alike;
    among equals, the fewest false "couldn't find", then the lowest thresholds. Also its error rates."""
    # thresholds on a coarse grid (similarity in steps of 0.01, overlap in tenths): a rule that
    # fits a few dozen questions to the third decimal would not carry over to the next question
    grid = [round(x / 100, 2) for x in range(0, 100)]
    floors = [floor]   # the operator's (CHATOPS_MIN_SIMILARITY); the calibration does not move it
    strongs = [*(x for x in grid if x >= floor), 1.01]
    overlaps = [round(x / 10, 1) for x in range(0, 11)] + [1.01]
    reranks = sorted({round(s.rerank, 2) for s, _ in samples if s is not None and s.rerank is not None})
    best: tuple[tuple[int, int, float], EvidenceRule] | None = None
    for lo in floors:
        for strong in (x for x in strongs if x >= lo):
            for ov in overlaps:
                for rr in [None, *reranks]:
                    rule = EvidenceRule(lo, strong, ov, rr, embedder)
                    said = [(rule.enough(s), answerable) for s, answerable in samples]
                    errors = sum(e != a for e, a in said)
                    key = (errors, sum(a and not e for e, a in said), lo + ov + (rr or 0.0) + strong)
                    if best is None or key < best[0]:
                        best = (key, rule)
    if best is None:
        rule = EvidenceRule(floor, embedder=embedder)
        return rule, error_rates(rule, samples)
    target, rule = best[0][:2], best[1]

    def outcome(candidate: EvidenceRule) -> tuple[int, int]:
        said = [(candidate.enough(s), answerable) for s, answerable in samples]
        return sum(e != a for e, a in said), sum(a and not e for e, a in said)

    # Then each threshold moved to the middle of the values that do as well with the others kept:
    # the furthest it can be from the questions on either side of it.
    for name, values in (("strong_similarity", strongs), ("min_overlap", overlaps)):
        fine = [v for v in values if v <= 1.0 and outcome(_with(rule, name, v)) == target]
        if name == "strong_similarity":
            fine = [v for v in fine if v >= rule.min_similarity]
        if fine:
            current = getattr(rule, name)
            run = _run_around(sorted(fine), current, step=0.1 if name == "min_overlap" else 0.01)
            rule = _with(rule, name, round((run[0] + run[-1]) / 2, 2))
    return rule, error_rates(rule, samples)


def _with(rule: EvidenceRule, name: str, value: float) -> EvidenceRule:
    return replace(rule, strong_similarity=value) if name == "strong_similarity" else replace(rule, min_overlap=value)


def _run_around(values: list[float], value: float, *, step: float) -> list[float]:
    """The unbroken stretch of grid ``values`` (``step`` apart) that holds ``value``."""
    if value not in values:
        return [value]
    i = j = values.index(value)
    while i > 0 and abs(values[i] - values[i - 1] - step) < step / 2:
        i -= 1
    while j < len(values) - 1 and abs(values[j + 1] - values[j] - step) < step / 2:
        j += 1
    return values[i:j + 1]


def error_rates(rule: EvidenceRule, samples: Sequence[tuple[Signals | None, bool]]) -> dict[str, Any]:
    unanswerable = [s for s, a in samples if not a]
    answerable = [s for s, a in samples if a]
    missed = sum(rule.enough(s) for s in unanswerable)
    false_none = sum(not rule.enough(s) for s in answerable)
    return {"no_evidence_rate": round(1 - missed / len(unanswerable), 4) if unanswerable else None,
            "false_no_evidence_rate": round(false_none / len(answerable), 4) if answerable else None,
            "unanswerable": len(unanswerable), "answerable": len(answerable)}


class RuleOfEmbedder:
    """The rule of the embedder answering now (``rule_for``, looked up per embedder name and kept):
    after ``chatops index rebuild`` switches a running process to another embedder
    (connectors/embeddings/switching.py), its questions are judged by that embedder's calibration."""

    def __init__(self, name_of: Callable[[], str | None], data_dir: Path | None, *, min_similarity: float,
                 reranker: str | None = None):
        self._name_of, self._data_dir, self._reranker = name_of, data_dir, reranker
        self._min_similarity = min_similarity
        self._rules: dict[str | None, EvidenceRule] = {}

    def rule(self) -> EvidenceRule:
        name = self._name_of()
        found = self._rules.get(name)
        if found is None:
            found = self._rules[name] = rule_for(name, self._data_dir, min_similarity=self._min_similarity,
                                                 reranker=self._reranker)
        return found

    def enough(self, signals: Signals | None) -> bool:
        return self.rule().enough(signals)
