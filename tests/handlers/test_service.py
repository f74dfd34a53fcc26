"""Running it as a service, through signed Slack payloads: feedback, escalations, the answer
cache, budgets, the rate limit, model routing, greetings and per-channel settings.

Like test_scenarios: the composition root's web app (signatures checked) hands tasks to a
recorder, the test runs each handler in-process; the real openai SDK talks to the loopback
model, which counts its calls; Redis is real; the audit store is in-memory SQLite.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis
import yaml
from fastapi.testclient import TestClient

from bot.feedback import blocks as fb
from chatops.errors import ConfigError
from chatops.settings import Settings
from chatops_app.container import Container
from connectors.sources.registry import filesystem_spec, open_source
from tests.actions_example import catalogue
from tests.integration.harness import text_of
from standins.fake_openai import FakeOpenAI
from standins.fake_slack import (FakeSlack, block_actions_body, event_body, feedback_buttons_action, sign,
                                 view_submission_body)
from usecases.ingest import ingest

pytestmark = pytest.mark.redis

SECRET = "service-signing-secret"
ANA, BEN, HR, BOT, ONCALL = "UANA", "UBEN", "UHR", "UBOT", "UONCALL"
SUPPORT_GROUP = "SSUPPORT1"
CORPUS = {
    ".acl.yml": '- match: "handbook/**"\n  public: true\n- match: "runbooks/**"\n  groups: [sre]\n',
    "handbook/vacation.md": "# Vacation policy\n\nEveryone gets 27 days of paid vacation per calendar year.\n",
    "handbook/expenses.md": "# Expenses\n\nSubmit receipts within 30 days through the expenses portal.\n",
    "runbooks/vacation-oncall.md": "# On-call during vacation\n\nSRE on-call swaps are arranged in the rota "
                                   "tool two weeks before your vacation days.\n",
}
DIRECTORY = {"users": [{"email": "ana@corp.example", "groups": ["sre"]}, {"email": "ben@corp.example", "groups": []},
                       {"email": "hr@corp.example", "groups": ["hr"]},
                       {"email": "oncall@corp.example", "groups": []}]}
CONFIG = {
    "models": {"gpt-big": {"input_per_1k": 0.01, "output_per_1k": 0.03},
               "gpt-small": {"input_per_1k": 0.001, "output_per_1k": 0.002}},
    "channels": {
        "default": {"escalation": {"users": [ONCALL]}},
        "#support": {"escalation": {"usergroup": SUPPORT_GROUP}},
        "COFF": {"enabled": False},
        "CQUIET": {"reply": "ephemeral", "respond": "mentions"},
    },
    "budgets": {"person": {"tokens": 1_000_000, "period": "day"}, "questions_per_minute": 30},
    "actions": yaml.safe_load(catalogue("http://127.0.0.1:9/hook", secret_env="SERVICE_HOOK_SECRET"))["actions"],
}


def model(request: dict) -> str:
    prompt = request["messages"][-1]["content"]
    titles = [part.split('"', 1)[0] for part in prompt.split('title="')[1:]]
    return " ".join(f"From {t} [{i}]." for i, t in enumerate(titles, 1)) or "Nothing."


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setenv("SERVICE_HOOK_SECRET", "service-hook-secret")     # the catalogue's webhook secret
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    for rel, text in CORPUS.items():
        (tmp_path / "corpus" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "corpus" / rel).write_text(text)
    (tmp_path / "directory.yml").write_text(yaml.safe_dump(DIRECTORY))
    users = {u: {"id": u, "profile": {"email": f"{n}@corp.example"}}
             for u, n in ((ANA, "ana"), (BEN, "ben"), (HR, "hr"), (ONCALL, "oncall"))}
    slack = FakeSlack(users=users | {BOT: {"id": BOT, "is_bot": True}},
                      channels={"COPS": [ANA, BEN, BOT], "CSUP": [ANA, BEN, ONCALL, BOT], "COFF": [ANA, BOT],
                                "CQUIET": [ANA, BEN, BOT], "CSRE": [ANA, BOT]},
                      channel_names={"CSUP": "support"}, usergroups={SUPPORT_GROUP: [ONCALL]},
                      bot_user_id=BOT).start()
    llm = FakeOpenAI(reply=model).start()
    prefix = f"chatops-service-{uuid.uuid4().hex[:8]}"

    def build(config: dict | None = None, **env):
        path = tmp_path / f"config-{uuid.uuid4().hex[:6]}.yml"
        path.write_text(yaml.safe_dump({**CONFIG, **(config or {})}))
        settings = Settings.load(**{
            "CHATOPS_DATA_DIR": str(tmp_path / "data"), "QDRANT_PATH": str(tmp_path / "index"), "QDRANT_URL": None,
            "DATABASE_URL": "sqlite:///:memory:", "CHATOPS_DIRECTORY_FILE": str(tmp_path / "directory.yml"),
            "CHATOPS_IDENTITY_PROVIDER": "directory", "CHATOPS_CONFIG": str(path),
            "SLACK_BOT_TOKEN": "xoxb-service", "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack.url,
            "OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "sk-service-key-000", "CHATOPS_KEY_PREFIX": prefix,
            "CHATOPS_LLM_MODEL": "gpt-big", "CHATOPS_MIN_SIMILARITY": "0.05", "CHATOPS_NO_EVIDENCE_RULE": "floor", "CHATOPS_SLACK_CHANNEL_PACE": "0",
            **env})
        old = w.get("container")
        if old is not None:
            w["web"].close()
            old.close()
        container = Container(settings)
        queued: list[tuple[str, dict]] = []
        container._built["dispatch"] = lambda kind, payload: queued.append((kind, payload))
        w.update(container=container, queued=queued, web=TestClient(container.web_app()))

    w = {"slack": slack, "llm": llm, "build": build, "root": tmp_path}
    build()
    ingest(open_source(filesystem_spec(tmp_path / "corpus"), w["container"].settings.group_names),
           w["container"].index, w["container"].embedder)
    yield w
    w["web"].close()
    w["container"].close()
    slack.stop()
    llm.stop()
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def post(w, body: bytes, content_type: str) -> None:
    resp = w["web"].post("/slack/events", content=body, headers={"Content-Type": content_type, **sign(body, SECRET)})
    assert resp.status_code == 200, resp.text


def run_queued(w) -> list[str]:
    kinds = []
    while w["queued"]:
        kind, payload = w["queued"].pop(0)
        w["container"].handler(kind).handle(payload)
        kinds.append(kind)
    return kinds


def mention(w, channel: str, user: str, text: str, *, thread_ts: str | None = None) -> dict:
    event = {"type": "app_mention", "channel": channel, "channel_type": "channel", "user": user,
             "text": f"<@{BOT}> {text}", "ts": f"{time.time():.6f}"}
    if thread_ts:
        event["thread_ts"] = thread_ts
    post(w, event_body(event, f"Ev{uuid.uuid4().hex[:10]}"), "application/json")
    return event


def ask(w, channel: str, user: str, text: str) -> tuple[dict, dict]:
    """A mention, run; the event and the answer as shown in its thread (streamed, or posted)."""
    w["slack"].reset()
    event = mention(w, channel, user, text)
    run_queued(w)
    return event, w["slack"].wait_for_shown(lambda p: any(
        b.get("block_id") == fb.FEEDBACK_BLOCK_ID for b in p.get("blocks") or []))


def body_of(message: dict) -> str:
    """An answer's own text: what was streamed, or the first section of the posted message."""
    if message.get("streamed"):
        return message["text"]
    return next(b["text"]["text"] for b in message["blocks"] if b["type"] == "section")


def buttons(message: dict) -> dict[str, dict]:
    return {e["action_id"]: e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]}


def feedback_block(message: dict) -> dict:
    """The context_actions block with Slack's 👍 / 👎 element."""
    (block,) = [b for b in message["blocks"] if b["type"] == "context_actions"]
    return block


def answer_id_of(message: dict) -> str:
    return buttons(message)[fb.ESCALATE_ACTION]["value"]


def vote(w, user: str, channel: str, message: dict, *, positive: bool, posted: dict | None = None) -> None:
    """A click on 👍 (``positive``) or 👎 of the answer ``message``, as Slack sends it."""
    click(w, user, channel, feedback_buttons_action(feedback_block(message), positive=positive), posted)


def click(w, user: str, channel: str, button: dict, message: dict | None = None) -> None:
    body = block_actions_body(user, channel, {**button, "action_ts": f"{time.time():.6f}"}, message)
    post(w, body, "application/x-www-form-urlencoded")


def question_row(w, answer_id: str) -> dict:
    from sqlalchemy import select

    from chatops.store.models import Question

    with w["container"].store._read() as conn:
        return dict(conn.execute(select(Question.__table__).where(Question.answer_id == answer_id)).mappings().one())


# -- 1. feedback ---------------------------------------------------------------------------------

def test_feedback_buttons_record_votes_tied_to_the_answer(world):
    w = world
    event, answer = ask(w, "COPS", ANA, "how many vacation days do we get?")
    element = feedback_block(answer)["elements"][0]
    assert element["type"] == "feedback_buttons" and element["action_id"] == fb.FEEDBACK_BUTTONS_ACTION
    assert set(buttons(answer)) == {fb.ESCALATE_ACTION}             # the old 👍 / 👎 buttons are gone
    answer_id = answer_id_of(answer)
    # the buttons carry the answer id only (and which of the two they are)
    assert element["positive_button"]["value"] == f"helpful:{answer_id}"
    assert element["negative_button"]["value"] == f"not_helpful:{answer_id}"
    row = question_row(w, answer_id)
    assert row["mode"] == "llm" and row["route"] == "gpt-big" and row["question"].startswith("how many vacation")
    message = {"ts": answer["ts"], "thread_ts": event["ts"], "blocks": answer["blocks"], "text": answer["text"]}

    vote(w, BEN, "COPS", answer, positive=True, posted=message)
    assert run_queued(w) == ["feedback"]
    vote(w, BEN, "COPS", answer, positive=False, posted=message)    # changed his mind
    view = w["slack"].wait_for("views.open")["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["callback_id"] == fb.FEEDBACK_MODAL and answer_id in view["private_metadata"]
    run_queued(w)
    values = {fb.WHAT_BLOCK: {fb.WHAT_INPUT: {"type": "checkboxes", "selected_options": [{"value": "outdated"}]}},
              fb.DETAIL_BLOCK: {fb.DETAIL_INPUT: {"type": "plain_text_input", "value": "It is 30 days since June"}}}
    post(w, view_submission_body(BEN, view, values), "application/x-www-form-urlencoded")
    run_queued(w)
    vote(w, ANA, "COPS", answer, positive=True, posted=message)
    run_queued(w)

    votes = {v["voter"]: v for v in w["container"].answers.votes(answer_id)}
    assert set(votes) == {ANA, BEN}
    assert votes[BEN]["vote"] == "not_helpful" and votes[BEN]["reason"] == "It is out of date; It is 30 days since June"
    assert votes[ANA]["vote"] == "helpful" and votes[ANA]["in_audience"] and votes[BEN]["in_audience"]


def test_the_feedback_element_toggles_and_the_last_click_is_the_vote(world):
    """Slack sends each click on the toggling 👍 / 👎 element and never an "unselected":
    👍, 👎, 👍 by one person is one vote, 👍; only the 👎 opened the form."""
    w = world
    event, answer = ask(w, "COPS", ANA, "how many vacation days do we get?")
    answer_id = answer_id_of(answer)
    message = {"ts": answer["ts"], "thread_ts": event["ts"], "blocks": answer["blocks"], "text": answer["text"]}
    for positive in (True, False, True):
        vote(w, BEN, "COPS", answer, positive=positive, posted=message)
        assert run_queued(w) == ["feedback"]
    (stored,) = w["container"].answers.votes(answer_id)
    assert stored["voter"] == BEN and stored["vote"] == "helpful" and stored["in_audience"]
    w["slack"].wait_for("views.open")                # the form, opened by the 👎 alone
    assert len(w["slack"].calls_to("views.open")) == 1
    # the element shows the choice itself: no "thanks" message for each toggle
    assert not [p for p in w["slack"].calls_to("chat.postEphemeral") if "glad it helped" in json.dumps(p)]
    # and back to 👎 (the form is skipped): the last click still wins
    vote(w, BEN, "COPS", answer, positive=False, posted=message)
    run_queued(w)
    (stored,) = w["container"].answers.votes(answer_id)
    assert stored["vote"] == "not_helpful" and stored["reason"] is None


def test_the_old_feedback_buttons_in_messages_posted_before_still_count(world):
    """Answers posted before the feedback element carry 👍 / 👎 buttons of their own; a click
    on one is still a vote (and 👎 still opens the form)."""
    w = world
    event, answer = ask(w, "COPS", ANA, "how many vacation days do we get?")
    answer_id = answer_id_of(answer)
    old_buttons = [{"type": "button", "action_id": action, "value": answer_id, "block_id": "chatops_feedback",
                    "text": {"type": "plain_text", "text": label, "emoji": True}}
                   for action, label in ((fb.HELPFUL_ACTION, "👍 Helpful"), (fb.NOT_HELPFUL_ACTION, "👎 Not helpful"))]
    old = {"ts": answer["ts"], "thread_ts": event["ts"], "text": answer["text"],
           "blocks": [{"type": "actions", "block_id": "chatops_feedback", "elements": old_buttons}]}
    click(w, BEN, "COPS", old_buttons[1], old)
    run_queued(w)
    view = w["slack"].wait_for("views.open")["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["callback_id"] == fb.FEEDBACK_MODAL and answer_id in view["private_metadata"]
    assert w["container"].answers.votes(answer_id)[0]["vote"] == "not_helpful"
    click(w, BEN, "COPS", old_buttons[0], old)
    run_queued(w)
    (stored,) = w["container"].answers.votes(answer_id)
    assert stored["voter"] == BEN and stored["vote"] == "helpful"


def test_a_click_from_outside_the_audience_counts_the_vote_and_keeps_nothing_else(world):
    w = world
    event, answer = ask(w, "COPS", ANA, "how do I submit expenses?")
    answer_id = answer_id_of(answer)
    vote(w, HR, "COPS", answer, positive=False)               # HR joined later: not in the audience
    run_queued(w)
    view = w["slack"].wait_for("views.open")["view"]
    view = json.loads(view) if isinstance(view, str) else view
    post(w, view_submission_body(HR, view, {fb.DETAIL_BLOCK: {fb.DETAIL_INPUT: {"type": "plain_text_input",
                                                                                "value": "secret reason"}}}),
         "application/x-www-form-urlencoded")
    run_queued(w)
    (stored,) = w["container"].answers.votes(answer_id)
    assert stored["voter"] == HR and stored["vote"] == "not_helpful"
    assert stored["in_audience"] is False and stored["reason"] is None
    # a made-up answer id records nothing, and the clicker is told
    made_up = {**feedback_buttons_action(feedback_block(answer), positive=True), "value": "helpful:" + "0" * 16}
    click(w, HR, "COPS", made_up)
    run_queued(w)
    assert w["container"].answers.votes("0" * 16) == []
    w["slack"].wait_for("chat.postEphemeral", lambda p: p.get("user") == HR and "not counted" in p["text"])
    # a value that names no vote is dropped at the door
    click(w, HR, "COPS", {**made_up, "value": "approve:" + answer_id})
    assert w["queued"] == []


def test_needs_a_human_calls_the_channels_escalation_group_and_resolved_closes_it(world):
    w = world
    event, answer = ask(w, "CSUP", BEN, "how do I submit expenses?")
    ids = buttons(answer)
    answer_id = ids[fb.ESCALATE_ACTION]["value"]
    message = {"ts": answer["ts"], "thread_ts": event["ts"], "blocks": answer["blocks"], "text": answer["text"]}
    click(w, BEN, "CSUP", ids[fb.ESCALATE_ACTION], message)
    run_queued(w)
    call = w["slack"].wait_for("chat.postMessage", lambda p: f"<!subteam^{SUPPORT_GROUP}>" in (p.get("text") or ""))
    assert call["thread_ts"] == event["ts"]
    row = question_row(w, answer_id)
    assert row["escalated_at"] is not None and row["escalated_by"] == BEN and row["resolved_at"] is None
    click(w, BEN, "CSUP", ids[fb.ESCALATE_ACTION], message)      # a second click calls nobody again
    run_queued(w)
    assert len([p for p in w["slack"].calls_to("chat.postMessage") if SUPPORT_GROUP in (p.get("text") or "")]) == 1

    resolved = buttons(call)[fb.RESOLVED_ACTION]
    escalation = {"ts": question_row(w, answer_id)["escalation_ts"], "thread_ts": event["ts"], "blocks": call["blocks"]}
    click(w, ANA, "CSUP", resolved, escalation)                 # neither the asker nor support
    run_queued(w)
    w["slack"].wait_for("chat.postEphemeral", lambda p: p.get("user") == ANA and "Only the person" in p["text"])
    assert question_row(w, answer_id)["resolved_at"] is None
    click(w, ONCALL, "CSUP", resolved, escalation)              # a member of the support user group
    run_queued(w)
    done = w["slack"].wait_for("chat.update", lambda p: p.get("ts") == escalation["ts"])
    assert "Resolved by" in done["text"]
    assert question_row(w, answer_id)["resolved_by"] == ONCALL


# -- 2. what an answer records -------------------------------------------------------------------

def test_an_answer_records_route_stages_tokens_and_cost_from_the_price_table(world):
    w = world
    _, answer = ask(w, "COPS", ANA, "how many vacation days do we get?")
    row = question_row(w, answer_id_of(answer))
    request = w["llm"].requests[-1]
    assert request["model"] == "gpt-big"
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
    assert row["cost"] == pytest.approx((row["prompt_tokens"] * 0.01 + row["completion_tokens"] * 0.03) / 1000)
    assert set(row["stages"]) >= {"queue_wait", "identity", "audience", "retrieval", "generation", "slack_post"}
    assert row["citations_kept"] >= 1 and row["citations_dropped"] == 0 and row["sources_count"] >= 1
    assert 0 < row["top_similarity"] <= 1 and row["retrieved"][0]["doc_id"]
    assert sorted(row["audience_members"]) == sorted([ANA, BEN, BOT])


# -- 4. cache ----------------------------------------------------------------------------------

def test_the_cache_never_crosses_permissions_and_serves_the_same_audience_without_the_model(world):
    w = world
    question = "What do SRE people do about on-call during vacation?"
    calls = len(w["llm"].requests)
    first_event, first = ask(w, "CSRE", ANA, question)                     # ANA + bot: may see the runbook
    assert len(w["llm"].requests) == calls + 1
    assert "vacation-oncall" in text_of(first)
    _, other = ask(w, "COPS", BEN, question)                     # BEN's audience: another fingerprint
    assert len(w["llm"].requests) == calls + 2
    assert "vacation-oncall" not in text_of(other)
    _, again = ask(w, "CSRE", ANA, "what do SRE people do about on-call during vacation")   # same, normalised
    assert len(w["llm"].requests) == calls + 2                   # no model call
    assert body_of(again) == body_of(first)
    assert question_row(w, answer_id_of(again))["mode"] == "cached"
    # a thread follow-up (the thread has an exchange) never uses the cache
    mention(w, "CSRE", ANA, question, thread_ts=first_event["ts"])
    run_queued(w)
    assert len(w["llm"].requests) > calls + 2


def test_a_cached_answer_whose_document_changed_or_became_hidden_is_dropped(world):
    w = world
    question = "how many days of paid vacation per year?"
    _, first = ask(w, "COPS", ANA, question)
    calls = len(w["llm"].requests)
    ask(w, "COPS", ANA, question)
    assert len(w["llm"].requests) == calls                       # cached
    (w["root"] / "corpus/handbook/vacation.md").write_text("# Vacation policy\n\nEveryone gets 30 days now.\n")
    ingest(open_source(filesystem_spec(w["root"] / "corpus"), w["container"].settings.group_names),
           w["container"].index, w["container"].embedder)
    ask(w, "COPS", ANA, question)
    assert len(w["llm"].requests) == calls + 1                   # the document changed: asked again
    ask(w, "COPS", ANA, question)
    assert len(w["llm"].requests) == calls + 1                   # and cached again
    index = w["container"].index
    src = [r["source"] for r in question_row(w, answer_id_of(first))["retrieved"]
           if r["doc_id"] == "handbook/vacation.md"][0]
    from chatops.access import Acl

    index.update_documents(src, ["handbook/vacation.md"], Acl.of(groups=["hr"]).to_payload())
    _, hidden = ask(w, "COPS", ANA, question)                    # no longer visible to this audience
    assert "vacation.md" not in text_of(hidden)


# -- 4. budgets, rate limit, routing, greetings ----------------------------------------------------

def test_over_budget_the_answer_is_extractive_with_no_model_call_and_a_note_saying_when_it_resets(world):
    w = world
    w["build"]({"budgets": {"person": {"tokens": 300, "period": "day"}}}, CHATOPS_CACHE_TTL="0")
    calls = len(w["llm"].requests)
    ask(w, "COPS", BEN, "how do I submit expenses?")             # ~100+ tokens
    ask(w, "COPS", BEN, "how many vacation days do we get?")
    ask(w, "COPS", BEN, "where is the expenses portal?")
    used = len(w["llm"].requests) - calls
    assert 1 <= used < 3                                          # the 300-token day budget ran out (~180 a question)
    note = w["slack"].wait_for("chat.postEphemeral", lambda p: p.get("user") == BEN and "resets at" in p["text"])
    assert "budget" in note["text"]
    _, answer = ask(w, "COPS", BEN, "how do I submit expenses?")
    assert len(w["llm"].requests) - calls == used and "Passages quoted" in text_of(answer)
    _, others = ask(w, "COPS", ANA, "how do I submit expenses?")  # ANA's own budget is untouched
    assert len(w["llm"].requests) - calls == used + 1


def test_a_channel_budget_counts_answers_given_only_to_their_asker(world):
    """In a ``reply: ephemeral`` channel each answer goes to its asker alone; the channel's budget
    still counts them: one model answer spends the 1-token budget, the next ones quote."""
    w = world
    w["build"]({"budgets": {"channel": {"tokens": 1, "period": "day"}}}, CHATOPS_CACHE_TTL="0")
    calls = len(w["llm"].requests)
    for user, text in ((ANA, "how do I submit expenses?"), (BEN, "how many vacation days do we get?"),
                       (ANA, "where is the expenses portal?")):
        mention(w, "CQUIET", user, text)
        run_queued(w)
    assert len(w["llm"].requests) - calls == 1
    note = w["slack"].wait_for("chat.postEphemeral", lambda p: "resets at" in p["text"])
    assert "This channel's language-model budget" in note["text"]


def test_over_budget_a_thread_follow_up_makes_no_model_call_not_even_the_rewrite(world):
    w = world
    w["build"]({"budgets": {"person": {"tokens": 1, "period": "day"}}}, CHATOPS_CACHE_TTL="0")
    first, _ = ask(w, "COPS", BEN, "how do I submit expenses?")   # spends BEN's budget
    calls = len(w["llm"].requests)
    for text in ("and within how many days?", "and where do I find the portal?", "and for travel?"):
        event = {"type": "message", "channel": "COPS", "channel_type": "channel", "user": BEN, "text": text,
                 "ts": f"{time.time():.6f}", "thread_ts": first["ts"]}
        post(w, event_body(event, f"Ev{uuid.uuid4().hex[:10]}"), "application/json")
        assert run_queued(w) == ["question"]
    assert len(w["llm"].requests) == calls
    assert w["slack"].wait_for("chat.postEphemeral", lambda p: p.get("user") == BEN and "resets at" in p["text"])


def test_a_person_asking_too_fast_is_told_to_wait_and_nothing_is_queued(world):
    w = world
    w["build"]({"budgets": {"questions_per_minute": 4}})
    for i in range(4):
        mention(w, "COPS", HR, f"question number {i}?")
    assert len(w["queued"]) == 4
    w["queued"].clear()
    mention(w, "COPS", HR, "and a fifth?")
    mention(w, "COPS", HR, "and a sixth?")
    assert w["queued"] == []
    notes = [p for p in w["slack"].calls_to("chat.postEphemeral") if p.get("user") == HR]
    assert len(notes) == 1 and "wait" in notes[0]["text"]
    mention(w, "COPS", BEN, "someone else asks")
    assert len(w["queued"]) == 1


def test_one_confident_source_goes_to_the_small_model_and_greetings_to_none(world):
    w = world
    w["build"](CHATOPS_LLM_MODEL_SMALL="gpt-small", CHATOPS_ROUTE_MIN_SIMILARITY="0.3",
               CHATOPS_ROUTE_MARGIN="0.05", CHATOPS_CACHE_TTL="0")
    _, answer = ask(w, "COPS", ANA, "Submit receipts within 30 days through the expenses portal")
    assert w["llm"].requests[-1]["model"] == "gpt-small"
    row = question_row(w, answer_id_of(answer))
    assert row["route"] == "gpt-small"
    assert row["cost"] == pytest.approx((row["prompt_tokens"] * 0.001 + row["completion_tokens"] * 0.002) / 1000)
    calls = len(w["llm"].requests)
    w["slack"].reset()
    mention(w, "COPS", ANA, "thanks!")
    run_queued(w)
    reply = w["slack"].wait_for_shown()
    assert "welcome" in reply["text"] and len(w["llm"].requests) == calls
    assert not buttons(reply)


# -- 5. per-channel settings ------------------------------------------------------------------------

def test_a_disabled_channel_gets_nothing_and_an_ephemeral_channel_answers_only_the_asker(world):
    w = world
    w["slack"].reset()
    mention(w, "COFF", ANA, "how many vacation days do we get?")
    run_queued(w)
    assert w["slack"].calls_to("chat.postMessage") == [] and w["slack"].calls_to("chat.update") == []
    mention(w, "CQUIET", BEN, "how many vacation days do we get?")
    run_queued(w)
    assert w["slack"].calls_to("chat.postMessage") == []
    answer = w["slack"].wait_for("chat.postEphemeral", lambda p: p.get("user") == BEN)
    assert "vacation" in text_of(answer).lower()


def test_a_misnamed_source_or_escalation_group_stops_the_start(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({"channels": {"#support": {"sources": ["support-libary"]}}}))
    with pytest.raises(ConfigError, match="no source named 'support-libary'"):
        Settings.load(CHATOPS_CONFIG=str(bad))
    bad.write_text(yaml.safe_dump({"channels": {"default": {"escalation": {"usergroup": "@support"}}}}))
    with pytest.raises(ConfigError, match="not a Slack user group id"):
        Settings.load(CHATOPS_CONFIG=str(bad))


# -- 3. traces ------------------------------------------------------------------------------------

def test_one_trace_per_question_across_web_and_worker_with_genai_spans_and_no_content(world, caplog):
    """The web span, the worker's task span, the stages and the model call share one trace; the model
    call is a GenAI client span with the semantic conventions' names and no message content; the log
    correlation id is the trace id."""
    import logging

    from opentelemetry import trace

    from chatops import tracing
    from standins.fake_otlp import FakeCollector

    w = world
    with FakeCollector() as collector:
        if tracing._state["provider"] is not None:
            pytest.skip("another test of this process already exports traces elsewhere")
        w["build"](OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint, CHATOPS_CACHE_TTL="0")
        provider = tracing._state["provider"]
        try:
            assert trace.get_tracer_provider() is provider
            from chatops.logs import _ContextFilter

            caplog.handler.addFilter(_ContextFilter())     # what logs.setup puts on every handler
            with caplog.at_level(logging.INFO):
                w["slack"].reset()
                mention(w, "COPS", ANA, "how many vacation days do we get?")
                (kind, payload), = w["queued"]
                w["queued"].clear()
                from workers.celery_app import register_tasks   # the worker's own runner: lease, trace, task

                app = w["container"].celery
                register_tasks(app, w["container"].runtime())
                app.tasks["chatops.question"].apply(kwargs={"payload": payload})
            provider.force_flush()
            spans = [s for s in collector.spans if s["trace_id"] == payload["cid"]]
            names = {s["name"] for s in spans}
            assert {"slack mention", "chatops question", "chatops identity", "chatops audience", "chatops retrieval",
                    "chatops generation", "chat gpt-big", "chatops slack_post"} <= names, names
            web = next(s for s in spans if s["name"] == "slack mention")
            task = next(s for s in spans if s["name"] == "chatops question")
            assert task["parent_id"] == web["span_id"]
            chat = next(s for s in spans if s["name"] == "chat gpt-big")
            attrs = chat["attributes"]
            assert attrs["gen_ai.operation.name"] == "chat" and attrs["gen_ai.request.model"] == "gpt-big"
            assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0
            assert not any("messages" in key for key in attrs)          # content is off by default
            assert "vacation" not in str([s["attributes"] for s in spans])
            answered = [r for r in caplog.records if r.getMessage() == "question answered"]
            assert answered and all(getattr(r, "correlation_id", None) == payload["cid"] for r in answered)
        finally:
            # this process keeps its tracer provider (OpenTelemetry sets it once): stop it exporting
            # to a collector that is about to go away, so later tests see no export errors
            provider.shutdown()


# -- 7. the scheduler's jobs --------------------------------------------------------------------------

def test_maintenance_expires_proposals_and_takes_their_buttons_off(world, monkeypatch):
    from datetime import datetime, timedelta, timezone

    from bot.maintenance.task import MAINTENANCE

    w = world
    store = w["container"].store
    proposal = store.create_proposal(
        action="restart_service", arguments={"service": "billing", "env": "staging"}, requested_by_slack=ANA,
        requested_by_email="ana@corp.example", approvers={"groups": ["sre"]}, allow_self_approval=False,
        channel="COPS", thread_ts="1700000000.000100", correlation_id=None,
        expires_at=datetime.now(timezone.utc) - timedelta(minutes=1))
    store.set_message(proposal.id, "1700000000.000200")
    w["slack"].reset()
    w["container"].handler(MAINTENANCE.kind).handle({"job": "expire_proposals"})
    assert store.get_proposal(proposal.id).state == "expired"
    update = w["slack"].wait_for("chat.update", lambda p: p.get("ts") == "1700000000.000200")
    assert "Expired" in text_of(update) and not buttons(update)
    w["container"].handler(MAINTENANCE.kind).handle({"job": "expire_proposals"})     # nothing left to do
    assert len(w["slack"].calls_to("chat.update")) == 1


def test_the_daily_report_is_posted_once_a_day_to_the_report_channel(world):
    from bot.maintenance.task import MAINTENANCE

    w = world
    w["build"](CHATOPS_REPORT_CHANNEL="CREPORT")
    ask(w, "COPS", ANA, "how many vacation days do we get?")
    mention(w, "COPS", BEN, "where is the parking garage map?")
    run_queued(w)
    w["slack"].reset()
    for _ in range(2):
        w["container"].handler(MAINTENANCE.kind).handle({"job": "daily_report"})
    (posted,) = w["slack"].calls_to("chat.postMessage")
    assert posted["channel"] == "CREPORT"
    assert "Questions:* 2" in text_of(posted) and "parking garage" in text_of(posted)


def test_cache_clean_up_drops_entries_whose_documents_changed(world):
    from bot.maintenance.task import MAINTENANCE

    w = world
    ask(w, "COPS", ANA, "how do I submit expenses?")
    ask(w, "CSRE", ANA, "how many vacation days do we get?")
    cache, r = w["container"].answer_cache, w["container"].redis
    assert cache.sweep() == (2, 0)                    # nothing changed: both kept
    keys = list(r.scan_iter(f"{cache.prefix}:answers:*"))
    unaffected = [k for k in keys if "handbook/expenses.md" not in r.get(k).decode()]
    (w["root"] / "corpus/handbook/expenses.md").write_text("# Expenses\n\nReceipts go to finance within 60 days.\n")
    ingest(open_source(filesystem_spec(w["root"] / "corpus"), w["container"].settings.group_names),
           w["container"].index, w["container"].embedder)
    w["container"].handler(MAINTENANCE.kind).handle({"job": "cache_cleanup"})
    assert sorted(r.scan_iter(f"{cache.prefix}:answers:*")) == sorted(unaffected) and len(unaffected) < 2


def test_metrics_scraped_after_answers_and_clicks_show_them(world):
    from prometheus_client.parser import text_string_to_metric_families

    w = world

    def scrape() -> dict:
        text = w["web"].get("/metrics").text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for f in text_string_to_metric_families(text) for s in f.samples}

    before = scrape()
    event, answer = ask(w, "COPS", ANA, "how many vacation days do we get?")
    vote(w, BEN, "COPS", answer, positive=True,
         posted={"ts": answer["ts"], "thread_ts": event["ts"], "blocks": answer["blocks"]})
    run_queued(w)
    after = scrape()

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("chatops_answers_total", mode="llm", route="gpt-big") == 1
    assert grew("chatops_llm_tokens_total", model="gpt-big", direction="input") > 0
    assert grew("chatops_llm_cost_total", model="gpt-big") > 0
    assert grew("chatops_feedback_total", kind="helpful") == 1
    assert grew("chatops_slack_events_total", kind="mention", outcome="queued") == 1
    assert grew("chatops_slack_ack_duration_seconds_count") >= 2          # the mention and the click
    assert grew("chatops_answer_stage_duration_seconds_count", stage="slack_post") == 1
    assert grew("chatops_answer_cache_lookups_total", outcome="miss") == 1
    assert ("chatops_queue_depth", (("queue", w["container"].settings.queue_name),)) in after


def test_needs_a_human_from_a_dm_calls_the_escalation_people_by_dm_without_the_answer(world):
    w = world
    w["slack"].reset()
    event = {"type": "message", "channel": f"D{BEN}", "channel_type": "im", "user": BEN,
             "text": "how do I submit expenses?", "ts": f"{time.time():.6f}"}
    post(w, event_body(event, f"Ev{uuid.uuid4().hex[:10]}"), "application/json")
    run_queued(w)
    answer = w["slack"].wait_for_shown(lambda p: p.get("channel") == f"D{BEN}")
    click(w, BEN, f"D{BEN}", buttons(answer)[fb.ESCALATE_ACTION], {"ts": answer["ts"], "blocks": answer["blocks"]})
    run_queued(w)
    called = w["slack"].wait_for("chat.postMessage", lambda p: p.get("channel") == f"D{ONCALL}")
    assert "how do I submit expenses?" in text_of(called) and "Receipts" not in text_of(called)
    told = w["slack"].wait_for("chat.postMessage", lambda p: p.get("channel") == f"D{BEN}" and "asked" in p["text"])
    assert f"<@{ONCALL}>" in told["text"]
    click(w, ONCALL, f"D{ONCALL}", buttons(called)[fb.RESOLVED_ACTION],
          {"ts": question_row(w, answer_id_of(answer))["escalation_ts"], "blocks": []})
    run_queued(w)
    assert question_row(w, answer_id_of(answer))["resolved_by"] == ONCALL


def test_needs_a_human_on_an_ephemeral_answer_posts_in_the_questions_thread(world):
    w = world
    w["slack"].reset()
    event = mention(w, "CQUIET", BEN, "how do I submit expenses?")
    run_queued(w)
    answer = w["slack"].wait_for("chat.postEphemeral", lambda p: p.get("user") == BEN and buttons(p))
    click(w, BEN, "CQUIET", buttons(answer)[fb.ESCALATE_ACTION])        # Slack sends no message for these
    run_queued(w)
    call = w["slack"].wait_for("chat.postMessage", lambda p: f"<@{ONCALL}>" in (p.get("text") or ""))
    assert call["channel"] == "CQUIET" and call["thread_ts"] == event["ts"]


def test_a_channel_limited_to_some_sources_draws_only_on_them(world):
    w = world
    (w["root"] / "other").mkdir()
    w["build"]({"sources": [{"name": "library", "kind": "filesystem", "path": str(w["root"] / "corpus")},
                            {"name": "other", "kind": "filesystem", "path": str(w["root"] / "other")}],
                "channels": {"default": {"escalation": {"users": [ONCALL]}},
                             "CSRE": {"sources": ["other"]}, "COPS": {"sources": ["library"]}}},
               CHATOPS_CACHE_TTL="0")
    _, limited = ask(w, "CSRE", ANA, "how many vacation days do we get?")
    assert "couldn't find" in text_of(limited) and "vacation.md" not in text_of(limited)
    assert not w["slack"].calls_to("chat.postEphemeral")      # nothing "only you may see" from elsewhere
    _, allowed = ask(w, "COPS", ANA, "how many vacation days do we get?")
    assert "handbook/vacation.md" in text_of(allowed)
