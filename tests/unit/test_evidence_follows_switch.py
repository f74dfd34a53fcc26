"""The no-evidence rule of a running process follows an index switch to another embedder
(usecases/evidence.py ``RuleOfEmbedder``): each embedder's own calibration judges its questions."""

from __future__ import annotations

import json

from usecases.evidence import RuleOfEmbedder, Signals, calibration_path


def test_the_rule_is_the_answering_embedders_own(tmp_path):
    old, new = "sentence-transformers/all-MiniLM-L6-v2", "text-embedding-3-small"
    path = calibration_path(tmp_path, new)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"rule": {"min_similarity": 0.1, "strong_similarity": 0.9, "min_overlap": 0.8}}))
    answering = [old]
    rule = RuleOfEmbedder(lambda: answering[0], tmp_path, min_similarity=0.3)
    middling = Signals(top_similarity=0.7, overlap=0.5)   # strong for MiniLM's calibration, not for the new one's
    assert rule.rule().embedder == old and rule.enough(middling)
    answering[0] = new                                      # the index switched (and its embedder with it)
    assert rule.rule().embedder == new and not rule.enough(middling)
    assert rule.rule() is rule.rule()                       # looked up once per embedder
