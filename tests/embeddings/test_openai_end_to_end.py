"""Ingestion and retrieval end to end with ``CHATOPS_EMBEDDING_PROVIDER=openai`` through the
/v1/embeddings stand-in: ``chatops ingest`` embeds the chunks in batches of the batch size, the
index records the provider, model and dimension, ``chatops ask`` embeds the question with the same
server and finds the passage, ACLs still decide who sees it, and a local embedder is refused."""

from __future__ import annotations

import json
import uuid

import pytest
import redis

from connectors.index.base import Built, read_built
from standins.fake_embeddings import FakeEmbeddings
from tests.integration.test_cli import ANA, BEN, BILLING_Q, Cli, base_env, write_corpus

KEY = "sk-e2e-embeddings-3f9a"


@pytest.fixture
def deployment(tmp_path):
    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    prefix = f"chatops-test-embed-{uuid.uuid4().hex[:8]}"
    with FakeEmbeddings({"text-embedding-3-small": 1536}, api_key=KEY) as server:
        env = base_env(CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_KEY_PREFIX=prefix,
                       CHATOPS_EMBEDDING_PROVIDER="openai", CHATOPS_EMBEDDING_MODEL="text-embedding-3-small",
                       CHATOPS_EMBEDDING_URL=server.base_url, CHATOPS_EMBEDDING_API_KEY=KEY,
                       CHATOPS_EMBEDDING_DIMENSIONS="512", CHATOPS_EMBEDDING_BATCH_SIZE="2",
                       CHATOPS_EMBEDDING_CONCURRENCY="2")
        yield Cli(env), server, tmp_path
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def test_ingest_and_ask_through_the_embeddings_server(deployment):
    cli, server, tmp = deployment
    corpus = write_corpus(tmp / "corpus")
    done = cli("ingest", str(corpus))
    assert done.exit_code == 0, done.output
    sizes = server.batch_sizes
    assert sizes and max(sizes) == 2                               # CHATOPS_EMBEDDING_BATCH_SIZE
    assert {r["dimensions"] for r in server.requests} == {512}
    assert read_built(tmp / "data" / "index") == Built("text-embedding-3-small", 512, "openai")

    before = len(server.requests)
    asked = cli("ask", BILLING_Q, "--as", ANA, "--json")
    assert asked.exit_code == 0, asked.output
    assert len(server.requests) == before + 1 and server.requests[-1]["input"] == [BILLING_Q]
    sources = [c["source"] for c in json.loads(asked.stdout)["citations"]]
    assert sources and sources[0] == "runbooks/billing/restart.md"
    hidden = json.loads(cli("ask", BILLING_Q, "--as", BEN, "--json").stdout)
    assert all(not c["source"].startswith("runbooks/") for c in hidden["citations"])   # ACLs as ever

    local = cli("ask", BILLING_Q, "--as", ANA, CHATOPS_EMBEDDING_PROVIDER="local", CHATOPS_EMBEDDING_MODEL=None)
    assert local.exit_code == 2
    assert local.stderr.strip() == (
        "error: the index was built with openai:text-embedding-3-small (512 dims) but CHATOPS_EMBEDDING_* configure "
        "local:sentence-transformers/all-MiniLM-L6-v2 (384 dims); run `chatops index rebuild` or set them back")
    cli.assert_no_secrets()
    assert KEY not in "".join(cli.outputs)


def test_a_slack_question_through_the_worker_uses_the_embeddings_server(tmp_path):
    """The whole product (web app, a ``chatops worker`` process, Redis, Slack and model stand-ins)
    with ``openai`` embeddings: the worker embeds the question with the server and answers from the
    document the asker may see."""
    from tests.integration.harness import BOT, System

    eng = "UENG"
    corpus = {".acl.yml": '- match: "runbooks/**"\n  groups: [engineering]\n- match: "handbook/**"\n  public: true\n',
              "runbooks/restart-billing.md": "# Restart the billing service\n\nDrain the billing queue with "
                                             "`billctl drain`, then run `billctl restart --graceful`.\n",
              "handbook/vacation.md": "# Vacation policy\n\nEveryone gets 27 days of paid vacation per year.\n"}
    with FakeEmbeddings({"text-embedding-3-small": 1536}, api_key=KEY) as server:
        system = System.start(
            tmp_path, corpus=corpus, directory=f"users:\n  - {{email: eng@corp.example, slack_id: {eng}, "
                                               "groups: [engineering]}\n",
            reply=lambda request: "Drain the queue, then restart it [1].",
            users={eng: {"id": eng, "profile": {"email": "eng@corp.example"}}, BOT: {"id": BOT, "is_bot": True,
                                                                                      "profile": {}}},
            channels={"CENG": [eng, BOT]},
            extra_env={"CHATOPS_EMBEDDING_PROVIDER": "openai", "CHATOPS_EMBEDDING_MODEL": "text-embedding-3-small",
                       "CHATOPS_EMBEDDING_URL": server.base_url, "CHATOPS_EMBEDDING_API_KEY": KEY, "CHATOPS_STREAMING": "false"})
        try:
            ingested = len(server.requests)
            assert ingested >= 2                                   # the probe and the chunks, by `chatops ingest`
            event = system.mention("CENG", eng, "how do I restart the billing service?")
            assert system.post_event(event).status_code == 200
            text = system.final_reply("CENG", event["ts"], timeout=60)
            assert "runbooks/restart-billing.md" in text
            asked = [r["input"] for r in server.requests[ingested:]]
            assert ["how do I restart the billing service?"] in asked   # the worker asked the server
        finally:
            system.stop()
