"""`chatops eval answers` end to end: a small corpus with permissions, a directory and a set written
here, ingested through the real path into a scratch index with the real embedder; the judge is the
real openai client talking to the loopback stand-in."""

from __future__ import annotations

import json
import uuid

import pytest
import yaml
from click.testing import CliRunner
from fastapi.testclient import TestClient
from starlette.applications import Starlette

from chatops.access import Principal
from chatops.store import Store
from chatops.store.answers import Answers
from chatops_app.cli import main
from console.app import ConsoleConfig, ConsoleDeps, console_routes
from console.auth import SESSION_COOKIE, Sessions
from standins.fake_openai import FakeOpenAI
from tests.security.conftest import redis_or_skip
from usecases.answer import Answer, Citation
from usecases.answer_eval import AnswerSet, evaluate_answers
from usecases.ask import Timings

BILLING = "runbooks/restart-billing.md"
VACATION = "handbook/vacation.md"
CORPUS = {
    ".acl.yml": "- match: handbook/**\n  public: true\n- match: runbooks/**\n  groups: [engineering]\n",
    BILLING: "# Restart the billing service\n\nTo restart the billing service run `kubectl rollout restart "
             "deployment/billing-api -n billing`, then check that the invoice queue drains.\n",
    VACATION: "# Vacation policy\n\nEvery employee gets 25 vacation days per year. Up to five unused vacation "
              "days carry over to the next year.\n",
    "handbook/expenses.md": "# Expenses\n\nSubmit expense claims within 30 days in the expense tool. "
                            "Receipts are needed for items over 25 euros.\n",
    # Near the billing question in meaning, but no answer to it: what the floor alone quotes.
    "handbook/invoices.md": "# Customer invoices\n\nCustomers receive their invoices by email at the start of "
                            "each month. Questions about a bill go to the accounts team.\n",
}
BEN, CARLA = "ben@example.com", "carla@example.com"
CASES = [
    {"question": "How do I restart the billing service?", "as": BEN, "expect": [BILLING]},
    {"question": "How do I restart the billing service?", "as": CARLA, "expect": []},   # runbooks: engineers only
    {"question": "How many vacation days do I get per year?", "as": CARLA, "expect": [VACATION]},
    {"question": "What is the dress code for client visits?", "as": BEN, "expect": []},
]


def write_set(tmp_path, cases=CASES):
    for rel, text in CORPUS.items():
        (tmp_path / "corpus" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "corpus" / rel).write_text(text)
    path = tmp_path / "sets" / "small.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({
        "corpus": "../corpus",
        "directory": {"users": [{"email": BEN, "groups": ["engineering"]}, {"email": CARLA, "groups": ["hr"]}]},
        "cases": cases}))
    return path


def env(tmp_path, **more):
    return {"CHATOPS_DATA_DIR": str(tmp_path / "data"), "CHATOPS_KEY_PREFIX": "chatops-eval-answers-test",
            "OPENAI_API_KEY": None, "OPENAI_BASE_URL": None, "CHATOPS_RERANK": None, **more}


def run(tmp_path, *args, **more):
    return CliRunner().invoke(main, ["eval", "answers", "--set", str(write_set(tmp_path)), *args],
                              env=env(tmp_path, **more))


def test_scores_retrieval_citations_no_evidence_and_leaks(tmp_path):
    result = run(tmp_path, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert (out["cases"], out["answerable"], out["unanswerable"], out["refused"]) == (4, 2, 2, 0)
    assert out["hit@5"] == 1.0 and out["mrr@5"] == 1.0
    assert out["leaks"] == 0
    # The HR person's only answer is a runbook she may not see: "couldn't find", nothing of it retrieved.
    carla = out["results"][1]
    assert carla["mode"] == "no-evidence" and carla["cited"] == []
    assert BILLING not in carla["retrieved"]
    assert out["no_evidence_rate"] == 1.0 and out["false_no_evidence_rate"] == 0.0
    assert out["citation_precision"] > 0
    assert {"identity", "retrieval", "generation", "total"} <= set(out["latency_ms"])
    assert out["latency_ms"]["retrieval"]["p95"] >= out["latency_ms"]["retrieval"]["p50"] > 0
    assert out["tokens"] == {"input": 0, "output": 0}       # extractive: no model
    # progress on stderr, one line per case
    assert sum(line.startswith("[") for line in result.stderr.splitlines()) == 4


def test_the_floor_alone_quotes_an_unrelated_passage(tmp_path):
    """The rule before calibration (`--rule floor`) is measurable: it answers more unanswerable cases."""
    floor = json.loads(run(tmp_path, "--json", "--rule", "floor").stdout.strip().splitlines()[-1])
    assert floor["no_evidence_rate"] < 1.0


def test_calibrate_saves_a_rule_for_the_embedder(tmp_path):
    result = run(tmp_path, "--calibrate", "--rule", "floor")
    assert result.exit_code == 0, result.output
    assert "calibration for" in result.stdout
    assert "before (floor rule): no-evidence on unanswerable 0.50" in result.stdout
    assert "after (calibrated): no-evidence on unanswerable 1.00, false no-evidence 0.00" in result.stdout
    saved = list((tmp_path / "data" / "calibration").glob("evidence-*.json"))
    assert len(saved) == 1
    data = json.loads(saved[0].read_text())
    assert data["errors"]["no_evidence_rate"] == 1.0 and data["errors"]["false_no_evidence_rate"] == 0.0
    assert set(data["rule"]) >= {"min_similarity", "strong_similarity", "min_overlap", "min_rerank"}


def test_a_bad_set_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("cases:\n  - {question: hello}\n")
    result = CliRunner().invoke(main, ["eval", "answers", "--set", str(bad)], env=env(tmp_path))
    assert result.exit_code == 2
    assert "needs 'question:' and 'as:'" in result.output
    result = CliRunner().invoke(main, ["eval", "answers", "--set", str(tmp_path / "missing.yml")], env=env(tmp_path))
    assert result.exit_code == 2 and "cannot be read" in result.output


def test_judge_needs_a_model(tmp_path):
    result = run(tmp_path, "--judge")
    assert result.exit_code == 2 and "--judge needs a language model" in result.output


def _judge_or_answer(body: dict) -> str:
    system = body["messages"][0]["content"]
    if not system.startswith("You grade"):
        return "Run the restart command shown in the runbook [1]."
    user = body["messages"][-1]["content"]
    question = user.split("\n", 1)[0]
    answer = user.rsplit("Answer:\n", 1)[1]
    answerable = ("billing" in question and "kubectl rollout restart" in user) or \
                 ("vacation" in question and "25 vacation days" in user)
    sentences = ([{"sentence": answer, "supported": True}] if "couldn't find" in answer else
                 [{"sentence": "first", "supported": True}, {"sentence": "second", "supported": False}])
    return json.dumps({"answerable": answerable, "sentences": sentences})


def test_judge_scores_faithfulness_and_agreement_against_the_model_standin(tmp_path):
    with FakeOpenAI(reply=_judge_or_answer) as llm:
        result = run(tmp_path, "--json", "--judge", OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="sk-test",
                     CHATOPS_LLM_MAX_RETRIES="0")
        judged = [r for r in llm.requests if r["messages"][0]["content"].startswith("You grade")]
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(judged) == 4
    # The judge is shown the passages the asker may see, and the answer.
    ben = judged[0]["messages"][-1]["content"]
    assert "kubectl rollout restart" in ben and "Run the restart command" in ben
    assert "kubectl rollout restart" not in judged[1]["messages"][-1]["content"]   # Carla's: no runbook
    judge_tokens = out["judge"].pop("tokens")
    assert out["judge"] == {"judged": 4, "errors": 0, "faithfulness": 0.75, "agreement": 1.0}
    assert judge_tokens["input"] > 0 and judge_tokens["output"] > 0     # counted apart from the answers
    assert out["tokens"]["input"] > 0 and out["tokens"]["output"] > 0        # the answers' model calls
    assert out["leaks"] == 0


def test_a_judge_reply_that_is_not_the_json_asked_for_is_an_error_not_a_score(tmp_path):
    def reply(body):
        return "Looks fine to me." if body["messages"][0]["content"].startswith("You grade") else "Answer [1]."
    with FakeOpenAI(reply=reply) as llm:
        result = run(tmp_path, "--json", "--judge", OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="sk-test",
                     CHATOPS_LLM_MAX_RETRIES="0")
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["judge"] == {"judged": 0, "errors": 4, "faithfulness": None, "agreement": None,
                            "tokens": {"input": 0, "output": 0}}


class _Leaky:
    """A pipeline whose answer cites a document the set's permissions say the asker may not see
    (what a wrong ACL in the index would give)."""

    evidence = None

    def ask(self, q):
        answer = Answer(text="Salaries [1].", citations=[Citation(1, "Salary bands", "hr/salary.md", None)],
                        mode="extractive", asker=Principal.of(q.asker_email, []),
                        retrieved=[{"doc_id": "hr/salary.md", "source": "fs:/x", "title": "Salary bands", "score": 0.7},
                                   {"doc_id": "handbook/a.md", "source": "fs:/x", "title": "A", "score": 0.5}])
        return answer, Timings(retrieval_ms=1.0)


def test_leaks_are_counted_per_document(tmp_path):
    path = tmp_path / "set.yml"
    path.write_text(yaml.safe_dump({"cases": [{"question": "What do engineers earn?", "as": BEN,
                                               "expect": ["hr/salary.md"]}]}))
    summary, results = evaluate_answers(AnswerSet.load(path), _Leaky(),
                                        lambda principal, source, doc: not doc.startswith("hr/"))
    assert summary["leaks"] == 1 and results[0].leaks == ["hr/salary.md"]


@pytest.mark.redis
def test_the_console_shows_the_last_evaluation_per_configuration(tmp_path):
    client = redis_or_skip()
    database = f"sqlite:///{tmp_path / 'audit.db'}"
    for rule in ("floor", "floor", "calibrated"):
        result = run(tmp_path, "--rule", rule, DATABASE_URL=database)
        assert result.exit_code == 0, result.output
    store = Store.for_url(database)
    events = store.latest_of_kind("evaluation")
    assert len(events) == 3
    assert [e["detail"]["config"]["rule"] for e in events] == ["calibrated", "floor", "floor"]
    assert events[0]["detail"]["summary"]["leaks"] == 0 and "results" not in events[0]["detail"]["summary"]

    prefix = f"chatops-eval-console-{uuid.uuid4().hex[:8]}"
    deps = ConsoleDeps(config=ConsoleConfig(base_url="http://testserver", key_prefix=prefix), redis=client,
                       store=lambda: store, answers=lambda: Answers(store))
    web = TestClient(Starlette(routes=list(console_routes(deps))), base_url="http://testserver")
    web.cookies.set(SESSION_COOKIE, Sessions(client, prefix, 600).create("operator", "link").id, path="/admin")
    try:
        page = web.get("/admin/evaluations")
        assert page.status_code == 200
        rows = page.text.split('id="evaluations"', 1)[1].split("</table>", 1)[0].count("<tr") - 1
        assert rows == 2                                   # one per configuration: the last run of each
        assert "rule floor" in page.text and "rule calibrated" in page.text
        assert "small.yml" in page.text and "no model (extractive)" in page.text
        assert "100.0%" in page.text                        # hit@k of the small set
    finally:
        web.close()
        store.close()
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
