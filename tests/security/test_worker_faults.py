"""Findings 2, 4, 5, 7, 8 and 9, end to end through a real worker process.

One running system for the module (tests/integration/harness.py): the web app, a
`chatops worker` subprocess on the real Redis, an embedded index, a loopback Slack
and a scripted model that answers with what its sources say (so a leak would show).

* 2: a worker killed (SIGKILL) in the middle of an answer: a new worker answers the
  question, exactly once, well within two minutes.
* 4: someone joins a channel: the next answer there is narrowed (with the
  member_joined_channel event, and without it, by the re-check before posting).
* 5: a Slack Connect user from another organisation whose profile shows an
  employee's email is not that employee.
* 7: a model reply that is only a tool call, in a DM: a message, the proposal, the audit row.
* 8: a Slack failure after the answer is posted re-runs nothing (one model call, one
  answer, one audit row, one proposal).
* 9: chat.update keeps failing: the error report reaches the asker in the thread.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
import uuid

import pytest

from chatops.store import Store
from tests.actions_example import catalogue
from tests.integration.harness import BOT, System, new_ts, text_of, wait_for
from standins.fake_slack import event_body, sign
from standins.fake_webhook import FakeWebhook

pytestmark = pytest.mark.redis

ENG, HR, OUTSIDER = "UENG", "UHR", "UOUT"
SALARY = "The L5 salary band runs from 121,000 to 152,000 EUR."
CORPUS = {
    ".acl.yml": '- match: "handbook/**"\n  public: true\n- match: "runbooks/**"\n  groups: [engineering]\n'
                '- match: "hr/**"\n  groups: [hr]\n',
    "handbook/vacation.md": "# Vacation policy\n\nEveryone gets 27 days of paid vacation per calendar year.\n",
    "runbooks/restart-billing.md": "# Restart the billing service\n\nDrain the queue with `billctl drain`, then "
                                   "run `billctl restart --graceful` on the billing-7 cluster.\n",
    "hr/salary-bands.md": f"# Salary bands\n\n{SALARY}\n",
}
DIRECTORY = f"""
users:
  - {{email: eng@corp.example, slack_id: {ENG}, groups: [engineering]}}
  - {{email: hr@corp.example, slack_id: {HR}, groups: [hr]}}
"""
HOOK_SECRET = "faults-hook-secret"

release_slow = threading.Event()


def _reply(request: dict):
    """A model that repeats its first source, slowly when asked to, and proposes on request."""
    prompt = request["messages"][-1]["content"]
    question = prompt.rsplit("Question:", 1)[-1]
    if "slowly" in question:
        release_slow.wait(60)
    if "restart billing in staging" in question and any(
            t["function"]["name"] == "restart_service" for t in request.get("tools") or []):
        return {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "restart_service", "arguments": json.dumps({"service": "billing", "env": "staging"})}}]}
    sources = re.findall(r'<source n="(\d+)" title="([^"]*)">\n(.*?)\n</source>', prompt, re.DOTALL)
    if not sources:
        return "I could not find that in the documents."
    n, title, body = sources[0]
    return f"From {title}: {' '.join(body.split())} [{n}]"


@pytest.fixture(scope="module")
def hook():
    with FakeWebhook() as server:
        yield server


@pytest.fixture(scope="module")
def system(tmp_path_factory, hook):
    root = tmp_path_factory.mktemp("faults")
    (root / "config.yml").write_text(catalogue(hook.url))
    s = System.start(
        root, corpus=CORPUS, directory=DIRECTORY, reply=_reply,
        users={
            ENG: {"id": ENG, "profile": {"email": "eng@corp.example"}},
            HR: {"id": HR, "profile": {"email": "hr@corp.example"}},
            # Another organisation's user in a shared channel, showing the HR person's email.
            OUTSIDER: {"id": OUTSIDER, "team_id": "T_ELSEWHERE", "profile": {"email": "hr@corp.example"}},
            BOT: {"id": BOT, "is_bot": True, "profile": {}},
        },
        channels={"CMIX": [ENG, HR, BOT], "CHR": [HR, BOT], "CSHARED": [HR, OUTSIDER, BOT], "CENG": [ENG, BOT]},
        extra_env={"CHATOPS_CONFIG": str(root / "config.yml"), "RESTART_HOOK_SECRET": HOOK_SECRET},
    )
    yield s
    release_slow.set()
    s.stop()


@pytest.fixture(scope="module")
def store(system):
    s = Store.for_url(f"sqlite:///{system.root / 'data' / 'chatops.db'}")
    yield s
    s.close()


def dm(system, user: str, text: str) -> dict:
    event = {"type": "message", "channel": f"D{user}", "channel_type": "im", "user": user, "text": text,
             "ts": new_ts()}
    assert system.post_event(event).status_code == 200
    return event


def answers_in(system, channel: str, thread_ts: str | None = None) -> list[str]:
    """The answers in a channel (or one thread of it): streamed, or in place of working messages."""
    out = []
    for message in system.slack.shown():
        if message.get("channel") != channel:
            continue
        text = text_of(message)
        if "Looking into it" in text or any(b.get("type") == "actions" and any(
                e.get("action_id") == "proposal_approve" for e in b.get("elements", []))
                for b in message.get("blocks") or []):
            continue                     # a working message, a proposal
        if message.get("streamed"):
            where = message.get("thread_ts")
        elif "ts" in message:            # a chat.update: the working message replaced
            where = system.thread_of(message)
        else:                            # with streaming on, an answer not streamed is a reply
            where = message.get("thread_ts")
        if thread_ts is not None and where != thread_ts:
            continue
        out.append(text_of(message))
    return out




def model_requests_about(system, text: str) -> list[dict]:
    return [r for r in system.llm.requests
            if not r["messages"][0]["content"].startswith("Rewrite")
            and text in r["messages"][-1]["content"].rsplit("Question:", 1)[-1]]


def audit_rows(store, channel: str, question: str) -> list:
    return [e for e in store.export(since=_long_ago())
            if e["kind"] == "question" and e["question"] and e["question"]["channel"] == channel
            and e["question"]["question"] == question]


def _long_ago():
    from datetime import datetime, timedelta, timezone

    return datetime.now(timezone.utc) - timedelta(days=1)


# -- 2: a worker killed mid-answer ---------------------------------------------------------------


def test_a_worker_killed_mid_answer_is_answered_once_by_the_next_worker(system, store):
    question = "how many vacation days do we get? (answer slowly)"
    release_slow.clear()
    event = dm(system, HR, question)
    wait_for(lambda: model_requests_about(system, "answer slowly"), what="the model was asked")
    system.worker.send_signal(signal.SIGKILL)            # OOM kill, node loss: no goodbye
    system.worker.wait(timeout=10)
    system.worker = None
    system._log_file.close()
    release_slow.set()
    restarted = time.monotonic()
    system.start_worker()
    channel = f"D{HR}"
    wait_for(lambda: [a for a in answers_in(system, channel) if "27 days" in a and "Vacation policy" in a],
             timeout=120, what="the answer after the restart")
    recovery_s = time.monotonic() - restarted
    print(f"\nrecovered {recovery_s:.1f} s after the new worker started")
    assert recovery_s < 120
    time.sleep(3)   # a second answer, if any, would come now
    answered = [a for a in answers_in(system, channel) if "27 days" in a and "Vacation policy" in a]
    working = [p for p in system.slack.calls_to("chat.postMessage")
               if p.get("channel") == channel and "Looking into it" in text_of(p)]
    assert len(answered) == 1
    assert len(audit_rows(store, channel, question)) == 1
    assert len(working) <= 2          # the dead worker's, and at most one more
    assert any(line.get("msg", "").startswith("re-queued a task") for line in system.log_lines())
    assert event["ts"]


# -- 4: a new channel member narrows the next answer ---------------------------------------------


def post_member_event(system, kind: str, user: str, channel: str):
    body = event_body({"type": kind, "user": user, "channel": channel, "channel_type": "C", "team": "T123",
                       "event_ts": f"{time.time():.6f}"}, event_id=f"Ev{uuid.uuid4().hex[:10]}")
    import requests

    return requests.post(f"{system.url}/slack/events", data=body,
                         headers={"Content-Type": "application/json", **sign(body, "e2e-signing-secret")},
                         timeout=10)


def test_someone_joining_narrows_the_next_answer(system):
    first = system.mention("CHR", HR, "what is the L5 salary band?")
    system.post_event(first)
    assert "121,000" in system.final_reply("CHR", first["ts"])        # HR only: the HR document
    system.slack.channels["CHR"].append(ENG)                          # an engineer joins
    assert post_member_event(system, "member_joined_channel", ENG, "CHR").status_code == 200
    second = system.mention("CHR", HR, "what is the L5 salary band?")
    system.post_event(second)
    assert "121,000" not in system.final_reply("CHR", second["ts"])


def test_without_the_event_the_answer_is_checked_again_before_posting(system):
    channel = "CENG"
    first = system.mention(channel, ENG, "how do I restart the billing service?")
    system.post_event(first)
    assert "billctl" in system.final_reply(channel, first["ts"])     # cached: [ENG, BOT]
    system.slack.channels[channel].append(HR)                         # HR joins; the event is lost
    time.sleep(6)                                                     # older than CHATOPS_CHANNEL_FRESH (5 s)
    second = system.mention(channel, ENG, "how do I restart the billing service?")
    system.post_event(second)
    assert "billctl" not in system.final_reply(channel, second["ts"])


# -- 5: Slack Connect strangers -------------------------------------------------------------------


def test_a_stranger_with_an_employees_email_is_not_that_employee(system):
    event = dm(system, OUTSIDER, "what is the L5 salary band?")
    reply = wait_for(lambda: answers_in(system, f"D{OUTSIDER}"), what="the DM answer")[-1]
    assert "121,000" not in reply
    assert "public" in reply
    shared = system.mention("CSHARED", HR, "what is the L5 salary band?")
    system.post_event(shared)
    assert "121,000" not in system.final_reply("CSHARED", shared["ts"])
    assert event


# -- 7: a reply that is only a tool call, in a DM -------------------------------------------------


def test_a_tool_call_only_reply_in_a_dm_is_posted_and_proposed(system, store):
    question = "please restart billing in staging"
    dm(system, ENG, question)
    channel = f"D{ENG}"
    answer = wait_for(lambda: [a for a in answers_in(system, channel) if "Nothing runs until" in a],
                      what="the answer message")[-1]
    assert "Looking into it" not in answer
    proposal = system.slack.wait_for("chat.postMessage", lambda p: p.get("channel") == channel and any(
        b.get("type") == "actions" for b in p.get("blocks") or []))
    assert "restart_service" in text_of(proposal)
    assert len(audit_rows(store, channel, question)) == 1
    assert [p.state for p in store.list_proposals() if p.channel == channel] == ["proposed"]


# -- 8: a Slack failure after the answer re-runs nothing -------------------------------------------


def test_a_failed_note_after_the_answer_re_runs_nothing(system, store, hook):
    question = "please restart billing in staging per the runbook"
    system.slack.fail_next("chat.postEphemeral", status=500, count=3)   # the SDK's 3 attempts: one task try
    event = system.mention("CMIX", ENG, question)
    system.post_event(event)
    # Slack took the note at last (a call with a response: the failed ones have none) ...
    note = wait_for(lambda: [c for c in list(system.slack.calls) if c["method"] == "chat.postEphemeral"
                             and c.get("response") and c["params"].get("channel") == "CMIX"
                             and c["params"].get("user") == ENG], timeout=60, what="the note, posted")
    failed = [c for c in list(system.slack.calls) if c["method"] == "chat.postEphemeral" and not c.get("response")]
    assert note and len(failed) == 3
    time.sleep(3)   # ... and nothing else happens after it
    assert len(model_requests_about(system, "per the runbook")) == 1
    assert len(answers_in(system, "CMIX", event["ts"])) == 1
    assert len(audit_rows(store, "CMIX", question)) == 1
    proposals = [p for p in store.list_proposals() if p.thread_ts == event["ts"]]
    assert len(proposals) == 1 and proposals[0].state == "proposed"
    posted = [p for p in system.slack.calls_to("chat.postMessage") if p.get("thread_ts") == event["ts"]
              and any(e.get("action_id") == "proposal_approve" for b in p.get("blocks") or []
                      if b.get("type") == "actions" for e in b.get("elements", []))]
    assert len(posted) == 1
    assert hook.requests == []                     # and nothing ran without a person


# -- 9: chat.update keeps failing ----------------------------------------------------------------


def test_when_chat_update_keeps_failing_the_error_reaches_the_thread(system):
    question = "how many vacation days, while Slack is failing?"
    event = system.mention("CENG", ENG, question)
    system.slack.fail_next("chat.update", status=500, count=15)   # every update of every retry
    system.slack.fail_next("chat.stopStream", status=500, count=15)   # and every end of a streamed answer
    try:
        system.post_event(event)
        report = system.slack.wait_for(
            "chat.postMessage", lambda p: p.get("thread_ts") == event["ts"]
            and "something went wrong" in text_of(p), timeout=90)
    finally:
        with system.slack.lock:
            system.slack._failures.pop("chat.update", None)
            system.slack._failures.pop("chat.stopStream", None)
    assert "Reference:" in text_of(report)
    assert len(model_requests_about(system, "while Slack is failing")) == 1
