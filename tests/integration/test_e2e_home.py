"""The App Home end to end: signed ``app_home_opened`` events into the real web app, the ``home`` task
on a real worker process (Celery on the real Redis), ``views.publish`` and
``assistant.threads.setSuggestedPrompts`` on the Slack stand-in."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from chatops.store import Store
from chatops.store.answers import Answers

from tests.integration.harness import BOT, System, new_ts, text_of, wait_for

ANA, BEN = "UANA", "UBEN"
CORPUS = {
    ".acl.yml": '- match: "handbook/**"\n  public: true\n',
    "handbook/vacation.md": "# Vacation policy\n\nEveryone gets 27 days of paid vacation per calendar year.\n",
}
DIRECTORY = """
users:
  - {email: ana@corp.example, slack_id: UANA, groups: [sre]}
  - {email: ben@corp.example, slack_id: UBEN, groups: [engineering]}
"""


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e-home")
    s = System.start(root, corpus=CORPUS, directory=DIRECTORY, reply=lambda request: "27 days [1].",
                     users={ANA: {"id": ANA, "profile": {"email": "ana@corp.example"}},
                            BEN: {"id": BEN, "profile": {"email": "ben@corp.example"}},
                            BOT: {"id": BOT, "is_bot": True}},
                     channels={})
    yield s
    s.stop()


def dm(system: System, user: str, text: str) -> None:
    since = len(system.slack.calls)
    assert system.post_event({"type": "message", "channel": f"D{user}", "channel_type": "im", "user": user,
                              "text": text, "ts": new_ts()}).status_code == 200
    # posted whole (the working message updated) or streamed (CHATOPS_STREAMING, the default: stopped)
    wait_for(lambda: any(c["params"].get("channel") == f"D{user}" and (
        c["method"] == "chat.stopStream" or c["method"] == "chat.update" and "Looking into it" not in text_of(c["params"]))
        for c in list(system.slack.calls)[since:]), timeout=45, what="the answer in the DM")


def test_opening_the_home_tab_publishes_the_persons_own_view(system):
    dm(system, BEN, "how many vacation days does the salary team get?")
    dm(system, ANA, "how many vacation days do we get?")
    response = system.post_event({"type": "app_home_opened", "user": ANA, "channel": f"D{ANA}", "tab": "home",
                                  "event_ts": new_ts()})
    assert response.status_code == 200
    call = system.slack.wait_for("views.publish", lambda p: p.get("user_id") == ANA, timeout=30)
    view = call["view"] if isinstance(call["view"], dict) else json.loads(call["view"])
    shown = json.dumps(view["blocks"])
    assert view["type"] == "home"
    assert "how many vacation days do we get?" in shown
    assert "salary team" not in shown                         # Ben's DM question: never in Ana's home


def test_opening_the_messages_tab_suggests_her_helpful_question_and_never_anothers_dm(system):
    store = Store.for_url(f"sqlite:///{system.root / 'data' / 'chatops.db'}")
    try:
        answers = Answers(store)
        for row in answers.questions(datetime.now(timezone.utc) - timedelta(hours=1)):
            answers.vote(answers.get(row["answer_id"]), row["asker_slack_id"], "helpful")   # each likes their own
    finally:
        store.close()
    response = system.post_event({"type": "app_home_opened", "user": ANA, "channel": f"D{ANA}", "tab": "messages",
                                  "event_ts": new_ts()})
    assert response.status_code == 200
    call = system.slack.wait_for("assistant.threads.setSuggestedPrompts", lambda p: p.get("channel_id") == f"D{ANA}",
                                 timeout=30)
    assert "thread_ts" not in call                            # the agent view: on the conversation, no thread
    prompts = call["prompts"] if isinstance(call["prompts"], list) else json.loads(call["prompts"])
    assert [p["message"] for p in prompts] == ["how many vacation days do we get?"]
    assert "salary team" not in json.dumps(call)


# -- proposals on the Home tab, through a real worker ----------------------------------------------

SAM, HAL = "USAM", "UHAL"          # Ana and Sam are SREs (approvers of restart_service); Ben and Hal are not
HOOK_SECRET = "e2e-home-hook-secret"
ACTIONS_CORPUS = {
    ".acl.yml": '- match: "**"\n  groups: [engineering, sre]\n',
    "runbooks/restart.md": "# Restarting services\n\nRestarts of billing go through the restart_service action.\n",
}
ACTIONS_DIRECTORY = """
users:
  - {email: ana@corp.example, slack_id: UANA, groups: [sre]}
  - {email: sam@corp.example, slack_id: USAM, groups: [sre]}
  - {email: ben@corp.example, slack_id: UBEN, groups: [engineering]}
  - {email: hal@corp.example, slack_id: UHAL, groups: [engineering]}
"""


def _restart_model(request: dict):
    question = request["messages"][-1]["content"].rsplit("Question:", 1)[-1]
    offered = [t["function"]["name"] for t in request.get("tools") or []]
    for env in ("staging", "production"):
        if "restart_service" in offered and f"restart billing in {env}" in question:
            return {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": "restart_service", "arguments": json.dumps({"service": "billing", "env": env})}}]}
    return "Restarts go through the restart_service action [1]."


@pytest.fixture(scope="module")
def hook():
    from standins.fake_webhook import FakeWebhook

    with FakeWebhook() as server:
        yield server


@pytest.fixture(scope="module")
def approvals(tmp_path_factory, hook):
    from tests.actions_example import catalogue

    root = tmp_path_factory.mktemp("e2e-home-approvals")
    (root / "actions.yml").write_text(catalogue(hook.url))
    s = System.start(root, corpus=ACTIONS_CORPUS, directory=ACTIONS_DIRECTORY, reply=_restart_model,
                     users={u: {"id": u, "profile": {"email": f"{n}@corp.example"}}
                            for u, n in ((ANA, "ana"), (SAM, "sam"), (BEN, "ben"), (HAL, "hal"))}
                     | {BOT: {"id": BOT, "is_bot": True}},
                     channels={"COPS": [ANA, SAM, BEN, HAL, BOT]},
                     extra_env={"CHATOPS_CONFIG": str(root / "actions.yml"), "RESTART_HOOK_SECRET": HOOK_SECRET})
    yield s
    s.stop()


def _publishes(system: System, user: str) -> list[dict]:
    return [p for p in system.slack.calls_to("views.publish") if p.get("user_id") == user]


def _shown(system: System, user: str) -> str:
    view = system.slack.home_view(user)
    return json.dumps(view["blocks"], ensure_ascii=False) if view else ""


def _open_home(system: System, user: str) -> None:
    before = len(_publishes(system, user))
    assert system.post_event({"type": "app_home_opened", "user": user, "channel": f"D{user}", "tab": "home",
                              "event_ts": new_ts()}).status_code == 200
    wait_for(lambda: len(_publishes(system, user)) > before, timeout=30, what=f"{user}'s Home tab")


def _ask_for_restart(system: System, env: str) -> str:
    """Ben asks in #ops; the proposal's id once its message is posted."""
    event = system.mention("COPS", BEN, f"please restart billing in {env}")
    assert system.post_event(event).status_code == 200
    posted = system.slack.wait_for("chat.postMessage", lambda p: p.get("thread_ts") == event["ts"] and any(
        b.get("type") == "actions" for b in p.get("blocks") or []), timeout=45)
    return next(e["value"] for b in posted["blocks"] if b["type"] == "actions" for e in b["elements"])


def _home_button(system: System, user: str, action_id: str, proposal_id: str) -> dict:
    for block in system.slack.home_view(user)["blocks"]:
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id and element.get("value") == proposal_id:
                return {**element, "block_id": block["block_id"]}
    raise AssertionError(f"no {action_id} for {proposal_id} on {user}'s Home tab")


def _proposal_message_updates(system: System, proposal_id: str) -> list[str]:
    posted = next(c for c in system.slack.calls if c["method"] == "chat.postMessage"
                  and proposal_id in json.dumps(c["params"].get("blocks") or []))
    return [text_of(p) for p in system.slack.calls_to("chat.update") if p.get("ts") == posted["response_ts"]]


def test_an_approver_with_the_home_tab_open_sees_a_new_proposal_and_approves_it_there_once(approvals, hook):
    system = approvals
    _open_home(system, ANA)
    _open_home(system, HAL)
    assert "Waiting for your approval" not in _shown(system, ANA)
    hal_before = len(_publishes(system, HAL))
    proposal_id = _ask_for_restart(system, "staging")
    # her open Home tab is republished with it, on the worker, without her doing anything
    wait_for(lambda: f'"proposal:{proposal_id}"' in _shown(system, ANA), timeout=30, what="the live refresh")
    assert "*env*: `staging`" in _shown(system, ANA)
    approve = _home_button(system, ANA, "proposal_approve", proposal_id)

    # a double click on Approve on the Home tab: the action runs once
    view = system.slack.home_view(ANA)
    before = len(hook.requests)
    codes = [system.click_home(ANA, approve, view).status_code for _ in range(2)]
    assert codes == [200, 200]
    wait_for(lambda: any("done" in t for t in _proposal_message_updates(system, proposal_id)), timeout=30,
             what="the proposal's message updated")
    wait_for(lambda: "Approved by <@UANA> — done" in _shown(system, ANA), timeout=30, what="her Home republished")
    time.sleep(2.5)                           # room for a duplicate execution or a late refresh to show itself
    assert len(hook.requests) == before + 1 and hook.verify(HOOK_SECRET)
    shown = _shown(system, ANA)
    assert "Approved by <@UANA> — done" in shown and f'"proposal:{proposal_id}"' not in shown
    assert len(_publishes(system, HAL)) == hal_before            # not hers to approve: her tab untouched
    store = Store.for_url(f"sqlite:///{system.root / 'data' / 'chatops.db'}")
    try:
        kinds = [e["kind"] for e in store.events(proposal_id)]
    finally:
        store.close()
    assert kinds.count("approved") == 1 and kinds.count("executing") == 1 and kinds[-1] == "succeeded"


def test_a_person_who_may_not_approve_is_told_on_the_home_tab_and_nothing_runs(approvals, hook):
    system = approvals
    _open_home(system, ANA)
    proposal_id = _ask_for_restart(system, "production")
    wait_for(lambda: f'"proposal:{proposal_id}"' in _shown(system, ANA), timeout=30, what="the live refresh")
    _open_home(system, BEN)
    before = len(hook.requests)
    # Ben asked for it and is no SRE: his Home has no buttons for it; a forged click decides nothing
    assert f'"proposal:{proposal_id}"' not in _shown(system, BEN)
    system.click_home(BEN, _home_button(system, ANA, "proposal_approve", proposal_id), system.slack.home_view(BEN))
    wait_for(lambda: ":no_entry: You can't approve this" in _shown(system, BEN), timeout=30, what="his refusal")
    time.sleep(1.0)
    assert len(hook.requests) == before
    store = Store.for_url(f"sqlite:///{system.root / 'data' / 'chatops.db'}")
    try:
        assert store.get_proposal(proposal_id).state == "proposed"
        assert "click_refused" in [e["kind"] for e in store.events(proposal_id)]
    finally:
        store.close()


def test_reject_with_a_reason_from_the_home_tab_updates_the_message_and_the_tab(approvals, hook):
    system = approvals
    proposal_id = _ask_for_restart(system, "staging")
    _open_home(system, SAM)
    reject = _home_button(system, SAM, "proposal_reject", proposal_id)
    assert system.click_home(SAM, reject, system.slack.home_view(SAM)).status_code == 200
    opened = system.slack.wait_for("views.open", lambda p: proposal_id in json.dumps(p.get("view")), timeout=15)
    modal = opened["view"] if isinstance(opened["view"], dict) else json.loads(opened["view"])
    values = {"reason": {"reason_input": {"type": "plain_text_input", "value": "change freeze until Monday"}}}
    before = len(hook.requests)
    assert system.submit_view(SAM, modal, values).status_code == 200
    wait_for(lambda: any("change freeze until Monday" in t for t in _proposal_message_updates(system, proposal_id)),
             timeout=30, what="the proposal's message updated")
    wait_for(lambda: "Rejected by <@USAM>: change freeze until Monday" in _shown(system, SAM), timeout=30,
             what="his Home republished")
    assert f'"proposal:{proposal_id}"' not in _shown(system, SAM)
    assert len(hook.requests) == before
