"""The App Home, the Messages tab's suggested prompts and the channel a person looks at, through
signed Slack events (the composition root's web app, the handlers run in-process, real Redis,
the Slack stand-in): what a person sees, and what they never see."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from bot.home.context import CONTEXT_TTL
from chatops import keys
from chatops.store.answers import Answers
from chatops.channels import ChannelPolicies, ChannelConfig
from bot.policies import ChannelPolicyLookup
from bot.questions.handler import QuestionHandler
from standins.fake_slack import event_body, view_submission_body
from tests.handlers.test_service import ANA, BEN, HR, ONCALL, answer_id_of, post, run_queued
from tests.handlers import test_service
from tests.integration.harness import text_of

pytestmark = pytest.mark.redis

world = test_service.world      # the fixture: the web app, the stand-ins, real Redis, in-memory SQLite


def send(w, event: dict) -> None:
    post(w, event_body(event, f"Ev{uuid.uuid4().hex[:10]}"), "application/json")


def looking_at(w, user: str, channel: str | None) -> None:
    """Slack's app_context_changed: ``user`` now looks at ``channel`` (None: at nothing)."""
    entities = {"entities": [{"type": "slack#/types/channel_id", "value": channel, "team_id": "T123"}]} if channel else {}
    send(w, {"type": "app_context_changed", "channel": f"D{user}", "user": user, "context": entities,
             "event_ts": f"{time.time():.6f}"})


def dm(w, user: str, text: str) -> dict:
    """Ask in a DM; the answer as the person sees it, streamed (``CHATOPS_STREAMING``, the default: its
    text and the blocks given at ``chat.stopStream``) or posted whole (the working message's update)."""
    w["slack"].reset()
    ts = f"{time.time():.6f}"
    send(w, {"type": "message", "channel": f"D{user}", "channel_type": "im", "user": user, "text": text, "ts": ts})
    run_queued(w)
    streamed = [m for m in w["slack"].streams_in(f"D{user}", ts) if m.blocks is not None]
    if streamed:
        return {"channel": f"D{user}", "text": streamed[-1].text, "blocks": streamed[-1].blocks}
    return w["slack"].wait_for("chat.update", lambda p: p.get("channel") == f"D{user}" and "Looking" not in text_of(p))


def opened(w, user: str, tab: str) -> None:
    w["slack"].reset()
    send(w, {"type": "app_home_opened", "user": user, "channel": f"D{user}", "tab": tab,
             "event_ts": f"{time.time():.6f}"})
    assert [k for k, _ in w["queued"]] == ["home"]
    run_queued(w)


def test_the_channel_looked_at_lends_its_sources_and_the_answer_stays_the_askers(world):
    w = world
    (w["root"] / "other").mkdir()
    w["build"]({"sources": [{"name": "library", "kind": "filesystem", "path": str(w["root"] / "corpus")},
                            {"name": "other", "kind": "filesystem", "path": str(w["root"] / "other")}],
                "channels": {"default": {"escalation": {"users": [ONCALL]}},
                             "CSRE": {"sources": ["other"]}, "COPS": {"sources": ["library"]}}},
               CHATOPS_CACHE_TTL="0")
    looking_at(w, ANA, "CSRE")
    assert w["queued"] == []                                      # remembered at once, nothing queued
    assert "couldn't find" in text_of(dm(w, ANA, "how many vacation days do we get?"))

    # COPS (Ana and Ben; Ben is not in sre): its sources, but the audience is Ana alone, so the
    # SRE-only runbook is used; nothing goes to the channel.
    looking_at(w, ANA, "COPS")
    answer = dm(w, ANA, "how are on-call swaps arranged during vacation?")
    assert "runbooks/vacation-oncall.md" in text_of(answer)
    posted = [c for c in w["slack"].calls if c["method"].startswith("chat.")]
    assert posted and all(c["params"].get("channel") == f"D{ANA}" for c in posted)

    looking_at(w, ANA, None)                                      # looking at nothing: the DM's own settings
    assert w["container"].state.get_json(keys.CACHE_APP_CONTEXT, ANA) is None
    assert "handbook/vacation.md" in text_of(dm(w, ANA, "how many vacation days do we get?"))


def test_the_context_is_kept_briefly_and_lends_nothing_to_channel_questions_or_from_a_disabled_channel(world):
    w = world
    state = w["container"].state
    policies = ChannelPolicyLookup(ChannelPolicies({"CSRE": ChannelConfig(sources=["x"], actions=False),
                                                    "COFF": ChannelConfig(enabled=False, sources=["y"])}), None, state)
    handler = QuestionHandler(gateway=None, state=state, people=None, answering=None, directory=None,
                              progress_for=None, policies=policies)
    looking_at(w, ANA, "CSRE")
    assert 0 < w["container"].redis.ttl(keys.cache(state.prefix, keys.CACHE_APP_CONTEXT, ANA)) <= CONTEXT_TTL
    dm_policy = handler.policy({"channel": f"D{ANA}", "channel_type": "im", "user": ANA})
    assert (dm_policy.sources, dm_policy.actions, dm_policy.enabled) == (("x",), False, True)
    assert handler.policy({"channel": f"D{BEN}", "channel_type": "im", "user": BEN}).sources is None   # Ben's own
    assert handler.policy({"channel": "COPS", "channel_type": "channel", "user": ANA}).sources is None
    looking_at(w, ANA, "COFF")
    off = handler.policy({"channel": f"D{ANA}", "channel_type": "im", "user": ANA})
    assert (off.enabled, off.sources) == (True, None)


def test_the_home_tab_shows_the_persons_own_questions_and_never_anothers_dm(world):
    w = world
    dm(w, BEN, "how do I submit expenses for the salary review?")
    dm(w, ANA, "how many vacation days do we get?")
    opened(w, ANA, "home")
    (call,) = w["slack"].calls_to("views.publish")
    assert call["user_id"] == ANA
    view = w["slack"].home_view(ANA)
    shown = json.dumps(view["blocks"])
    assert "how many vacation days do we get?" in shown and "Answered" in shown
    assert "salary review" not in shown
    assert "Your recent questions" in shown


def test_a_person_who_cannot_be_resolved_gets_a_home_tab_that_says_so(world):
    w = world
    opened(w, "UGHOST", "home")
    shown = json.dumps(w["slack"].home_view("UGHOST")["blocks"])
    assert "company directory" in shown and "Your recent questions" not in shown


def test_the_messages_tab_suggests_helpful_questions_of_the_person_and_never_another_persons_dm(world):
    w = world
    ben_dm = dm(w, BEN, "how do I submit expenses for the salary review?")
    ana_dm = dm(w, ANA, "how many vacation days do we get?")
    answers = Answers(w["container"].store)
    for message, voter in ((ben_dm, BEN), (ana_dm, ANA)):
        answers.vote(answers.get(answer_id_of(message)), voter, "helpful")
    opened(w, ANA, "messages")
    (call,) = w["slack"].calls_to("assistant.threads.setSuggestedPrompts")
    assert call["channel_id"] == f"D{ANA}" and "thread_ts" not in call      # the agent view: no thread_ts
    prompts = call["prompts"] if isinstance(call["prompts"], list) else json.loads(call["prompts"])
    assert [p["message"] for p in prompts] == ["how many vacation days do we get?"]
    assert "salary" not in json.dumps(call)


def test_the_deployments_prompts_are_used_when_configured(world):
    w = world
    w["build"]({"assistant": {"prompts": [{"title": "On call", "message": "Who is on call for billing?"}]}})
    opened(w, BEN, "messages")
    (call,) = w["slack"].calls_to("assistant.threads.setSuggestedPrompts")
    prompts = call["prompts"] if isinstance(call["prompts"], list) else json.loads(call["prompts"])
    assert prompts == [{"title": "On call", "message": "Who is on call for billing?"}]


# -- proposals on the Home tab: Approve / Reject there, and open tabs kept current -------------------

def _with_actions(w, hook) -> None:
    import yaml

    from tests.actions_example import catalogue
    w["build"]({"actions": yaml.safe_load(catalogue(hook.url, secret_env="SERVICE_HOOK_SECRET"))["actions"]})


def _propose(w, env: str = "staging", channel: str = "COPS") -> tuple[str, str]:
    """Ben asks for a restart, as the question handler proposes it and posts its message: (id, message ts)."""
    from dataclasses import replace

    from bot.decisions.blocks import proposal_message

    c = w["container"]
    ben = replace(c.identity.by_email("ben@corp.example"), slack_user_id=BEN)
    proposal = c.proposals.propose("restart_service", {"service": "billing", "env": env}, ben, channel=channel,
                                   thread_ts="1.1", correlation_id="c1").proposal
    ts = c.gateway.post(channel, proposal_message(proposal, c.proposals.catalogue), thread_ts="1.1")
    c.proposals.store.set_message(proposal.id, ts)
    return proposal.id, ts


def _home_button(w, user: str, action_id: str, proposal_id: str) -> dict:
    for block in w["slack"].home_view(user)["blocks"]:
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id and element.get("value") == proposal_id:
                return {**element, "block_id": block["block_id"]}
    raise AssertionError(f"no {action_id} for {proposal_id} on {user}'s Home tab")


def _click_home(w, user: str, button: dict, view_of: str | None = None) -> None:
    from standins.fake_slack import home_block_actions_body

    view = w["slack"].home_view(view_of or user)
    body = home_block_actions_body(user, view, {**button, "action_ts": f"{time.time():.6f}"})
    post(w, body, "application/x-www-form-urlencoded")


def _publishes(w, user: str) -> list[dict]:
    return [p for p in w["slack"].calls_to("views.publish") if p.get("user_id") == user]


def _shown(w, user: str) -> str:
    return json.dumps(w["slack"].home_view(user)["blocks"], ensure_ascii=False)


@pytest.fixture
def hook():
    from standins.fake_webhook import FakeWebhook

    server = FakeWebhook().start()
    yield server
    server.stop()


def test_an_approver_approves_from_the_home_tab_once_and_sees_the_outcome_there(world, hook):
    w = world
    _with_actions(w, hook)
    proposal_id, ts = _propose(w)
    opened(w, ANA, "home")
    shown = _shown(w, ANA)
    assert "Waiting for your approval" in shown and "*env*: `staging`" in shown
    approve = _home_button(w, ANA, "proposal_approve", proposal_id)
    w["slack"].reset()
    _click_home(w, ANA, approve)
    _click_home(w, ANA, approve)                          # a double click
    assert [k for k, _ in w["queued"]] == ["decision", "decision"]
    assert w["queued"][0][1]["home"] is True and w["queued"][0][1]["channel"] is None
    run_queued(w)
    assert len(hook.requests) == 1                        # executed once
    proposal = w["container"].proposals.store.get_proposal(proposal_id)
    assert proposal.state == "succeeded" and proposal.decided_by_email == "ana@corp.example"
    kinds = [e["kind"] for e in w["container"].store.events(proposal_id)]
    assert kinds.count("approved") == 1 and kinds.count("executing") == 1
    # the proposal's message in the channel is updated as for a click there, the result posted
    assert any(p.get("ts") == ts and "done" in text_of(p) for p in w["slack"].calls_to("chat.update"))
    assert any("succeeded" in text_of(p) for p in w["slack"].calls_to("chat.postMessage"))
    assert w["slack"].calls_to("chat.postEphemeral") == []          # nothing to a channel she did not click in
    # her Home tab, republished: the outcome first, the proposal no longer waiting
    shown = _shown(w, ANA)
    assert "*restart_service*: :white_check_mark: Approved by <@UANA> — done" in shown
    assert "proposal_approve" not in shown and "already" not in shown


def test_a_person_who_may_not_approve_is_told_on_their_home_tab_and_nothing_runs(world, hook):
    w = world
    _with_actions(w, hook)
    proposal_id, _ts = _propose(w)
    opened(w, ANA, "home")
    opened(w, HR, "home")
    assert "proposal_approve" not in _shown(w, HR)                  # not hers to approve: no buttons
    w["slack"].reset()
    _click_home(w, HR, _home_button(w, ANA, "proposal_approve", proposal_id), view_of=HR)   # a forged click
    run_queued(w)
    assert hook.requests == []
    assert w["container"].proposals.store.get_proposal(proposal_id).state == "proposed"
    assert "click_refused" in [e["kind"] for e in w["container"].store.events(proposal_id)]
    (published,) = _publishes(w, HR)
    assert ":no_entry: You can't approve this: approvers are" in _shown(w, HR)
    assert w["slack"].calls_to("chat.update") == []                  # the proposal's message is untouched


def test_reject_with_a_reason_from_the_home_tab(world, hook):
    from bot.decisions.blocks import REASON_BLOCK, REASON_INPUT

    w = world
    _with_actions(w, hook)
    proposal_id, ts = _propose(w)
    opened(w, ANA, "home")
    w["slack"].reset()
    _click_home(w, ANA, _home_button(w, ANA, "proposal_reject", proposal_id))
    assert w["queued"] == []                              # the form opens at once; nothing decided yet
    (opened_view,) = w["slack"].calls_to("views.open")
    modal = opened_view["view"] if isinstance(opened_view["view"], dict) else json.loads(opened_view["view"])
    assert json.loads(modal["private_metadata"]) == {"proposal_id": proposal_id, "channel": None,
                                                     "message_ts": None, "home": True}
    values = {REASON_BLOCK: {REASON_INPUT: {"type": "plain_text_input", "value": "change freeze until Monday"}}}
    post(w, view_submission_body(ANA, modal, values), "application/x-www-form-urlencoded")
    run_queued(w)
    proposal = w["container"].proposals.store.get_proposal(proposal_id)
    assert proposal.state == "rejected" and proposal.reason == "change freeze until Monday"
    assert hook.requests == []
    assert any(p.get("ts") == ts and "change freeze until Monday" in text_of(p)
               for p in w["slack"].calls_to("chat.update"))
    shown = _shown(w, ANA)
    assert "Rejected by <@UANA>: change freeze until Monday" in shown and "proposal_reject" not in shown


def test_open_home_tabs_of_approvers_are_republished_once_per_burst_and_only_theirs(world, hook):
    w = world
    _with_actions(w, hook)
    opened(w, ANA, "home")
    opened(w, HR, "home")
    assert "Waiting for your approval" not in _shown(w, ANA)
    w["slack"].reset()
    made = [_propose(w, env=env)[0] for env in ("staging", "production", "staging")]   # a burst of three
    assert [k for k, _ in w["queued"]] == ["home"] * 3                               # one fan-out per change
    run_queued(w)
    assert len(_publishes(w, ANA)) == 1                   # coalesced: one views.publish for the burst
    assert _publishes(w, HR) == []                        # she may approve none of them
    shown = _shown(w, ANA)
    assert all(f'"proposal:{pid}"' in shown for pid in made)

    # a proposal that expires: her tab loses it (after the coalescing window)
    time.sleep(2.1)
    store = w["container"].proposals.store
    from datetime import datetime, timedelta, timezone
    old = store.create_proposal(action="restart_service", arguments={"service": "search", "env": "staging"},
                                requested_by_slack=BEN, requested_by_email="ben@corp.example",
                                approvers={"groups": list(w["container"].catalogue.policy(
                                    "restart_service", {}).groups)},
                                allow_self_approval=False, channel="COPS", thread_ts="1.1",
                                expires_at=datetime.now(timezone.utc) - timedelta(seconds=1), correlation_id="c2")
    w["slack"].reset()
    assert [p.id for p in w["container"].proposals.expire_overdue()] == [old.id]
    run_queued(w)
    assert len(_publishes(w, ANA)) == 1 and f'"proposal:{old.id}"' not in _shown(w, ANA)


def test_openings_are_kept_for_a_while_and_only_people_who_opened_lately_are_refreshed(world):
    from bot.home.refresh import Openings

    state = world["container"].state
    now = [1_000_000.0]
    openings = Openings(state, recent_s=60, clock=lambda: now[0])
    assert not openings.any()
    openings.record(ANA)
    now[0] += 30
    openings.record(BEN)
    assert openings.recent() == [BEN, ANA] and openings.any()
    now[0] += 45                                          # Ana's opening is 75 s old, Ben's 45 s
    assert openings.recent() == [BEN]
    assert 0 < world["container"].redis.ttl(keys.home_opened(state.prefix)) <= 60
