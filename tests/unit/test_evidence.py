"""The no-evidence rule (usecases/evidence.py): its signals, its decision, its calibration."""

from __future__ import annotations

import json

from chatops.access import Acl
from connectors.index.base import Chunk, Hit
from usecases.answer_cache import answer_version
from usecases.evidence import (CALIBRATED, EvidenceRule, Signals, calibrate, calibration_path, content_words,
                               evidence_version, overlap, rule_for, signals)


def hit(text: str, similarity: float, title: str = "Doc", **more) -> Hit:
    chunk = Chunk(id="1", source="fs:/x", doc_id=f"{title}.md", title=title, heading="", text=text, position=0,
                  acl=Acl.of(public=True), doc_hash="h")
    h = Hit(chunk, score=similarity, similarity=similarity)
    for name, value in more.items():
        object.__setattr__(h, name, value)
    return h


def test_content_words_drop_stopwords_in_several_languages_and_plurals():
    assert content_words("How do I restart the billing services?") == {"restart", "billing", "service"}
    assert content_words("Wie viele Urlaubstage bekomme ich pro Jahr?") >= {"urlaubstage", "jahr"}
    assert "comment" not in content_words("Comment puis-je redémarrer le service ?")


def test_overlap_is_the_share_of_the_question_found_in_the_passages():
    expenses = "Submit each expense claim within 30 days; receipts for items of 25 euros or more."
    runbook = "Restart billing-api with kubectl rollout restart in the billing namespace."
    question = "How do I restart the billing service?"
    assert overlap(question, [expenses]) == 0.0
    assert overlap(question, [runbook]) == 2 / 3
    assert overlap("the and of", [runbook]) == 0.0   # nothing to look for


def test_signals_come_from_the_best_passages_and_the_reranker():
    s = signals("restart billing", [hit("nothing here", 0.4), hit("restart billing now", 0.35)])
    assert s == Signals(top_similarity=0.4, overlap=1.0, rerank=None)
    assert signals("q", []) is None
    reranked = signals("restart billing", [hit("x", 0.4, rerank_score=0.12), hit("y", 0.3, rerank_score=0.8)])
    assert reranked.rerank == 0.8


def test_the_rule_needs_the_floor_then_a_strong_match_or_word_overlap():
    rule = EvidenceRule(min_similarity=0.3, strong_similarity=0.45, min_overlap=0.7)
    assert not rule.enough(None)
    assert not rule.enough(Signals(0.29, 1.0))                 # below the floor: never
    assert rule.enough(Signals(0.5, 0.0))                      # strong by meaning alone
    assert rule.enough(Signals(0.35, 0.75))                    # weaker, but the words are there
    assert not rule.enough(Signals(0.35, 1 / 3))               # the demo's HR case: near, not an answer
    with_reranker = EvidenceRule(min_similarity=0.3, strong_similarity=0.45, min_overlap=0.7, min_rerank=0.5)
    assert not with_reranker.enough(Signals(0.9, 1.0, rerank=0.1))   # the reranker's score decides
    assert with_reranker.enough(Signals(0.31, 0.0, rerank=0.6))
    assert with_reranker.enough(Signals(0.5, 0.0, rerank=None))      # not reranked: the other signals


def test_calibration_separates_the_samples_and_keeps_the_operators_floor():
    answerable = [Signals(0.55, 1.0), Signals(0.36, 0.8), Signals(0.6, 0.2), Signals(0.48, 0.75)]
    unanswerable = [Signals(0.31, 0.33), Signals(0.34, 0.2), Signals(0.36, 0.4), None]
    rule, rates = calibrate([(s, True) for s in answerable] + [(s, False) for s in unanswerable], floor=0.3,
                            embedder="m")
    assert rule.min_similarity == 0.3 and rule.embedder == "m"
    assert rates == {"no_evidence_rate": 1.0, "false_no_evidence_rate": 0.0, "unanswerable": 4, "answerable": 4}
    # thresholds sit between the two groups, not on a sample
    assert 0.36 < rule.strong_similarity <= 0.55 and 0.4 < rule.min_overlap <= 0.75


def test_rule_for_prefers_the_saved_calibration_then_the_shipped_one(tmp_path):
    name = "sentence-transformers/all-MiniLM-L6-v2"
    shipped = rule_for(name, tmp_path, min_similarity=0.25)
    assert (shipped.min_similarity, shipped.strong_similarity, shipped.min_overlap) == (
        0.25, CALIBRATED[name]["strong_similarity"], CALIBRATED[name]["min_overlap"])
    path = calibration_path(tmp_path, name)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"rule": {"min_similarity": 0.9, "strong_similarity": 0.5, "min_overlap": 0.4,
                                         "min_rerank": None}}))
    saved = rule_for(name, tmp_path, min_similarity=0.3)
    assert (saved.min_similarity, saved.strong_similarity, saved.min_overlap) == (0.3, 0.5, 0.4)
    # with a reranker, its own calibration (scores on another scale): none saved, the embedder's
    assert calibration_path(tmp_path, name, "http") != path
    assert rule_for(name, tmp_path, min_similarity=0.3, reranker="http").strong_similarity == 0.45
    other = rule_for("some/other-model", tmp_path, min_similarity=0.3)
    assert other.embedder is None and other.min_overlap > 0


def test_the_answer_cache_version_follows_the_rule():
    base = dict(model="m", small_model=None, route_min_similarity=0.6, route_margin=0.1, top_k=6, candidates=50,
                min_similarity=0.3, retrieval="feedback", dense_weight=0.95, embedding_model=None, max_tokens=800,
                with_model=False)
    floor = answer_version(**base, evidence=evidence_version("floor"))
    assert floor == answer_version(**base)                  # the floor alone: the version as it was
    assert answer_version(**base, evidence=evidence_version("calibrated")) != floor
