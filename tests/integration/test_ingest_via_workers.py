"""End to end: ``chatops ingest --via-workers`` through a real ``chatops worker`` process.

The worker holds the embedded index (so a one-process ingest could not run beside it); the
CLI sends the plan task and follows the job in Redis. The result is compared with a
one-process ``chatops ingest`` of the same folder into a second index: the same summary line,
the same chunk ids and document hashes, the same answer. Then one file changes and one is
deleted: only that file is re-embedded, and the deleted one leaves the index.
"""

from __future__ import annotations

import json
import re

import pytest
import redis

from connectors.index.edge_index import EdgeIndex
from connectors.sources.chunking import chunk_document
from connectors.sources.filesystem.connector import FilesystemSource
from tests.ingest_helpers import index_points
from tests.integration.harness import BOT, System

pytestmark = pytest.mark.redis

ENG = "UENG"
CORPUS = {
    ".acl.yml": '- match: "handbook/**"\n  public: true\n- match: "runbooks/**"\n  groups: [engineering]\n'
                '- match: "hr/**"\n  groups: [hr]\n',
    "handbook/vacation.md": "# Vacation policy\n\nEveryone gets 27 days of paid vacation per calendar year.\n",
    "handbook/expenses.md": "# Expenses\n\nReceipts go to finance within 30 days of the purchase.\n",
    "runbooks/restart-billing.md": "# Restart the billing service\n\n## Steps\n\nDrain the billing queue with "
                                   "`billctl drain`, then run `billctl restart --graceful` on the billing-7 "
                                   "cluster.\n",
    "hr/salary-bands.md": "# Salary bands\n\nThe L5 salary band runs from 121,000 to 152,000 EUR.\n",
}
DIRECTORY = f"users:\n  - {{email: eng@corp.example, slack_id: {ENG}, groups: [engineering]}}\n"
QUESTION = "How do I restart the billing service?"
SUMMARY = re.compile(r"^ingested fs:\S+: \d+ added, \d+ updated, \d+ unchanged, \d+ removed, \d+ chunks written$")


def _reply(request: dict) -> str:
    titles = re.findall(r'<source n="(\d+)" title="([^"]*)"', request["messages"][-1]["content"])
    return f"According to {titles[0][1]} [{titles[0][0]}]." if titles else "Not found."


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    s = System.start(tmp_path_factory.mktemp("via-workers"), corpus=CORPUS, directory=DIRECTORY, reply=_reply,
                     users={ENG: {"id": ENG, "profile": {"email": "eng@corp.example"}},
                            BOT: {"id": BOT, "is_bot": True, "profile": {}}},
                     channels={"CENG": [ENG, BOT]}, ingest=False)
    yield s
    s.stop()


def via_workers(system) -> str:
    done = system.cli("ingest", str(system.root / "corpus"), "--via-workers", "--batch-docs", "2",
                      "--timeout", "120", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert SUMMARY.match(done.stdout.strip()), done.stdout
    return done.stdout.strip()


def one_process(system) -> str:
    """The same folder ingested in one process into the reference index (root/ref)."""
    done = system.cli("ingest", str(system.root / "corpus"), CHATOPS_DATA_DIR=str(system.root / "ref"))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def points(folder):
    index = EdgeIndex(path=folder, dim=384)
    try:
        return index_points(index)
    finally:
        index.close()


def ask(system, data_dir: str) -> dict:
    done = system.cli("ask", QUESTION, "--as", "eng@corp.example", "--json", CHATOPS_DATA_DIR=data_dir)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def last_job_batches(system) -> dict[str, list[str]]:
    r = redis.Redis.from_url(system.env["REDIS_URL"])
    prefix = system.env["CHATOPS_KEY_PREFIX"]
    jobs = [k.decode().removesuffix(":batches") for k in r.scan_iter(f"{prefix}:ingest:*:batches")]
    latest = max(jobs, key=lambda key: float(r.hget(key, "created")))
    return {k.decode(): json.loads(v) for k, v in r.hgetall(f"{latest}:batches").items()}


def test_ingest_through_the_workers_matches_one_process_ingest(system):
    root = system.root
    corpus = (root / "corpus").resolve()

    first = via_workers(system)
    assert first.startswith(f"ingested fs:{corpus}: 4 added, 0 updated, 0 unchanged, 0 removed, ")
    assert sorted(last_job_batches(system).values()) == [
        ["handbook/expenses.md", "handbook/vacation.md"], ["hr/salary-bands.md", "runbooks/restart-billing.md"]]

    # The worker answers from what it has just written into its own index.
    event = system.mention("CENG", ENG, QUESTION.lower())
    assert system.post_event(event).status_code == 200
    assert "runbooks/restart-billing.md" in system.final_reply("CENG", event["ts"], timeout=60)

    system.stop_worker()  # releases the embedded index, so it can be read here
    assert one_process(system) == first
    assert points(root / "data" / "index") == points(root / "ref" / "index")
    assert ask(system, str(root / "data")) == ask(system, str(root / "ref"))

    system.start_worker()
    (root / "corpus" / "runbooks/restart-billing.md").write_text(
        "# Restart the billing service\n\nRun `billctl restart --graceful` on the billing-9 cluster.\n")
    (root / "corpus" / "hr/salary-bands.md").unlink()
    changed = FilesystemSource(corpus)
    doc = next(changed.documents(only=["runbooks/restart-billing.md"]))
    n = len(chunk_document(doc, changed.source_id))

    second = via_workers(system)
    assert second == f"ingested fs:{corpus}: 0 added, 1 updated, 2 unchanged, 1 removed, {n} chunks written"
    assert last_job_batches(system) == {"b00000": ["runbooks/restart-billing.md"]}  # nothing else re-embedded

    system.stop_worker()
    assert one_process(system) == second
    after = points(root / "data" / "index")
    assert after == points(root / "ref" / "index")
    assert {d for d, _, _ in after.values()} == {"handbook/vacation.md", "handbook/expenses.md",
                                                 "runbooks/restart-billing.md"}
    assert {h for d, h, _ in after.values() if d == "runbooks/restart-billing.md"} == {doc.content_hash}

    logged = system.log_lines()
    assert not [line for line in logged if line["level"] in ("error", "critical")]
    written = [line for line in logged if line["msg"] == "ingest batch written"]
    assert len(written) == 3 and all(line.get("correlation_id") for line in written)  # the job id
