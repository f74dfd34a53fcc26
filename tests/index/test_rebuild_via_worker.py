"""``chatops index rebuild`` while a real ``chatops worker`` process holds the embedded index: the command
cannot open it, so it queues the rebuild on the worker and follows the new generation's record; the
worker re-embeds with ``openai`` (the /v1/embeddings stand-in), checks, switches, and answers the next
Slack question with the new embedder, without a restart."""

from __future__ import annotations

import json
import re

import pytest

from standins.fake_embeddings import FakeEmbeddings
from tests.integration.harness import BOT, System

pytestmark = pytest.mark.redis

ENG = "UENG"
MODEL = "text-embedding-3-small"
KEY = "sk-rebuild-worker-77b2"
NEW = f"chatops__openai-{MODEL}-256"
CORPUS = {
    ".acl.yml": '- match: "handbook/**"\n  public: true\n- match: "runbooks/**"\n  groups: [engineering]\n',
    "handbook/vacation.md": "# Vacation policy\n\nEveryone gets 27 days of paid vacation per calendar year.\n",
    "runbooks/restart-billing.md": "# Restart the billing service\n\nDrain the billing queue with `billctl drain`, "
                                   "then run `billctl restart --graceful`.\n",
}
DIRECTORY = f"users:\n  - {{email: eng@corp.example, slack_id: {ENG}, groups: [engineering]}}\n"
QUESTION = "How do I restart the billing service?"


def _reply(request: dict) -> str:
    titles = re.findall(r'<source n="(\d+)" title="([^"]*)"', request["messages"][-1]["content"])
    return f"According to {titles[0][1]} [{titles[0][0]}]." if titles else "Not found."


@pytest.fixture
def system(tmp_path):
    with FakeEmbeddings({MODEL: 1536}, api_key=KEY) as server:
        s = System.start(tmp_path, corpus=CORPUS, directory=DIRECTORY, reply=_reply,
                         users={ENG: {"id": ENG, "profile": {"email": "eng@corp.example"}},
                                BOT: {"id": BOT, "is_bot": True, "profile": {}}},
                         channels={"CENG": [ENG, BOT]},
                         extra_env={"CHATOPS_EMBEDDING_URL": server.base_url, "CHATOPS_EMBEDDING_API_KEY": KEY,
                                    "CHATOPS_EMBEDDING_DIMENSIONS": "256", "CHATOPS_INDEX_SWITCH_POLL": "0.5"})
        try:
            yield s, server
        finally:
            s.stop()


def test_the_worker_rebuilds_switches_and_answers_with_the_new_embedder(system):
    s, server = system
    event = s.mention("CENG", ENG, QUESTION.lower())
    assert s.post_event(event).status_code == 200
    assert "Restart the billing service" in s.final_reply("CENG", event["ts"], timeout=60)
    assert not server.requests                                           # the local model answered

    status = json.loads(s.cli("index", "status", "--json").stdout)
    assert status["generations"][0]["held_by_another_process"]           # the worker has it

    done = s.cli("index", "rebuild", "--embedder", f"openai:{MODEL}", "--timeout", "120", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "a worker holds the embedded index: the rebuild runs there" in done.stderr
    assert done.stdout.strip().startswith(f"generation {NEW}: ") and "switched to it (by the worker)" in done.stdout
    assert (s.root / "data" / "index" / "active.json").exists()

    n = len(server.requests)
    event = s.mention("CENG", ENG, QUESTION)
    assert s.post_event(event).status_code == 200
    assert "Restart the billing service" in s.final_reply("CENG", event["ts"], timeout=60)
    assert [r["input"] for r in server.requests[n:]] == [[QUESTION]]    # the worker switched its embedder too
