"""``chatops index status / rebuild / switch / remove`` end to end, through the CLI in process: an index
built with the local model, re-embedded into a second generation with ``openai`` embeddings (the
/v1/embeddings stand-in) from the stored chunk text, checked, switched; the old generation kept and
switched back to; the start-up refusal names both embedders and the generation to switch to."""

from __future__ import annotations

import json
import uuid

import pytest
import redis

from standins.fake_embeddings import FakeEmbeddings
from tests.integration.test_cli import ANA, BEN, BILLING_Q, Cli, base_env, write_corpus

KEY = "sk-rebuild-cli-8c1d"
MODEL = "text-embedding-3-small"
NEW = f"chatops__openai-{MODEL}-256"


@pytest.fixture(params=["edge", "local"])
def deployment(tmp_path, request):
    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    prefix = f"chatops-test-rebuild-{uuid.uuid4().hex[:8]}"
    with FakeEmbeddings({MODEL: 1536}, api_key=KEY) as server:
        # the openai provider's settings are there; the configured provider is still the local one
        env = base_env(CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_KEY_PREFIX=prefix,
                       CHATOPS_EMBEDDING_URL=server.base_url, CHATOPS_EMBEDDING_API_KEY=KEY,
                       CHATOPS_EMBEDDING_DIMENSIONS="256", CHATOPS_EMBEDDING_BATCH_SIZE="2",
                       CHATOPS_INDEX_ENGINE=request.param)     # both embedded engines
        yield Cli(env), server, tmp_path
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


OPENAI = {"CHATOPS_EMBEDDING_PROVIDER": "openai", "CHATOPS_EMBEDDING_MODEL": MODEL}


def test_rebuild_local_to_openai_switch_and_back(deployment):
    cli, server, tmp = deployment
    assert cli("ingest", str(write_corpus(tmp / "corpus"))).exit_code == 0
    before = json.loads(cli("index", "status", "--json").stdout)
    assert before["active"] == "chatops" and before["configured_matches_active"]
    [old] = before["generations"]
    assert old["embedder"]["provider"] == "local" and old["embedder"]["dim"] == 384
    points = old["points"]
    assert points >= 2 and old["documents"] == 2
    assert not server.requests

    done = cli("index", "rebuild", "--embedder", f"openai:{MODEL}")
    assert done.exit_code == 0, done.output
    assert f"generation {NEW}: {points} chunks of 2 documents" in done.stdout and "switched to it" in done.stdout
    assert "rebuilding" in done.stderr                                       # progress lines
    embedded = [t for r in server.requests if r.get("status") == 200 for t in r["input"]]
    assert len(embedded) == points and max(server.batch_sizes) == 2          # the stored chunks, in batches
    assert any("drain the queue" in t for t in embedded)                     # their stored text

    after = json.loads(cli("index", "status", "--json").stdout)
    assert after["active"] == NEW and not after["configured_matches_active"]
    rows = {r["generation"]: r for r in after["generations"]}
    assert rows[NEW]["embedder"] == {"provider": "openai", "model": MODEL, "dim": 256}
    assert rows[NEW]["points"] == points and rows[NEW]["checked_at"]
    assert rows["chatops"]["points"] == points and rows["chatops"]["state"] == "complete"   # kept
    text = cli("index", "status").stdout
    assert "* " + NEW in text and "does NOT match" in text

    # the configured embedder is still the local one: refused, naming both
    refused = cli("ask", BILLING_Q, "--as", ANA)
    assert refused.exit_code == 2
    assert "built with openai:text-embedding-3-small (256 dims)" in refused.stderr
    assert "local:sentence-transformers/all-MiniLM-L6-v2" in refused.stderr
    assert "generation chatops was built with the configured embedder and checked" not in refused.stderr

    # configured as the new generation's embedder: answers, the question embedded by the server
    n = len(server.requests)
    asked = cli("ask", BILLING_Q, "--as", ANA, "--json", **OPENAI)
    assert asked.exit_code == 0, asked.output
    assert [r["input"] for r in server.requests[n:]] == [[BILLING_Q]]
    assert json.loads(asked.stdout)["citations"][0]["source"] == "runbooks/billing/restart.md"
    hidden = json.loads(cli("ask", BILLING_Q, "--as", BEN, "--json", **OPENAI).stdout)
    assert all(not c["source"].startswith("runbooks/") for c in hidden["citations"])

    # a second rebuild with the same embedder: nothing to do
    again = cli("index", "rebuild", **OPENAI)
    assert again.exit_code == 0 and "nothing to rebuild" in again.stdout

    # rollback: the kept generation is switched back to; the openai one stays
    back = cli("index", "switch", "chatops")
    assert back.exit_code == 0 and f"switched from {NEW} to chatops" in back.stdout
    assert cli("ask", BILLING_Q, "--as", ANA).exit_code == 0
    wrong = cli("ask", BILLING_Q, "--as", ANA, **OPENAI)
    assert wrong.exit_code == 2 and f"`chatops index switch {NEW}`" in wrong.stderr   # the ready one named

    assert cli("index", "remove", "chatops").exit_code == 2                  # the active one: no
    removed = cli("index", "remove", NEW)
    assert removed.exit_code == 0, removed.output
    assert [r["generation"] for r in json.loads(cli("index", "status", "--json").stdout)["generations"]] == ["chatops"]
    cli.assert_no_secrets()
    assert KEY not in "".join(cli.outputs)


def test_prune_removes_the_generation_that_was_active_once_switched(deployment):
    cli, server, tmp = deployment
    assert cli("ingest", str(write_corpus(tmp / "corpus"))).exit_code == 0
    done = cli("index", "rebuild", "--embedder", f"openai:{MODEL}", "--prune")
    assert done.exit_code == 0, done.output
    assert "removed generation chatops" in done.stderr
    status = json.loads(cli("index", "status", "--json", **OPENAI).stdout)
    assert [r["generation"] for r in status["generations"]] == [NEW] and status["configured_matches_active"]
    asked = cli("ask", BILLING_Q, "--as", ANA, "--json", **OPENAI)
    assert asked.exit_code == 0 and json.loads(asked.stdout)["citations"]
