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
from standins.fake_slack import event_body
from tests.handlers.test_service import ANA, BEN, ONCALL, answer_id_of, post, run_queued
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
    w["slack"].reset()
    send(w, {"type": "message", "channel": f"D{user}", "channel_type": "im", "user": user, "text": text,
             "ts": f"{time.time():.6f}"})
    run_queued(w)
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
