"""A configured Jira project (or Confluence space) the site does not show the account — a typo, a
deleted project, a lost permission: Atlassian answers the same for all three. ``chatops sources
sync`` says so in one line and exits non-zero; on the workers the error is the source's last
error in ``sources status`` and the chain ends (no retry loop). The loopback Jira and Confluence
over TLS, the real requests client, real Redis for the chains."""

from __future__ import annotations

import ssl
import uuid

import pytest
import redis
import requests
import trustme
import yaml

from chatops.store import Store
from chatops.store.sources import SourceStates
from connectors.index.edge_index import EdgeIndex
from connectors.sources.registry import SourceContext, open_sync_source
from tests.ingest_helpers import DIM, HashEmbedder
from tests.integration.test_cli import Cli, base_env, key_prefix  # noqa: F401 - a fixture
from standins.fake_confluence import FakeConfluence
from standins.fake_jira import FakeJira
from usecases.freshness import statuses
from usecases.sync import Budget, Sync
from workers.source_tasks import SourceChains, SourceSyncHandler

pytestmark = pytest.mark.redis


@pytest.fixture
def tls(tmp_path):
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return context, bundle


@pytest.fixture
def jira(tls):
    fake = FakeJira(projects=())
    fake.tls = tls[0]
    with fake:
        fake.add_user("acc-ana", "ana@contoso.com")
        fake.add_project("OPS", "Operations", browse=[("user", "acc-ana")])
        fake.add_issue("OPS", "Scanner outage", "The scanners stopped.")
        yield fake


def _config(path, jira: FakeJira, projects: list[str]) -> None:
    path.write_text(yaml.safe_dump({"sources": [
        {"name": "tickets", "kind": "jira", "url": jira.origin, "email": jira.email, "token_env": "JIRA_API_TOKEN",
         "projects": projects}]}))


def test_the_cli_says_which_project_is_missing_in_one_line_and_exits_non_zero(tmp_path, key_prefix, tls, jira):
    config = tmp_path / "chatops.yml"
    _config(config, jira, ["OPS", "NOPE"])
    run = Cli(base_env(CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_KEY_PREFIX=key_prefix,
                       CHATOPS_CONFIG=str(config), JIRA_API_TOKEN=jira.token, REQUESTS_CA_BUNDLE=str(tls[1])))
    line = (f"Jira source 'tickets': no project NOPE on {jira.origin} (or {jira.email} cannot browse it): "
            f"check projects: in CHATOPS_CONFIG and the account's Browse projects permission; the source's "
            f"other projects wait until then")

    synced = run("sources", "sync", "tickets")
    assert synced.exit_code == 1
    assert len(synced.stdout.splitlines()) == 1 and line in synced.stdout
    assert "Traceback" not in synced.output and "NotFound" not in synced.output
    status = run("sources", "status")
    assert f"  last error: {line}" in status.stdout.splitlines()

    _config(config, jira, ["OPS"])                        # what the line says to do
    fixed = run("sources", "sync", "tickets")
    assert fixed.exit_code == 0 and fixed.stdout.startswith("synced tickets (full): 1 added"), fixed.output
    assert "last error" not in run("sources", "status").stdout


def test_on_the_workers_the_error_is_the_sources_last_error_and_the_chain_ends(tmp_path, tls, jira, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls[1]))
    store = Store.for_url(f"sqlite:///{tmp_path / 'chatops.db'}")
    index = EdgeIndex(path=tmp_path / "index", dim=DIM, exact=True)
    states = SourceStates(store)
    spec = {"kind": "jira", "url": jira.origin, "email": jira.email, "token_env": "JIRA_API_TOKEN",
            "projects": ["OPS", "NOPE", "OPSX"]}
    source = open_sync_source("tickets", spec, SourceContext(http=requests.Session(),
                                                             environ={"JIRA_API_TOKEN": jira.token}))
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    prefix = f"chatops-test-missing-{uuid.uuid4().hex[:8]}"
    queue: list[tuple[str, dict]] = []
    handler = SourceSyncHandler(
        sync_for=lambda name: Sync(source, states, index, HashEmbedder(), kind="jira"),
        chains=SourceChains(client, prefix, lambda kind, payload: queue.append((kind, payload))),
        budget=lambda: Budget(items=50, seconds=None))
    try:
        for _tick in range(2):                             # the scheduler's ticks: each runs once, then stops
            handler.handle({"source": "tickets", "mode": "changes", "chain": None})
            runs = 0
            while queue and runs < 10:
                handler.handle(queue.pop(0)[1])
                runs += 1
            assert runs == 1 and queue == []
            assert client.get(f"{prefix}:sources:chain:tickets:changes") is None
        row = statuses(states, {"tickets": ("jira", "jira:tickets")}, max_acl_age=3600)[0]
        assert row.last_error.startswith("Jira source 'tickets': no projects NOPE, OPSX on ")
        assert "(or chatops-bot@example.com cannot browse them)" in row.last_error
        assert row.documents == 0
    finally:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        source.close()
        index.close()
        store.close()


def test_a_confluence_space_that_does_not_exist_stops_its_source_the_same_way(tmp_path, tls, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls[1]))
    cf = FakeConfluence()
    cf.tls = tls[0]
    store = Store.for_url(f"sqlite:///{tmp_path / 'chatops.db'}")
    index = EdgeIndex(path=tmp_path / "index", dim=DIM, exact=True)
    with cf:
        cf.add_user("acc-ana", "ana@contoso.com")
        cf.add_space("ENG", "Engineering", read=[("user", "acc-ana")])
        cf.add_page("ENG", "Runbook", "<p>Deploy with make deploy.</p>")
        spec = {"kind": "confluence", "url": cf.base, "email": cf.email, "token_env": "WIKI_TOKEN",
                "spaces": ["ENG", "NOPE"]}
        source = open_sync_source("wiki", spec, SourceContext(http=requests.Session(),
                                                              environ={"WIKI_TOKEN": cf.token}))
        try:
            report = Sync(source, SourceStates(store), index, HashEmbedder(), kind="confluence").run("changes")
        finally:
            source.close()
            index.close()
            store.close()
    assert report.error == (f"Confluence source 'wiki': no space NOPE on {cf.base} (or {cf.email} cannot view it): "
                            f"check spaces: in CHATOPS_CONFIG and the account's View permission on the space; "
                            f"the source's other spaces wait until then")
    assert report.added == 0 and not report.done
