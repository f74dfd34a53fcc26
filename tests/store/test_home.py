"""usecases/home.py on the real audit store (SQLite and PostgreSQL): what one person sees of the bot
in the App Home and the suggested prompts, and what they never see (another person's questions,
above all one asked in a direct message; sources they may read nothing of; proposals they may not
approve; anyone else's connected tools)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chatops.access import Acl, Principal
from chatops.catalogue import ActionSpec, Catalogue
from chatops.store.answers import Answers
from chatops.store.asked import AskedRecords
from chatops.store.sources import SourceStates
from usecases.home import Home, Prompt, suggested_prompts
from usecases.proposals import ProposalService

ANA = Principal.of("ana@corp.example", ["sre"], slack_user_id="UANA", object_id="0a0a0a0a-0000-4000-8000-00000000000a")
BEN = Principal.of("ben@corp.example", ["engineering"], slack_user_id="UBEN")
PUBLIC = {"CPUB"}                                   # the public channels of the workspace


def is_public(channel: str | None, channel_type: str | None) -> bool:
    return channel in PUBLIC


def ask(store, text: str, *, asker: str, channel: str, channel_type: str, answer_id: str,
        members: list[str] | None = None, mode: str = "llm", helpful: tuple[str, ...] = ()) -> None:
    store.record_question(question=text, mode=mode, channel=channel, channel_type=channel_type, asker_slack_id=asker,
                          facts={"answer_id": answer_id, "audience_members": members})
    answers = Answers(store)
    row = answers.get(answer_id)
    for voter in helpful:
        answers.vote(row, voter, "helpful")


@pytest.fixture
def asked(store):
    # Ben's DM question, the most helpful of all: never anyone else's prompt or home.
    ask(store, "what is the salary band of Carla Diaz?", asker="UBEN", channel="DBEN", channel_type="im",
        answer_id="a1", members=None, helpful=("UBEN", "UANA", "UX1", "UX2"))
    # A public channel's question Ana was in the audience of.
    ask(store, "How do I rotate the VPN certificate?", asker="UBEN", channel="CPUB", channel_type="channel",
        answer_id="a2", members=["UANA", "UBEN", "UBOT"], helpful=("UANA", "UBEN"))
    ask(store, "how do I rotate the vpn certificate", asker="UCARL", channel="CPUB", channel_type="channel",
        answer_id="a3", members=["UANA", "UBEN", "UCARL", "UBOT"], helpful=("UCARL",))
    # A private channel's question, Ana in it: not public, never suggested to her.
    ask(store, "when is the reorg announced?", asker="UBEN", channel="GHR", channel_type="group",
        answer_id="a4", members=["UANA", "UBEN"], helpful=("UBEN",))
    # A public channel's question whose answer was made before Ana joined: not for her.
    ask(store, "what are the office hours?", asker="UBEN", channel="CPUB", channel_type="channel",
        answer_id="a5", members=["UBEN"], helpful=("UBEN",))
    # Ana's own DM question.
    ask(store, "who approves my expenses?", asker="UANA", channel="DANA", channel_type="im",
        answer_id="a6", helpful=("UANA",))
    # Found nothing: not a prompt, though voted.
    ask(store, "where is the moon base?", asker="UANA", channel="DANA", channel_type="im",
        answer_id="a7", mode="no-evidence", helpful=("UANA",))
    return AskedRecords(store)


def test_prompts_are_the_most_helpful_questions_this_person_may_be_shown(asked):
    prompts = suggested_prompts(asked, "UANA", is_public=is_public)
    texts = [p.message for p in prompts]
    assert texts[0].lower().startswith("how do i rotate the vpn certificate")     # 3 helpful votes, asked twice
    assert "who approves my expenses?" in texts                                    # her own DM question
    assert len(texts) == 2
    joined = " ".join(texts).lower()
    for never in ("salary", "reorg", "office hours", "moon base"):
        assert never not in joined


def test_another_persons_dm_question_is_never_a_prompt_whoever_asks(asked):
    for person in ("UANA", "UCARL", "UX1", "UNOBODY"):
        assert all("salary" not in p.message for p in suggested_prompts(asked, person, is_public=is_public))
    # the asker alone sees their own question again
    assert any("salary" in p.message for p in suggested_prompts(asked, "UBEN", is_public=is_public))


def test_the_deployments_prompts_replace_the_default_and_at_most_four_are_given(asked):
    mine = [Prompt(f"t{i}", f"m{i}") for i in range(6)]
    assert suggested_prompts(asked, "UANA", is_public=is_public, configured=mine) == mine[:4]


def sources(store, now):
    states = SourceStates(store)
    configured = {"handbook": ("filesystem", "fs:handbook"), "sre-wiki": ("confluence", "cf:sre"),
                  "hr-files": ("sharepoint", "sp:hr"), "never-synced": ("filesystem", "fs:never")}
    for name, (kind, sid) in configured.items():
        if name != "never-synced":
            states.ensure(name, sid, kind)
            states.set(name, acl_watermark=now - timedelta(hours=1), last_incremental_at=now - timedelta(minutes=5))
    item = {"scope": "s", "folder": False, "version": "1", "state": "indexed"}
    states.put_items("handbook", [{**item, "doc_id": "h1", "title": "Holidays", "acl": Acl.of(public=True)}])
    states.put_items("sre-wiki", [{**item, "doc_id": "w1", "title": "Runbook", "acl": Acl.of(["sre"])}])
    states.put_items("hr-files", [{**item, "doc_id": "p1", "title": "Salaries", "acl": Acl.of(["hr"])},
                                  {**item, "doc_id": "p2", "title": "Hidden", "state": "hidden", "acl": Acl.of()}])
    return states, configured


class Connections:
    def __init__(self, held: dict[str, list[str]]):
        self.held = held

    def connected(self, person_id: str) -> list[str]:
        return self.held.get(person_id, [])


class NoConnector:
    idempotent = True

    def default_approvers(self, arguments: dict):
        return None


def test_the_home_shows_this_persons_sources_questions_approvals_and_tools(store, asked):
    now = datetime.now(timezone.utc)
    states, configured = sources(store, now)
    spec = ActionSpec.model_validate({"name": "restart_service", "description": "Restart a service.", "kind": "fake",
                                      "approvers": {"groups": ["sre"]}})
    proposals = ProposalService(store, Catalogue([spec], {"restart_service": NoConnector()}))
    proposals.propose("restart_service", {}, BEN, channel="CPUB", thread_ts="1.1", correlation_id="c1")
    connections = Connections({"0a0a0a0a-0000-4000-8000-00000000000a": ["mydesk"], "email:ben@corp.example": ["jira"]})
    home = Home(asked=asked, source_states=states, configured=configured, max_acl_age=86400, proposals=proposals,
                connections=connections, tool_labels={"mydesk": "My Desk", "jira": "Jira"})

    view = home.view(ANA)
    assert [s.name for s in view.sources] == ["handbook", "sre-wiki"]          # nothing of HR's for her
    assert view.sources[1].kind == "confluence" and view.sources[1].last_sync is not None
    assert [a.question for a in view.asked] == ["where is the moon base?", "who approves my expenses?"]
    assert [a.outcome for a in view.asked] == ["no_evidence", "answered"]
    assert all(a.where == "dm" for a in view.asked)
    assert [(a.action, a.requested_by) for a in view.approvals] == [("restart_service", "UBEN")]
    assert [(t.name, t.label) for t in view.tools] == [("mydesk", "My Desk")]

    ben = home.view(BEN)
    assert [s.name for s in ben.sources] == ["handbook"]
    assert ben.approvals == []                                                  # not an approver (and the requester)
    assert [t.name for t in ben.tools] == ["jira"]
    assert {a.question for a in ben.asked} >= {"what is the salary band of Carla Diaz?"}
    assert all("salary" not in a.question for a in view.asked)                  # Ben's DM: never in Ana's home


def test_a_source_with_stale_permissions_shows_only_if_it_has_public_documents(store, asked):
    now = datetime.now(timezone.utc)
    states, configured = sources(store, now)
    states.set("sre-wiki", acl_watermark=now - timedelta(days=3))
    home = Home(asked=asked, source_states=states, configured=configured, max_acl_age=86400)
    seen = {s.name: s for s in home.sources(ANA)}
    assert set(seen) == {"handbook"}
    states.put_items("sre-wiki", [{"doc_id": "w2", "scope": "s", "folder": False, "version": "1", "state": "indexed",
                                   "title": "Public page", "acl": Acl.of(public=True)}])
    seen = {s.name: s for s in home.sources(ANA)}
    assert seen["sre-wiki"].stale is True


def test_someone_unknown_sees_public_sources_only_and_no_tools(store, asked):
    now = datetime.now(timezone.utc)
    states, configured = sources(store, now)
    home = Home(asked=asked, source_states=states, configured=configured, max_acl_age=86400,
                connections=Connections({}))
    view = home.view(Principal.unknown("UEXT"))
    assert [s.name for s in view.sources] == ["handbook"] and view.tools == [] and view.asked == []
