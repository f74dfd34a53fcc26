"""Issue 19, finding 2: apps and bots in a channel read its answers, so they are part of its audience.

An app's bot user in the channel counts as an unknown member (public documents only) unless its
bot id or app id is in CHATOPS_TRUSTED_BOTS and it belongs to our own workspaces; another
organisation's app is never trusted; chatops' own bot user is left out. ``is_app_user`` is a
person who authorised the app, not an app: they are resolved like anyone else.

The composition root built from the settings, the question handler run as a worker runs it,
the real slack_sdk client against the loopback Slack, the directory file, an embedded index with
the offline model, Redis for the caches and the steps.
"""

from __future__ import annotations

import time
import uuid

import pytest
import yaml

from bot.questions.listener import question_payload
from chatops.errors import ConfigError
from bot.settings import SlackSettings
from chatops.settings import Settings
from chatops_app.settings import load_settings
from chatops_app.container import Container
from connectors.sources.registry import filesystem_spec, open_source
from standins.fake_openai import FakeOpenAI
from standins.fake_slack import FakeSlack
from tests.integration.harness import text_of
from tests.security.conftest import redis_or_skip
from usecases.ingest import ingest

pytestmark = pytest.mark.redis

BOT, HR, ENG = "UBOT", "UHR", "UENG"
PARTNER_APP, OWN_APP, OTHER_APP = "UPARTNERAPP", "UOWNAPP", "UOTHERAPP"
CORPUS = {
    ".acl.yml": '- match: "handbook/**"\n  public: true\n- match: "hr/**"\n  groups: [hr]\n',
    "handbook/vacation.md": "# Vacation policy\n\nEveryone gets 27 days of paid vacation per calendar year.\n",
    "hr/salary-bands.md": "# Salary bands\n\nThe senior engineer salary band runs from 95,000 to 120,000 EUR.\n",
}
DIRECTORY = {"users": [{"email": "hr@corp.example", "groups": ["hr"]}, {"email": "eng@corp.example", "groups": []}]}


def app_user(user_id: str, bot_id: str, app_id: str, team_id: str = "T123") -> dict:
    """An app's bot user as users.info shows it: no email; its profile names the bot and the app."""
    return {"id": user_id, "team_id": team_id, "is_bot": True, "name": user_id.lower(),
            "profile": {"bot_id": bot_id, "api_app_id": app_id, "always_active": True}}


USERS = {
    HR: {"id": HR, "profile": {"email": "hr@corp.example"}},
    # A person who authorised the app: a person, who may not see the salary bands.
    ENG: {"id": ENG, "is_app_user": True, "profile": {"email": "eng@corp.example"}},
    # A partner organisation's app in a Slack Connect channel, its ids on the allow-list all the same.
    PARTNER_APP: app_user(PARTNER_APP, "BPARTNER", "APARTNER", team_id="TPARTNER"),
    OWN_APP: app_user(OWN_APP, "BOWN", "AOWN"),            # ours, allow-listed by its app id
    OTHER_APP: app_user(OTHER_APP, "BOTHER", "AOTHER"),    # ours, not allow-listed
}
CHANNELS = {
    "CHR": [HR, BOT],
    "CPARTNER": [HR, BOT, PARTNER_APP],
    "CUNLISTED": [HR, BOT, OTHER_APP],
    "CTRUSTED": [HR, BOT, OWN_APP],
    "CAPPUSER": [HR, BOT, ENG],
}


def model(request: dict) -> str:
    """Names the first passage it was given, so the answer shows which documents the audience got."""
    prompt = request["messages"][-1]["content"]
    title = prompt.split('title="', 1)[1].split('"', 1)[0] if 'title="' in prompt else "nothing"
    return f"From {title} [1]."


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    client = redis_or_skip()
    root = tmp_path_factory.mktemp("apps")
    for rel, text in CORPUS.items():
        (root / "corpus" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "corpus" / rel).write_text(text)
    (root / "directory.yml").write_text(yaml.safe_dump(DIRECTORY))
    slack = FakeSlack(users=USERS, channels=CHANNELS, bot_user_id=BOT, team_id="T123").start()
    llm = FakeOpenAI(reply=model).start()
    prefix = f"chatops-apps-{uuid.uuid4().hex[:8]}"
    settings = Settings.load(
        CHATOPS_DATA_DIR=str(root / "data"), QDRANT_PATH=str(root / "index"), QDRANT_URL=None,
        DATABASE_URL="sqlite:///:memory:", CHATOPS_DIRECTORY_FILE=str(root / "directory.yml"),
        CHATOPS_IDENTITY_PROVIDER="directory", SLACK_BOT_TOKEN="xoxb-apps", SLACK_SIGNING_SECRET="apps-secret",
        SLACK_API_URL=slack.url, OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="sk-apps-key-000",
        CHATOPS_KEY_PREFIX=prefix, CHATOPS_MIN_SIMILARITY="0.05", CHATOPS_NO_EVIDENCE_RULE="floor", CHATOPS_CACHE_TTL="0",
        CHATOPS_SLACK_CHANNEL_PACE="0", CHATOPS_TRUSTED_BOTS="AOWN, BPARTNER")
    container = Container(settings)
    ingest(open_source(filesystem_spec(root / "corpus"), settings.group_names), container.index, container.embedder)
    yield {"container": container, "slack": slack}
    container.close()
    slack.stop()
    llm.stop()
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def channel_answer(world, channel: str, user: str, text: str) -> str:
    """What the channel sees: the answer posted in the question's thread (not the asker's private offer)."""
    ts = f"{time.time():.6f}"
    event = {"type": "app_mention", "channel": channel, "channel_type": "channel", "user": user,
             "text": f"<@{BOT}> {text}", "ts": ts}
    payload = question_payload(event, {"event_id": f"Ev{uuid.uuid4().hex[:10]}", "team_id": "T123"}, BOT, "mention")
    world["container"].handler("question").handle(payload)
    slack = world["slack"]
    streamed = [m for m in slack.shown() if m.get("streamed") and m.get("channel") == channel and m.get("thread_ts") == ts]
    if streamed:
        [answer] = streamed
        return text_of(answer)
    posted = {c["response"]["ts"] for c in slack.calls if c["method"] == "chat.postMessage"
              and c.get("response") and c["params"].get("channel") == channel and c["params"].get("thread_ts") == ts}
    [update] = [p for p in slack.calls_to("chat.update") if p.get("ts") in posted]
    return text_of(update)


def salary_shown(answer: str) -> bool:
    return "Salary bands" in answer or "salary-bands" in answer


def test_with_only_people_who_may_see_it_the_salary_answer_is_posted(world):
    # The control: HR and chatops' own bot user (left out of the audience, as before).
    assert salary_shown(channel_answer(world, "CHR", HR, "what are the salary bands for a senior engineer?"))


def test_another_organisations_app_narrows_the_channel_to_public_documents(world):
    # Its bot id is on the allow-list, but an app of another organisation is never trusted.
    answer = channel_answer(world, "CPARTNER", HR, "what are the salary bands for a senior engineer?")
    assert not salary_shown(answer)
    assert "Vacation policy" in answer          # public documents are still used


def test_an_app_of_our_own_workspace_not_on_the_allow_list_narrows_the_channel(world):
    assert not salary_shown(channel_answer(world, "CUNLISTED", HR, "what are the salary bands for a senior engineer?"))


def test_an_allow_listed_app_of_our_own_workspace_is_left_out_of_the_audience(world):
    assert salary_shown(channel_answer(world, "CTRUSTED", HR, "what are the salary bands for a senior engineer?"))


def test_a_person_who_authorised_the_app_is_a_reader_not_an_app(world):
    # is_app_user: true is a person (who authorised this app); they may not see the salary bands.
    assert not salary_shown(channel_answer(world, "CAPPUSER", HR, "what are the salary bands for a senior engineer?"))


def test_the_allow_list_takes_slack_bot_and_app_ids_only():
    slack = load_settings(CHATOPS_TRUSTED_BOTS=" A0AB12CD, b0xyz99 ,").of(SlackSettings)
    assert slack.trusted_bots == frozenset({"A0AB12CD", "B0XYZ99"})
    with pytest.raises(ConfigError, match="CHATOPS_TRUSTED_BOTS"):
        load_settings(CHATOPS_TRUSTED_BOTS="U0PERSON")
