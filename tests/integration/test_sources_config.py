"""The ``sources:`` of CHATOPS_CONFIG: checked at start-up; ``ingest --source NAME`` is the source's
full sync (the CLI through CliRunner, a real embedded index)."""

from __future__ import annotations

import pytest
import yaml

from chatops.errors import ConfigError
from chatops.settings import Settings
from chatops_app.container import Container
from connectors.sources.registry import configured_sources
from tests.integration.test_cli import Cli, base_env, key_prefix, write_corpus  # noqa: F401 - a fixture

pytestmark = pytest.mark.redis


@pytest.mark.parametrize("entry, named", [
    ({"name": "docs", "kind": "sharepoint-2003", "path": "/x"}, "source 'docs': kind: unknown source kind"),
    ({"name": "docs", "kind": "filesystem"}, "source 'docs': path: Field required"),
    ({"name": "docs", "kind": "filesystem", "path": "/x", "patth": "/y"}, "source 'docs': patth: Extra inputs"),
    ({"kind": "filesystem", "path": "/x"}, "source 1: name:"),
])
def test_a_mistake_in_a_source_names_the_source_and_the_field(entry, named):
    with pytest.raises(ConfigError, match=named):
        configured_sources([entry])


def test_a_source_defined_twice_is_refused():
    entry = {"name": "docs", "kind": "filesystem", "path": "/x"}
    with pytest.raises(ConfigError, match="defined twice"):
        configured_sources([entry, entry])


def test_the_processes_stop_at_start_up_on_a_bad_source(tmp_path):
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"sources": [{"name": "wiki", "kind": "filesystem", "url": "x"}]}))
    container = Container(Settings.load(CHATOPS_CONFIG=str(config), SLACK_BOT_TOKEN="xoxb-x",
                                        SLACK_SIGNING_SECRET="s", SLACK_API_URL="http://127.0.0.1:9/api/"))
    with pytest.raises(ConfigError, match="source 'wiki'"):
        container.web_app()


@pytest.mark.parametrize("entry, named", [
    ({"name": "eng", "kind": "sharepoint"}, "source 'eng': name at least one site"),
    ({"name": "eng", "kind": "sharepoint", "sites": ["contoso.sharepoint.com/sites/x"]},
     "source 'eng': sites: 'contoso.sharepoint.com/sites/x' is not a site URL"),
    ({"name": "eng", "kind": "sharepoint", "sites": ["https://c.sharepoint.com/sites/x"], "organisation_links": 1},
     "source 'eng': organisation_links: Extra inputs"),
    ({"name": "eng", "kind": "sharepoint", "onedrive_users": ["alice"]}, "source 'eng': onedrive_users: 'alice' is not a user principal name"),
])
def test_a_mistake_in_a_sharepoint_source_names_the_field(entry, named):
    with pytest.raises(ConfigError, match=named):
        configured_sources([entry])


def test_a_sharepoint_source_without_the_entra_app_stops_the_start(tmp_path):
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"sources": [
        {"name": "eng", "kind": "sharepoint", "sites": ["https://contoso.sharepoint.com/sites/eng"]}]}))
    container = Container(Settings.load(CHATOPS_CONFIG=str(config), SLACK_BOT_TOKEN="xoxb-x",
                                        SLACK_SIGNING_SECRET="s", SLACK_API_URL="http://127.0.0.1:9/api/",
                                        ENTRA_TENANT_ID=None, ENTRA_CLIENT_ID=None))
    with pytest.raises(ConfigError, match="source 'eng': a SharePoint source needs the Entra app"):
        container.web_app()


WIKI = {"name": "wiki", "kind": "confluence", "url": "https://contoso.atlassian.net/wiki",
        "email": "svc-chatops@contoso.com", "token_env": "CHATOPS_TEST_CONFLUENCE_TOKEN"}


@pytest.mark.parametrize("change, named", [
    ({"url": "http://contoso.atlassian.net/wiki"}, "source 'wiki': url: 'http://contoso.atlassian.net/wiki' is not"),
    ({"email": "svc"}, "source 'wiki': email: 'svc' is not the email"),
    ({"token_env": "ATATT3xFfGF0-secret"}, "source 'wiki': token_env: 'ATATT3xFfGF0-secret' is not an environment"),
    ({"spaces": []}, "source 'wiki': spaces: name at least one space key"),
    ({"token": "x"}, "source 'wiki': token: Extra inputs"),
])
def test_a_mistake_in_a_confluence_source_names_the_field(change, named):
    with pytest.raises(ConfigError, match=named):
        configured_sources([{**WIKI, **change}])


def test_a_confluence_source_whose_token_is_not_in_the_environment_stops_the_start(tmp_path, monkeypatch):
    monkeypatch.delenv("CHATOPS_TEST_CONFLUENCE_TOKEN", raising=False)
    settings = Settings.load(SLACK_BOT_TOKEN="xoxb-x")
    with pytest.raises(ConfigError, match="source 'wiki': token_env: the environment variable "
                                          "CHATOPS_TEST_CONFLUENCE_TOKEN .* is not set"):
        configured_sources([WIKI], settings)
    monkeypatch.setenv("CHATOPS_TEST_CONFLUENCE_TOKEN", "tok")
    assert configured_sources([WIKI], settings)["wiki"]["url"] == "https://contoso.atlassian.net/wiki"


def test_ingest_by_source_name_is_its_full_sync(tmp_path, key_prefix):
    corpus = write_corpus(tmp_path / "corpus")
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"sources": [{"name": "handbook", "kind": "filesystem", "path": str(corpus)}]}))
    cli = Cli(base_env(CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_KEY_PREFIX=key_prefix,
                       CHATOPS_CONFIG=str(config)))
    by_name = cli("ingest", "--source", "handbook")
    assert by_name.exit_code == 0, by_name.output
    assert by_name.stdout.startswith("synced handbook (full): ") and " added, " in by_name.stdout
    again = cli("sources", "sync", "handbook")                 # nothing changed since
    assert again.exit_code == 0 and " 0 added, 0 updated, 0 permissions changed, 0 deleted" in again.stdout
    unknown = cli("ingest", "--source", "nope")
    assert unknown.exit_code == 2 and "no source named 'nope'" in unknown.stderr
    both = cli("ingest", str(corpus), "--source", "handbook")
    assert both.exit_code == 2 and "one of them" in both.output
