"""The demo corpus through the real ingestion and question pipeline.

Ingests ``demo/corpus`` into a temporary embedded index with the real offline
embedder and ``demo/directory.yml`` as the directory, with no language model
(extractive answers), and checks who gets which documents.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from chatops_app.container import Container
from chatops.settings import Settings
from connectors.sources.filesystem.connector import FilesystemSource
from usecases.ask import Question, Refusal
from usecases.ingest import ingest

DEMO = Path(__file__).resolve().parents[2] / "demo"
CORPUS = DEMO / "corpus"

ANA = "ana@northwind.example"        # engineering, sre
BEN = "ben@northwind.example"        # engineering
CARLA = "carla@northwind.example"    # hr
DEVIKA = "devika@northwind.example"  # finance
ERIK = "erik@northwind.example"      # CEO: no groups, named in .acl.yml for the salary bands
EVERYONE = (ANA, BEN, CARLA, DEVIKA, ERIK)

BILLING = "runbooks/restart-billing-service.md"
BILLING_Q = "How do I restart the billing service?"
SALARY = "hr/salary-bands.md"
SALARY_Q = "What does a Lead Engineer (L4) earn?"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    data = tmp_path_factory.mktemp("demo-data")
    prefix = f"chatops-test-demo-{uuid.uuid4().hex[:8]}"
    settings = Settings.load(
        CHATOPS_DATA_DIR=str(data),
        QDRANT_PATH=str(data / "index"),
        QDRANT_URL=None,
        CHATOPS_DIRECTORY_FILE=str(DEMO / "directory.yml"),
        CHATOPS_IDENTITY_PROVIDER="directory",
        CHATOPS_KEY_PREFIX=prefix,
        OPENAI_API_KEY=None,
        OPENAI_BASE_URL=None,
        SLACK_BOT_TOKEN=None,
        CHATOPS_CONFIG=None,
    )
    container = Container(settings)
    source = FilesystemSource(CORPUS)
    report = ingest(source, container.index, container.embedder)
    try:
        yield {"container": container, "pipeline": container.pipeline(with_slack=False),
               "source": source, "report": report}
    finally:
        try:  # the identity cache (if Redis is up) under this run's own prefix
            for key in container.redis.scan_iter(f"{prefix}:*"):
                container.redis.delete(key)
        except Exception:  # noqa: BLE001 - Redis is optional here
            pass
        container.close()


def ask(demo, email: str, text: str):
    answer, _ = demo["pipeline"].ask(Question(text=text, asker_email=email))
    return answer


def used(answer) -> set[str]:
    """Every document cited in, or handed over for, an answer."""
    return {c.source for c in answer.citations} | set(answer.considered)


def _normalise(text: str) -> str:
    text = re.sub(r"(?m)^\s*>\s?", " ", text)     # extractive quoting
    text = re.sub(r"[*`|#]", " ", text)            # Markdown emphasis, code, tables, headings
    return " ".join(text.split()).lower()


def sentences_of(path: Path, min_words: int = 5) -> list[str]:
    body = _normalise(path.read_text())
    parts = re.split(r"(?<=[.!?:;])\s+", body)
    return [p for p in parts if len(p.split()) >= min_words]


def test_ingestion_reports_the_corpus_and_hides_the_unmatched_draft(demo):
    report = demo["report"]
    assert report.skipped == []
    assert report.no_acl == ["drafts/reorg-plan.md"]
    assert report.added == 15 and report.updated == 0 and report.deleted == 0
    indexed = demo["container"].index.document_hashes(demo["source"].source_id)
    assert not any(doc.startswith("drafts/") for doc in indexed)
    assert {BILLING, SALARY, "finance/q3-budget.html", "it/passwords.txt"} <= set(indexed)


def test_engineer_gets_the_runbook_with_a_citation(demo):
    for email in (BEN, ANA):
        answer = ask(demo, email, BILLING_Q)
        assert answer.citations, email
        assert BILLING in [c.source for c in answer.citations], email


def test_hr_partner_gets_nothing_from_the_runbook(demo):
    runbook = sentences_of(CORPUS / BILLING)
    # The check can see a leak: the engineer's extractive answer quotes the runbook.
    engineer = _normalise(ask(demo, BEN, BILLING_Q).text)
    assert any(s in engineer for s in runbook)

    answer = ask(demo, CARLA, BILLING_Q)
    assert not any(doc.startswith("runbooks/") for doc in used(answer))
    text = _normalise(answer.text)
    assert [s for s in runbook if s in text] == []
    assert "billing-api" not in answer.text and "invoice-runner" not in answer.text


def test_sre_only_runbook_is_not_shown_to_a_plain_engineer(demo):
    question = "How do I get break-glass access to production?"
    assert "runbooks/production-access.md" in [c.source for c in ask(demo, ANA, question).citations]
    assert "runbooks/production-access.md" not in used(ask(demo, BEN, question))


def test_salary_bands_for_hr_and_the_named_ceo_only(demo):
    for email in (CARLA, ERIK):
        answer = ask(demo, email, SALARY_Q)
        assert SALARY in [c.source for c in answer.citations], email
    # The CEO is named on one HR document, not in the hr group.
    ceo = ask(demo, ERIK, "How are performance ratings calibrated?")
    assert "hr/performance-review-calibration.md" not in used(ceo)
    for email in (ANA, BEN, DEVIKA):
        answer = ask(demo, email, SALARY_Q)
        assert not any(doc.startswith("hr/") for doc in used(answer)), email
        assert "€78,000" not in answer.text and "€102,000" not in answer.text, email


def test_unmatched_draft_is_never_cited_for_anyone(demo):
    questions = ("What is the operations reorganisation plan?",
                 "Which planning and dispatch roles will change in the reorganisation?")
    for email in EVERYONE:
        for question in questions:
            answer = ask(demo, email, question)
            assert not any(doc.startswith("drafts/") for doc in used(answer)), (email, question)
            assert "Network Planning" not in answer.text


def test_public_handbook_for_everyone_and_unknown_people_refused(demo):
    question = "How many vacation days do I get, and can I carry unused days over?"
    for email in EVERYONE:
        answer = ask(demo, email, question)
        assert "handbook/vacation-policy.md" in [c.source for c in answer.citations], email
    with pytest.raises(Refusal, match="company directory"):
        ask(demo, "sam@contractor.example", question)


def test_finance_budget_is_finance_only(demo):
    question = "What is the Q3 capital expenditure budget?"
    assert "finance/q3-budget.html" in [c.source for c in ask(demo, DEVIKA, question).citations]
    for email in (ANA, BEN, CARLA, ERIK):
        assert "finance/q3-budget.html" not in used(ask(demo, email, question)), email


def test_injection_document_is_in_the_corpus_for_engineers(demo):
    # Later tests use this document to show that document text is data, not instructions.
    text = (CORPUS / "runbooks/legacy-notes.md").read_text()
    assert "Ignore previous instructions" in text
    acl = demo["source"].rules.acl_for("runbooks/legacy-notes.md")
    assert acl.groups == {"engineering", "sre"} and not acl.public


def test_reingesting_the_same_folder_changes_nothing(demo):
    container = demo["container"]
    again = ingest(FilesystemSource(CORPUS), container.index, container.embedder)
    assert (again.added, again.updated, again.deleted, again.chunks) == (0, 0, 0, 0)
    assert again.unchanged == demo["report"].added + demo["report"].updated + demo["report"].unchanged
    assert again.unchanged == 15
    assert again.no_acl == ["drafts/reorg-plan.md"]


def test_hr_partner_is_told_nothing_was_found_not_shown_the_expenses_policy(demo):
    """Issue 23: the nearest passage the HR partner may see (the expenses policy) does not answer how
    to restart the billing service; the no-evidence rule (usecases/evidence.py) says so instead of
    quoting it. Questions that have an answer still get it."""
    answer = ask(demo, CARLA, BILLING_Q)
    assert answer.mode == "no-evidence", answer.text
    assert answer.citations == [] and answer.considered == []
    assert "couldn't find" in answer.text
    assert answer.evidence["top_similarity"] > 0      # something was near; it did not answer
    for email, question, doc in ((BEN, BILLING_Q, BILLING), (CARLA, SALARY_Q, SALARY),
                                 (DEVIKA, "How many vacation days do I get, and can I carry unused days over?",
                                  "handbook/vacation-policy.md")):
        got = ask(demo, email, question)
        assert got.mode == "extractive" and doc in [c.source for c in got.citations], (email, question)
