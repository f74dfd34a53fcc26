"""The App Home end to end: signed ``app_home_opened`` events into the real web app, the ``home`` task
on a real worker process (Celery on the real Redis), ``views.publish`` and
``assistant.threads.setSuggestedPrompts`` on the Slack stand-in."""

from __future__ import annotations

import json
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
    wait_for(lambda: any(c["method"] == "chat.update" and c["params"].get("channel") == f"D{user}"
                         and "Looking into it" not in text_of(c["params"]) for c in list(system.slack.calls)[since:]),
             timeout=45, what="the answer in the DM")


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
