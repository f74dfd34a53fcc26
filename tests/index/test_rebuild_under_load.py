"""A rebuild under load: people with different permissions ask in a loop, through the use case the worker
runs, while the worker's own rebuild task (``index_rebuild``) re-embeds the index with ``openai``
embeddings (the /v1/embeddings stand-in), checks it and switches. Every question is answered, none
cites a document its asker may not see, and the questions asked after the switch are embedded by
the new embedder (the stand-in's request log), with no restart."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
import redis

from chatops_app.index_rebuild import RebuildHandler
from chatops_app.settings import load_settings
from standins.fake_embeddings import FakeEmbeddings
from tests.integration.test_cli import ANA, BEN, CARLA, Cli, base_env
from usecases.ask import Question

KEY = "sk-rebuild-load-0f3e"
MODEL = "text-embedding-3-small"
SEES = {ANA: ("handbook/", "runbooks/"), BEN: ("handbook/",), CARLA: ("handbook/", "hr/")}
QUESTIONS = ["How do I restart the billing service?", "How many vacation days do I get?",
             "What are the salary bands?", "How do I rotate the database password?"]


def write_corpus(root):
    files = {".acl.yml": "- match: handbook/**\n  public: true\n- match: runbooks/**\n  groups: [sre]\n"
                         "- match: hr/**\n  groups: [hr]\n"}
    for i in range(12):
        files[f"handbook/policy{i}.md"] = (f"# Policy {i}\n\nEvery employee gets {20 + i} days of paid vacation "
                                           f"in region {i}. Vacation days carry over until March.\n")
        files[f"runbooks/service{i}.md"] = (f"# Restart service {i}\n\nTo restart the billing service {i}, drain "
                                            f"the queue and run systemctl restart billing{i}. Rotate the database "
                                            "password with vault.\n")
        files[f"hr/bands{i}.md"] = (f"# Salary bands {i}\n\nThe salary bands for level {i} are reviewed "
                                    "every year by HR.\n")
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.fixture
def env(tmp_path, monkeypatch):
    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    prefix = f"chatops-test-rebuild-load-{uuid.uuid4().hex[:8]}"
    with FakeEmbeddings({MODEL: 1536}, api_key=KEY) as server:
        server.delay = 0.05     # a server's latency: the rebuild takes a while, questions keep coming
        values = base_env(CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_KEY_PREFIX=prefix,
                          CHATOPS_EMBEDDING_URL=server.base_url, CHATOPS_EMBEDDING_API_KEY=KEY,
                          CHATOPS_EMBEDDING_DIMENSIONS="128", CHATOPS_EMBEDDING_BATCH_SIZE="4",
                          CHATOPS_EMBEDDING_CONCURRENCY="1", CHATOPS_INDEX_SWITCH_POLL="0.2",
                          CHATOPS_CACHE_TTL="0")
        yield values, server, tmp_path, monkeypatch
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def test_questions_are_answered_without_leaks_while_the_worker_rebuilds_and_switches(env):
    values, server, tmp, monkeypatch = env
    cli = Cli(values)
    assert cli("ingest", str(write_corpus(tmp / "corpus"))).exit_code == 0
    for name, value in values.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    from chatops_app.container import Container

    container = Container(load_settings())
    try:
        answering = container.answering_without_slack()
        index = container.index            # the worker's: it holds the embedded index
        assert index.generation() == "chatops"
        asked: list[tuple[float, float, str, str, list[str], str | None]] = []
        stop = threading.Event()

        def ask_loop(person: str) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                text = f"{QUESTIONS[n % len(QUESTIONS)]} ({person.split('@')[0]} #{n})"
                began = time.time()
                try:
                    result = answering.ask_and_record(Question(text=text, asker_email=person), channel="cli",
                                                      channel_type="cli")
                    cited = [c.source for c in result.answer.citations]
                    asked.append((began, time.time(), person, text, cited, None))
                except Exception as exc:   # noqa: BLE001 - every failure is reported by the test
                    asked.append((began, time.time(), person, text, [], f"{type(exc).__name__}: {exc}"))

        askers = [threading.Thread(target=ask_loop, args=(p,)) for p in SEES]
        for t in askers:
            t.start()
        time.sleep(0.5)
        rebuild_started = time.time()
        handler = RebuildHandler(container.settings, index)
        handler.handle({"cid": "t", "provider": "openai", "model": MODEL, "switch": True})   # the worker's task
        switched = time.time()
        time.sleep(1.5)
        stop.set()
        for t in askers:
            t.join(timeout=60)
        new = f"chatops__openai-{MODEL}-128"
        assert index.generation() == new and os.path.isdir(tmp / "data" / "index" / "generations" / new)
        from connectors.index.registry import generations_for

        checked = generations_for(container.settings).state(new).checked_at   # just before the switch
    finally:
        container.close()

    errors = [a for a in asked if a[5]]
    assert not errors, errors[:3]
    leaks = [(person, cited) for _, _, person, _, cited, _ in asked
             if any(not src.startswith(SEES[person]) for src in cited)]
    assert leaks == []
    cited = {p: {src.split("/")[0] for a in asked if a[2] == p for src in a[4]} for p in SEES}
    assert "runbooks" in cited[ANA] and "hr" in cited[CARLA] and cited[BEN] == {"handbook"}   # not vacuous
    during = [a for a in asked if a[0] >= rebuild_started and a[1] <= checked]
    after = [a for a in asked if a[0] > switched]
    assert len(during) >= 3 and len(after) >= 3, (len(during), len(after))
    assert all(a[4] for a in after if "restart" in a[3] and a[2] == ANA)     # answered from the new generation
    embedded_questions = {r["input"][0] for r in server.requests if len(r["input"]) == 1}
    assert all(a[3] in embedded_questions for a in after)                    # by the new embedder
    assert not any(a[3] in embedded_questions for a in asked if a[1] < checked)   # before: the local model
    print(f"\n{len(asked)} questions: {len(during)} answered during the rebuild ({checked - rebuild_started:.1f} s), "
          f"{len(after)} after the switch, 0 leaks")
