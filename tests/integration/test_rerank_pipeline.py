"""Reranking in the question pipeline (usecases/ask.py → usecases/rerank.py), with the composition
root's wiring, an embedded index with the offline model, the real httpx and openai clients and the
loopback rerank and chat completions servers.

The reranker sees only candidates the answer's audience may see: a channel answer never sends it a
passage only the asker may read (the asker's own search, which counts hidden documents, is never
reranked). On any failure the first-stage order stands and the answer still goes out, said by a
warning line and chatops_rerank_total.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import pytest
import yaml
from prometheus_client import REGISTRY

from chatops.access import Audience, Principal
from chatops.checks import CheckFailed
from chatops.settings import Settings
from chatops_app.container import Container
from chatops_app.doctor import checks
from connectors.index.retriever import Retriever
from connectors.llm.openai_llm import OpenAILLM
from connectors.rerank.http import HttpReranker
from connectors.rerank.llm import LlmReranker
from connectors.sources.registry import filesystem_spec, open_source
from standins.fake_openai import FakeOpenAI
from standins.fake_rerank import FakeRerank
from usecases.ask import Question
from usecases.ingest import ingest
from usecases.people import Someone
from usecases.rerank import rerank_hits

KEY = "rr-pipeline-key"
CORPUS = {
    ".acl.yml": '- match: "handbook/**"\n  public: true\n- match: "runbooks/**"\n  groups: [sre]\n'
                '- match: "eng/**"\n  groups: [eng]\n- match: "hr/**"\n  groups: [hr]\n',
    "handbook/vacation.md": "# Vacation policy\n\nEveryone gets 27 days of paid vacation per calendar year.\n",
    "handbook/expenses.md": "# Expenses\n\nSubmit receipts for services you paid within 30 days.\n",
    "handbook/oncall.md": "# On-call\n\nThe on-call engineer restarts nothing without a ticket for the service.\n",
    "eng/deploys.md": "# Deploys\n\nThe billing service deploys on Tuesdays; a restart follows each deploy.\n",
    "runbooks/restart.md": "# Restart billing\n\nTo restart the billing service run `billctl restart --graceful` "
                           "on the billing-7 cluster.\n",
    "hr/salary-bands.md": "# Salary bands\n\nThe L5 salary band for the billing team runs from 121,000 EUR.\n",
}
DIRECTORY = {"users": [{"email": "ana@corp.example", "groups": ["sre", "eng"]},
                       {"email": "ben@corp.example", "groups": ["eng"]}]}
SECRET_WORDS = ("billctl", "salary")          # in documents the channel may not see


class Members:
    def __init__(self, *people: Someone) -> None:
        self.people = list(people)

    def members(self, channel: str, *, max_age: float | None = None):
        return self.people, time.time()


ANA, BEN = Someone("UANA", "ana@corp.example"), Someone("UBEN", "ben@corp.example")
QUESTION = "How do I restart the billing service?"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("rerank")
    for rel, text in CORPUS.items():
        (root / "corpus" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "corpus" / rel).write_text(text)
    (root / "directory.yml").write_text(yaml.safe_dump(DIRECTORY))
    fake = FakeRerank(api_key=KEY).start()
    settings = Settings.load(
        CHATOPS_DATA_DIR=str(root / "data"), QDRANT_PATH=str(root / "index"), QDRANT_URL=None,
        DATABASE_URL="sqlite:///:memory:", CHATOPS_DIRECTORY_FILE=str(root / "directory.yml"),
        CHATOPS_IDENTITY_PROVIDER="directory", CHATOPS_MIN_SIMILARITY="0.0", CHATOPS_CACHE_TTL="0",
        OPENAI_API_KEY=None, OPENAI_BASE_URL=None, CHATOPS_TOP_K="3",
        CHATOPS_RERANK="http", CHATOPS_RERANK_URL=fake.url, CHATOPS_RERANK_API_KEY=KEY)
    container = Container(settings)
    ingest(open_source(filesystem_spec(root / "corpus"), settings.group_names), container.index, container.embedder)
    yield {"container": container, "fake": fake}
    container.close()
    fake.stop()


@pytest.fixture
def fake(world):
    fake = world["fake"]
    with fake.lock:
        fake.requests.clear()
        fake.headers.clear()
        fake.steps.clear()
    fake.delay = 0.0
    return fake


def pipeline(world, **changes):
    return replace(world["container"].pipeline(with_slack=False), **changes)


def in_channel(text: str = QUESTION) -> Question:
    return Question(text=text, asker_slack_id="UANA", asker_email="ana@corp.example", channel="COPS",
                    channel_type="channel")


def in_dm(text: str = QUESTION) -> Question:
    return Question(text=text, asker_slack_id="UANA", asker_email="ana@corp.example")


def outcome_count(outcome: str, reranker: str = "http") -> float:
    return REGISTRY.get_sample_value("chatops_rerank_total", {"reranker": reranker, "outcome": outcome}) or 0.0


def test_the_composition_root_builds_the_configured_reranker(world):
    reranker = world["container"].pipeline(with_slack=False).reranker
    assert isinstance(reranker, HttpReranker) and reranker.url == world["fake"].url


def test_a_channel_answer_reranks_only_what_everyone_in_the_channel_may_see(world, fake):
    p = pipeline(world, directory=Members(ANA, BEN))
    answer, timings = p.ask(in_channel())
    seen = fake.documents_seen()
    assert len(fake.requests) == 1 and seen
    assert not any(word in doc for doc in seen for word in SECRET_WORDS), seen
    assert any("deploys on Tuesdays" in doc for doc in seen)        # eng: both may read it
    assert answer.hidden_documents >= 1                             # the runbook: found for Ana alone, not sent
    assert not any(word in answer.text for word in SECRET_WORDS)
    assert timings.stages()["rerank"] > 0


def test_a_dm_reranks_the_askers_own_documents_and_puts_the_best_first(world, fake):
    answer, _ = pipeline(world).ask(in_dm())
    assert any("billctl" in doc for doc in fake.documents_seen())
    assert answer.citations[0].title == "Restart billing"
    assert "salary" not in " ".join(fake.documents_seen())          # hr: not Ana's


def test_the_rerank_scores_are_kept_on_the_hits_best_first(world, fake):
    container = world["container"]
    retriever = Retriever(container.index, container.embedder)
    ana = Audience.of(Principal("ana@corp.example", frozenset({"sre", "eng"})))
    found = retriever.search(retriever.embed(QUESTION), ana, limit=20)
    assert all(h.rerank_score is None for h in found)
    done = rerank_hits(HttpReranker(fake.url, api_key=KEY), QUESTION, found, 3)
    assert done.outcome == "ok" and len(done.hits) == 3 and done.usage is None
    scores = [h.rerank_score for h in done.hits]
    assert all(s is not None for s in scores) and scores == sorted(scores, reverse=True)
    assert done.hits[0].chunk.title == "Restart billing"
    assert {h.chunk.id for h in done.hits} <= {h.chunk.id for h in found}      # reordered, nothing added
    assert len(fake.requests[0]["documents"]) == len(found)


@pytest.mark.parametrize("steps,outcome", [((500, 500, 500), "error"), ((401,), "error"),
                                           (("hang",), "timeout"), ((("body", {"results": [{"index": 99,
                                             "relevance_score": 1.0}]}),), "invalid")])
def test_a_failing_reranker_leaves_the_first_stage_order_and_the_answer_goes_out(world, fake, caplog, steps, outcome):
    first_stage, _ = pipeline(world, reranker=None).ask(in_dm())
    reranker = HttpReranker(fake.url, api_key=KEY, timeout=0.6, candidates=20)
    fake.script(*steps)
    before = outcome_count(outcome)
    with caplog.at_level(logging.WARNING, logger="usecases.rerank"):
        answer, timings = pipeline(world, reranker=reranker).ask(in_dm())
    assert [c.title for c in answer.citations] == [c.title for c in first_stage.citations]
    assert answer.mode == first_stage.mode == "extractive" and answer.text == first_stage.text
    assert outcome_count(outcome) == before + 1
    [line] = [r for r in caplog.records if r.getMessage().startswith("reranking failed")]
    assert line.outcome == outcome and line.reranker == "http"
    assert timings.stages()["rerank"] < 1500


def test_the_llm_reranker_through_the_pipeline_counts_its_tokens_and_survives_a_bad_reply(world, fake):
    def model(body):
        if body["messages"][0]["content"].startswith("You rank passages"):
            prompt = body["messages"][-1]["content"]
            assert not any(word in prompt for word in SECRET_WORDS)
            best = [n for n in range(1, 21) if f'n="{n}"' in prompt and "Tuesdays" in
                    prompt.split(f'<source n="{n}"', 1)[1].split("</source>", 1)[0]]
            return '{"ranking": [%d]}' % best[0] if model.valid else "The second one."
        title = body["messages"][-1]["content"].split('title="', 1)[1].split('"', 1)[0]
        return f"From {title} [1]."
    model.valid = True
    with FakeOpenAI(reply=model) as server:
        llm = OpenAILLM(model="fake-model", api_key="k", base_url=server.base_url, timeout=5, max_retries=0)
        p = pipeline(world, llm=llm, reranker=LlmReranker(llm, timeout=3.0), directory=Members(ANA, BEN))
        answer, timings = p.ask(in_channel())
        assert answer.mode == "llm" and answer.text.startswith("From Deploys")
        assert len(server.requests) == 2
        spent_in = sum(len(m["content"].split()) for r in server.requests for m in r["messages"])
        assert answer.usage["fake-model"][0] == spent_in              # the rerank call's tokens too
        assert timings.stages()["rerank"] > 0
        model.valid = False
        before = outcome_count("invalid", "llm")
        answer, _ = p.ask(in_channel())
        assert answer.mode == "llm" and outcome_count("invalid", "llm") == before + 1


def test_the_llm_reranker_is_skipped_when_the_budget_allows_no_model_call(world):
    container = world["container"]
    retriever = Retriever(container.index, container.embedder)
    ana = Audience.of(Principal("ana@corp.example", frozenset({"sre", "eng"})))
    found = retriever.search(retriever.embed(QUESTION), ana, limit=10)
    with FakeOpenAI(reply='{"ranking": [1]}') as server:
        llm = OpenAILLM(model="fake-model", api_key="k", base_url=server.base_url, timeout=5, max_retries=0)
        before = outcome_count("skipped", "llm")
        done = rerank_hits(LlmReranker(llm), QUESTION, found, 3, over_budget=lambda: "over")
        assert done.outcome == "skipped" and done.hits == found[:3] and done.usage is None
        assert server.requests == [] and outcome_count("skipped", "llm") == before + 1


def test_doctor_checks_the_reranker(world, fake):
    found = dict(checks(world["container"]))
    assert world["fake"].url in found["reranker"]()
    with pytest.raises(CheckFailed, match="401"):
        HttpReranker(fake.url, api_key="wrong").check()
