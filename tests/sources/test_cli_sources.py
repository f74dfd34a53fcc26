"""``chatops sources list|sync|status`` and ``chatops ask`` against a SharePoint stand-in, as an
operator runs them: the CLI builds everything from the environment, msal and requests talk
to the loopback Entra/Graph/SharePoint over TLS (a throwaway CA through REQUESTS_CA_BUNDLE),
and the embedded index and SQLite live in a temporary data folder."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from tests.integration.test_cli import Cli, base_env, key_prefix  # noqa: F401 - a fixture
from tests.planted_files import slow_pdf
from tests.sources.conftest import CERT, tls_tenant
from tests.sources.test_sharepoint_sync import build
from standins.fake_sharepoint import user_perm

pytestmark = pytest.mark.redis


@pytest.fixture
def tenant_over_tls(tmp_path):
    with tls_tenant(tmp_path) as tenant:
        yield tenant


@pytest.fixture
def cli(tmp_path, key_prefix, tenant_over_tls):
    entra, sp, bundle = tenant_over_tls
    corpus = tmp_path / "handbook"
    corpus.mkdir()
    (corpus / ".acl.yml").write_text('- match: "**"\n  public: true\n')
    (corpus / "welcome.md").write_text("# Welcome\n\nThe handbook welcomes you.\n")
    config = tmp_path / "chatops.yml"
    config.write_text(yaml.safe_dump({"sources": [
        {"name": "eng-docs", "kind": "sharepoint", "sites": ["https://contoso.sharepoint.com/sites/engineering"]},
        {"name": "handbook", "kind": "filesystem", "path": str(corpus)},
    ]}))
    directory = tmp_path / "directory.yml"
    directory.write_text("users:\n  - {email: ana@contoso.com, groups: []}\n  - {email: bob@contoso.com, groups: []}\n")
    pem = tmp_path / "app.pem"
    pem.write_text(CERT[0] + CERT[1])
    runner = Cli(base_env(
        CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_KEY_PREFIX=key_prefix, CHATOPS_CONFIG=str(config),
        CHATOPS_DIRECTORY_FILE=str(directory), ENTRA_TENANT_ID="tenant-1", ENTRA_CLIENT_ID="client-1",
        ENTRA_CLIENT_CERTIFICATE_PATH=str(pem), ENTRA_AUTHORITY_HOST=f"{entra.origin}/login",
        ENTRA_INSTANCE_DISCOVERY="false", GRAPH_URL=f"{entra.origin}/graph/v1.0", REQUESTS_CA_BUNDLE=str(bundle)))
    yield runner, sp


def _cited(result) -> set[str]:
    return {c["title"] for c in json.loads(result.stdout)["citations"]}


def test_an_operator_syncs_checks_and_sees_a_revoked_share_disappear(cli):
    run, sp = cli
    t = build(type("T", (), {"sp": sp})())
    listed = run("sources", "list")
    assert listed.exit_code == 0 and "eng-docs" in listed.stdout and "handbook" in listed.stdout
    before = run("sources", "status")
    assert before.exit_code == 0 and "never synced" in before.stdout

    synced = run("sources", "sync", "eng-docs")
    assert synced.exit_code == 0, synced.output
    assert synced.stdout.startswith("synced eng-docs (full): 2 added, 0 updated")
    assert "skipped tools.zip: unsupported file type .zip" in synced.stderr

    asked = run("ask", "How do we work together?", "--as", "ana@contoso.com", "--json")
    assert asked.exit_code == 0 and "handbook.md" in _cited(asked)
    bob = run("ask", "What is the launch plan?", "--as", "bob@contoso.com", "--json")
    assert "plan.md" in _cited(bob)

    sp.set_perms(t["drive"], t["secret"].id, [user_perm("carol@contoso.com")])     # the share to Bob revoked
    again = run("sources", "sync", "eng-docs")
    assert again.exit_code == 0 and "1 permissions changed" in again.stdout
    bob = run("ask", "What is the launch plan?", "--as", "bob@contoso.com", "--json")
    assert "plan.md" not in _cited(bob)

    status = run("sources", "status", "--json")
    assert status.exit_code == 0
    rows = {r["name"]: r for r in json.loads(status.stdout)}
    assert rows["eng-docs"]["documents"] == 2 and rows["eng-docs"]["skipped"] == 1
    assert rows["eng-docs"]["acl_age_s"] < 60 and not rows["eng-docs"]["stale"]
    assert not rows["handbook"]["synced"]

    by_name = run("ingest", "--source", "handbook")          # = sources sync handbook --full
    assert by_name.exit_code == 0 and by_name.stdout.startswith("synced handbook (full): 1 added")
    unknown = run("sources", "sync", "nope")
    assert unknown.exit_code == 2 and "no source named 'nope'" in unknown.stderr


def test_stale_permissions_show_in_status_and_withhold_restricted_documents(cli):
    run, sp = cli
    build(type("T", (), {"sp": sp})())
    assert run("sources", "sync", "eng-docs").exit_code == 0
    run.env["CHATOPS_MAX_ACL_AGE"] = "1"
    time.sleep(1.2)
    status = run("sources", "status")
    assert status.exit_code == 1 and "STALE: restricted documents withheld" in status.stdout
    asked = run("ask", "How do we work together?", "--as", "ana@contoso.com", "--json")
    assert "handbook.md" not in _cited(asked)
    run.env["CHATOPS_MAX_ACL_AGE"] = "3600"                # a pass within the bound again: trusted
    assert "handbook.md" in _cited(run("ask", "How do we work together?", "--as", "ana@contoso.com", "--json"))


def test_a_file_that_fails_twice_is_counted_in_status(cli, tmp_path):
    run, _sp = cli
    (tmp_path / "handbook" / "bomb.pdf").write_bytes(slow_pdf())
    first = run("sources", "sync", "handbook", CHATOPS_PARSE_TIMEOUT="1")
    assert first.exit_code == 0 and "1 failed, tried again at the next sync" in first.stdout, first.output
    assert "1 skipped" in run("sources", "sync", "handbook", CHATOPS_PARSE_TIMEOUT="1").stdout
    status = run("sources", "status")
    assert "1 skipped after failing twice, 0 failed once" in status.stdout, status.stdout
    [handbook] = [s for s in json.loads(run("sources", "status", "--json").stdout) if s["name"] == "handbook"]
    assert (handbook["documents"], handbook["skipped"], handbook["failed"]) == (1, 1, 1)
