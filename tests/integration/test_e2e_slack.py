"""End to end: signed Slack requests -> web app -> Redis -> a real worker process -> fake Slack.

Real parts: the FastAPI/Bolt web app served by uvicorn, Celery on the real Redis,
a `chatops worker` subprocess with an embedded index, the real slack_sdk and
openai clients. Stand-ins on loopback: the Slack Web API and the LLM server.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.integration.harness import BOT, System, new_ts, text_of

ENG, HR, OUTSIDER = "UENG", "UHR", "UOUT"

CORPUS = {
    ".acl.yml": """
- match: "handbook/**"
  public: true
- match: "runbooks/**"
  groups: [engineering]
- match: "hr/**"
  groups: [hr]
""",
    "handbook/vacation.md": "# Vacation policy\n\nEveryone gets 27 days of paid vacation per calendar year.\n",
    "runbooks/restart-billing.md": (
        "# Restart the billing service\n\n## Steps\n\nDrain the billing queue with `billctl drain`, "
        "then run `billctl restart --graceful` on the billing-7 cluster.\n"),
    "hr/salary-bands.md": "# Salary bands\n\nThe L5 salary band runs from 121,000 to 152,000 EUR.\n",
}
DIRECTORY = f"""
users:
  - {{email: eng@corp.example, slack_id: {ENG}, groups: [engineering]}}
  - {{email: hr@corp.example, slack_id: {HR}, groups: [hr]}}
"""

def _reply(request: dict) -> str:
    """A scripted model: cites source 1 and names its title, like a model that read it."""
    if request["messages"][0]["content"].startswith("Rewrite the user's last message"):
        return "Which cluster does the billing service restart run on?"
    prompt = request["messages"][-1]["content"]
    titles = re.findall(r'<source n="(\d+)" title="([^"]*)"', prompt)
    if not titles:
        return "I could not find that in the documents."
    return f"According to {titles[0][1]}, here is what to do [{titles[0][0]}]. See also [9]."


pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    s = System.start(
        tmp_path_factory.mktemp("e2e"), corpus=CORPUS, directory=DIRECTORY, reply=_reply,
        users={
            ENG: {"id": ENG, "profile": {"email": "eng@corp.example"}},
            HR: {"id": HR, "profile": {"email": "hr@corp.example"}},
            OUTSIDER: {"id": OUTSIDER, "profile": {"email": "someone@else.example"}},
            BOT: {"id": BOT, "is_bot": True, "profile": {}},
        },
        channels={"CENG": [ENG, BOT], "CMIX": [ENG, HR, BOT]},
    )
    yield s
    s.stop()


def test_mention_answer_cites_permitted_document_in_thread(system):
    event = system.mention("CENG", ENG, "how do I restart the billing service?")
    resp = system.post_event(event)
    assert resp.status_code == 200
    text = system.final_reply("CENG", event["ts"])
    assert "runbooks/restart-billing.md" in text
    assert "[9]" not in text  # a citation to a source that was never supplied is dropped
    assert "hr/salary-bands.md" not in text


def test_channel_answer_only_uses_documents_every_member_may_see(system):
    event = system.mention("CMIX", ENG, "how do I restart the billing service?")
    assert system.post_event(event).status_code == 200
    text = system.final_reply("CMIX", event["ts"])
    assert "runbooks/restart-billing.md" not in text
    assert "billctl" not in text
    # The asker alone may see it: an ephemeral offer of the full answer by DM.
    offer = system.slack.wait_for(
        "chat.postEphemeral", lambda p: p.get("channel") == "CMIX" and p.get("user") == ENG)
    button = next(el for b in offer["blocks"] if b["type"] == "actions" for el in b["elements"])
    assert button["action_id"] == "answer_in_dm"

    # Someone else clicking the offer gets nothing.
    resp = system.click(HR, "CMIX", button)
    assert resp.status_code == 200
    system.slack.wait_for("chat.postEphemeral", lambda p: p.get("user") == HR
                             and "Only the person who asked" in text_of(p))
    # The asker's click: the full answer in a DM.
    resp = system.click(ENG, "CMIX", button)
    assert resp.status_code == 200
    dm = system.slack.wait_for("conversations.open", lambda p: p.get("users") == ENG)
    assert dm
    update = system.slack.wait_for("chat.update", lambda p: p.get("channel") == f"D{ENG}"
                                      and "runbooks/restart-billing.md" in text_of(p))
    assert update


def test_dm_question_uses_the_askers_permissions(system):
    ts = new_ts()
    event = {"type": "message", "channel": f"D{HR}", "channel_type": "im", "user": HR,
             "text": "what is the L5 salary band?", "ts": ts}
    assert system.post_event(event).status_code == 200
    update = system.slack.wait_for_shown(lambda p: p.get("channel") == f"D{HR}"
                                         and "hr/salary-bands.md" in text_of(p), timeout=30)
    assert "runbooks/" not in text_of(update)


def test_follow_up_in_answered_thread_is_answered(system):
    first = system.mention("CENG", ENG, "how do I restart the billing service?")
    system.post_event(first)
    system.final_reply("CENG", first["ts"])
    follow = {"type": "message", "channel": "CENG", "channel_type": "channel", "user": ENG,
              "text": "and which cluster is that on?", "ts": new_ts(), "thread_ts": first["ts"]}
    assert system.post_event(follow).status_code == 200

    def in_thread():
        return system.answers_in_thread("CENG", first["ts"])

    deadline = time.time() + 30
    while time.time() < deadline and len(in_thread()) < 2:
        time.sleep(0.1)
    answers = in_thread()
    assert len(answers) == 2, "the follow-up was not answered in the thread"
    assert "runbooks/restart-billing.md" in text_of(answers[-1])
    # The follow-up was rewritten into a standalone question (with the thread as context), and
    # the answer was written with the earlier exchange in view.
    rewrites = [r for r in system.llm.requests if r["messages"][0]["content"].startswith("Rewrite")]
    assert any("how do I restart the billing service?" in r["messages"][-1]["content"]
               and "which cluster" in r["messages"][-1]["content"] for r in rewrites)
    assert any(any(m["content"] == "how do I restart the billing service?" for m in r["messages"])
               for r in system.llm.requests if "which cluster" in r["messages"][-1]["content"]
               and r not in rewrites)

def test_unthreaded_channel_message_is_ignored_and_bot_messages_too(system):
    n = len(system.slack.calls_to("chat.postMessage"))
    plain = {"type": "message", "channel": "CENG", "channel_type": "channel", "user": ENG,
             "text": "lunch?", "ts": new_ts()}
    own = {"type": "message", "channel": f"D{ENG}", "channel_type": "im", "user": BOT, "bot_id": "B123",
           "text": "an answer", "ts": new_ts()}
    assert system.post_event(plain).status_code == 200
    assert system.post_event(own).status_code == 200
    time.sleep(1.5)
    assert len(system.slack.calls_to("chat.postMessage")) == n


def test_slack_retry_produces_no_second_answer(system):
    event = system.mention("CENG", ENG, "how many vacation days do we get?")
    assert system.post_event(event).status_code == 200
    assert system.post_event(event, retry=1).status_code == 200
    assert system.post_event(event, retry=2).status_code == 200
    text = system.final_reply("CENG", event["ts"])
    assert "handbook/vacation.md" in text
    time.sleep(1.5)
    assert len(system.answers_in_thread("CENG", event["ts"])) == 1
    started = [c for c in system.slack.calls if c["method"] in ("chat.postMessage", "chat.startStream")
               and c["params"].get("thread_ts") == event["ts"]]
    assert len(started) == 1          # one working message, or one stream


def test_bad_signature_and_stale_request_are_rejected(system):
    event = system.mention("CENG", ENG, "how do I restart the billing service?")
    assert system.post_event(event, secret="wrong-secret").status_code == 401
    stale = int(time.time()) - 6 * 60
    assert system.post_event(event, timestamp=stale).status_code == 401
    time.sleep(1.5)
    assert not [p for p in system.slack.calls_to("chat.postMessage") if p.get("thread_ts") == event["ts"]]


def test_unknown_user_is_refused_without_retrieval(system):
    requests_before = len(system.llm.requests)
    event = system.mention("CENG", OUTSIDER, "how do I restart the billing service?")
    assert system.post_event(event).status_code == 200
    text = system.final_reply("CENG", event["ts"])
    assert "couldn't find you in the company directory" in text
    assert "runbooks" not in text
    assert len(system.llm.requests) == requests_before


def test_llm_down_gives_a_clear_extractive_answer(system):
    system.llm.mode = "error"
    try:
        event = system.mention("CENG", ENG, "how do I restart the billing service?")
        assert system.post_event(event).status_code == 200
        text = system.final_reply("CENG", event["ts"])
    finally:
        system.llm.mode = "ok"
    assert "language model is unavailable" in text
    assert "runbooks/restart-billing.md" in text


def test_logs_follow_one_question_and_hold_no_secrets(system):
    event = system.mention("CENG", ENG, "how many vacation days do we get?")
    system.post_event(event)
    system.final_reply("CENG", event["ts"])
    time.sleep(0.5)
    lines = system.log_lines()
    answered = [l for l in lines if l.get("msg") == "question answered"]
    assert answered and all(l.get("correlation_id") for l in answered)
    raw = system.log_path.read_text()
    assert "xoxb-e2e-token" not in raw and "sk-e2e-not-a-real-key" not in raw
