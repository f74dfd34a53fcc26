"""Proposals end to end below Slack: catalogue, approver policy, compare-and-set, execution, audit.

Runs on SQLite and PostgreSQL (the ``store`` fixture), with the real webhook
connector posting to a loopback receiver.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
import requests
import yaml

from chatops.access import Principal
from chatops.catalogue import Catalogue
from chatops.settings import ConfigError
from connectors.actions.base import ConnectorDeps
from connectors.actions.registry import connector_builder
from tests.actions_example import catalogue
from standins.fake_webhook import FakeWebhook
from usecases.proposals import Decided, Invalid, ProposalService, Refused

HOOK_SECRET = "hook-secret-for-tests"

ANA = Principal.of("ana@corp.example", ["sre"], slack_user_id="UANA")        # SRE, may approve
SAM = Principal.of("sam@corp.example", ["sre"], slack_user_id="USAM")        # another SRE
BEN = Principal.of("ben@corp.example", ["engineering"], slack_user_id="UBEN")  # may not approve


def catalogue_yaml(url: str) -> str:
    return catalogue(url, f"""  - name: clear_cache
    kind: webhook
    description: Clear my own cache.
    url: {url}
    secret_env: RESTART_HOOK_SECRET
    parameters: {{type: object, properties: {{}}, additionalProperties: false}}
""")


class Clock:
    def __init__(self):
        self.now = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def hook():
    with FakeWebhook() as server:
        yield server


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def service(store, hook, clock):
    deps = ConnectorDeps(http=requests.Session(), secret={"RESTART_HOOK_SECRET": HOOK_SECRET}.get, timeout=5)
    catalogue = Catalogue.load(yaml.safe_load(catalogue_yaml(hook.url))["actions"], connector_builder(deps))
    return ProposalService(store, catalogue, clock=clock, sleep=lambda s: None)


def propose_restart(service, requester=BEN, args='{"service": "billing", "env": "staging"}'):
    outcome = service.propose("restart_service", args, requester, channel="C1", thread_ts="1.1",
                              correlation_id="cid-1")
    assert not isinstance(outcome, Invalid), outcome
    return outcome.proposal


def kinds(store, proposal_id):
    return [e["kind"] for e in store.events(proposal_id)]


def test_the_issue_example_loads_and_the_webhook_runs_once_on_approval(service, store, hook):
    p = propose_restart(service)
    assert p.state == "proposed"
    outcome = service.decide(p.id, "approve", ANA, correlation_id="cid-2")
    assert isinstance(outcome, Decided)
    assert outcome.executed.state == "succeeded"
    assert len(hook.requests) == 1
    assert hook.verify(HOOK_SECRET)
    sent = hook.requests[0]
    assert sent.headers["idempotency-key"] == p.id
    assert sent.json() == {"action": "restart_service", "arguments": {"service": "billing", "env": "staging"},
                           "proposal_id": p.id, "requested_by": "ben@corp.example",
                           "approved_by": "ana@corp.example"}
    assert kinds(store, p.id) == ["proposal_created", "approved", "executing", "succeeded"]


def test_two_approvers_clicking_at_once_run_it_exactly_once(service, store, hook):
    p = propose_restart(service)
    barrier = threading.Barrier(4)
    outcomes = []

    def click(person):
        barrier.wait()
        outcomes.append(service.decide(p.id, "approve", person))

    threads = [threading.Thread(target=click, args=(person,)) for person in (ANA, SAM, ANA, SAM)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(hook.requests) == 1
    # Sam's click either won or found it already approved; Ana's second click is either refused
    # ("already") or, caught between approval and execution, confirms it without running it again.
    assert 1 <= sum(isinstance(o, Decided) for o in outcomes) <= 2
    assert all("already" in o.message for o in outcomes if isinstance(o, Refused))
    assert store.get_proposal(p.id).state == "succeeded"
    assert kinds(store, p.id).count("executing") == 1


def test_a_non_approver_is_refused_and_nothing_changes(service, store, hook):
    p = propose_restart(service, requester=ANA)
    outcome = service.decide(p.id, "approve", BEN)
    assert isinstance(outcome, Refused) and "group sre" in outcome.message
    assert store.get_proposal(p.id).state == "proposed"
    assert hook.requests == []
    assert kinds(store, p.id)[-1] == "click_refused"


def test_self_approval_is_refused_where_not_allowed(service, store, hook):
    p = propose_restart(service, requester=ANA)  # ana is an approver, but she asked
    outcome = service.decide(p.id, "approve", ANA)
    assert isinstance(outcome, Refused) and "someone else" in outcome.message
    assert store.get_proposal(p.id).state == "proposed" and hook.requests == []
    assert isinstance(service.decide(p.id, "approve", SAM), Decided)


def test_requester_alone_may_approve_their_own_request_by_default(service, store, hook):
    outcome = service.propose("clear_cache", "{}", BEN, channel="C1", thread_ts="1.1", correlation_id=None)
    assert outcome.policy.requester_alone and outcome.policy.allow_self_approval
    assert isinstance(service.decide(outcome.proposal.id, "approve", ANA), Refused)
    assert service.decide(outcome.proposal.id, "approve", BEN).executed.state == "succeeded"


def test_expired_proposals_cannot_be_approved(service, store, hook, clock):
    p = propose_restart(service)
    clock.now += timedelta(seconds=3601)
    outcome = service.decide(p.id, "approve", ANA)
    assert isinstance(outcome, Decided) and outcome.proposal.state == "expired"
    assert hook.requests == []
    assert isinstance(service.decide(p.id, "approve", ANA), Refused)


def test_reject_with_reason(service, store, hook):
    p = propose_restart(service)
    outcome = service.decide(p.id, "reject", SAM, reason="change freeze until Monday")
    assert outcome.proposal.state == "rejected"
    assert outcome.proposal.reason == "change freeze until Monday"
    assert outcome.proposal.decided_by_email == "sam@corp.example"
    assert isinstance(service.decide(p.id, "approve", ANA), Refused)
    assert hook.requests == []


def test_the_requester_may_withdraw_but_a_bystander_may_not_reject(service, store):
    p = propose_restart(service)
    outsider = Principal.of("zoe@corp.example", ["finance"], slack_user_id="UZOE")
    assert isinstance(service.decide(p.id, "reject", outsider), Refused)
    assert service.decide(p.id, "reject", BEN).proposal.state == "rejected"


@pytest.mark.parametrize("args, fragment", [
    ('{"service": "billing"}', "'env' is a required property"),
    ('{"service": "payroll", "env": "staging"}', "is not one of"),
    ('{"service": "billing", "env": "staging", "force": true}', "Additional properties"),
    ("not json", "not valid JSON"),
])
def test_invalid_arguments_propose_nothing(service, store, hook, args, fragment):
    outcome = service.propose("restart_service", args, BEN, channel="C1", thread_ts="1.1", correlation_id=None)
    assert isinstance(outcome, Invalid)
    assert fragment in outcome.message()
    assert store.list_proposals() == []


def test_requesters_restrict_who_may_ask(store, hook):
    raw = yaml.safe_load(catalogue_yaml(hook.url))["actions"]
    raw[0]["requesters"] = ["sre"]
    deps = ConnectorDeps(http=requests.Session(), secret={"RESTART_HOOK_SECRET": HOOK_SECRET}.get)
    catalogue = Catalogue.load(raw, connector_builder(deps))
    assert [t["function"]["name"] for t in catalogue.tools(BEN)] == ["clear_cache"]
    assert {t["function"]["name"] for t in catalogue.tools(ANA)} == {"restart_service", "clear_cache"}
    service = ProposalService(store, catalogue)
    assert isinstance(service.propose("restart_service", '{"service": "billing", "env": "staging"}', BEN,
                                      channel=None, thread_ts=None, correlation_id=None), Invalid)


def test_connector_failure_is_reported_not_retried_blindly(service, store, hook):
    hook.script(422)
    p = propose_restart(service)
    final = service.decide(p.id, "approve", ANA).executed
    assert final.state == "failed"
    assert "422" in final.result["summary"]
    assert len(hook.requests) == 1


def test_transient_failure_of_an_idempotent_action_is_retried_with_the_same_key(service, store, hook):
    hook.script(503, 200)
    p = propose_restart(service)
    final = service.decide(p.id, "approve", ANA).executed
    assert final.state == "succeeded"
    assert [r.headers["idempotency-key"] for r in hook.requests] == [p.id, p.id]


@pytest.mark.parametrize("mutate, fragment", [
    (lambda a: a.pop("url"), "action 'restart_service': url"),
    (lambda a: a.update(secret_env="NOT_SET_ANYWHERE"), "action 'restart_service': secret_env"),
    (lambda a: a.update(approvers={"groups": "sre"}), "action 'restart_service': approvers.groups"),
    (lambda a: a.update(parameters={"type": "array"}), "action 'restart_service': parameters"),
    (lambda a: a.update(kind="teleport"), "action 'restart_service': kind"),
    (lambda a: a.update(expires_after=0), "action 'restart_service': expires_after"),
])
def test_invalid_catalogue_fails_naming_action_and_field(hook, mutate, fragment):
    raw = yaml.safe_load(catalogue_yaml(hook.url))["actions"]
    mutate(raw[0])
    deps = ConnectorDeps(http=requests.Session(), secret={"RESTART_HOOK_SECRET": HOOK_SECRET}.get)
    with pytest.raises(ConfigError) as err:
        Catalogue.load(raw, connector_builder(deps))
    assert fragment in str(err.value)
