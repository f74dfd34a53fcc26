"""`chatops eval retrieval` on a tiny BEIR set written here, with the real embedder and index."""

import json

from click.testing import CliRunner

from chatops_app.cli import main

CORPUS = [
    ("d1", "Paris", "Paris is the capital and largest city of France."),
    ("d2", "Berlin", "Berlin is the capital of Germany and its largest city."),
    ("d3", "Sourdough", "Sourdough bread is made by fermenting dough with wild yeast."),
    ("d4", "Espresso", "Espresso is coffee brewed by forcing hot water through finely ground beans."),
    ("d5", "Madrid", "Madrid is the capital of Spain."),
]
QUERIES = [("q1", "capital city of France"), ("q2", "how is sourdough bread made"),
           ("q3", "strong coffee brewed under pressure")]
QRELS = [("q1", "d1", 2), ("q1", "d5", 0), ("q2", "d3", 1), ("q3", "d4", 1)]


def write_beir(folder):
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps({"_id": i, "title": t, "text": x})
                                                    for i, t, x in CORPUS))
    (folder / "queries.jsonl").write_text("\n".join(json.dumps({"_id": i, "text": t}) for i, t in QUERIES))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n"
                                               + "\n".join(f"{q}\t{d}\t{r}" for q, d, r in QRELS))


def test_eval_reports_standard_metrics_per_stage(tmp_path):
    write_beir(tmp_path / "tiny")
    env = {"CHATOPS_DATA_DIR": str(tmp_path / "data"), "CHATOPS_KEY_PREFIX": "chatops-eval-test"}
    result = CliRunner().invoke(main, ["eval", "retrieval", str(tmp_path / "tiny"), "--json",
                                       "--stage", "dense", "--stage", "weighted", "--stage", "feedback"], env=env)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    for stage in ("dense", "weighted", "feedback"):
        m = out[stage]
        assert set(m) == {"ndcg@10", "recall@10", "mrr@10", "queries", "latency_ms"}
        assert m["queries"] == 3
        # Each query's one relevant document is easy to find in five.
        assert m["recall@10"] == 1.0 and m["mrr@10"] == 1.0 and m["ndcg@10"] == 1.0
        assert m["latency_ms"]["p50"] > 0


def test_eval_refuses_a_folder_that_is_not_beir(tmp_path):
    result = CliRunner().invoke(main, ["eval", "retrieval", str(tmp_path)],
                                env={"CHATOPS_DATA_DIR": str(tmp_path / "data")})
    assert result.exit_code == 2
    assert "not a BEIR folder" in result.output
