"""``chatops doctor`` against the stand-ins: a deployment in order passes every check, and each
fault an operator meets in practice is one FAIL line that says what is wrong and what to do, with
exit status 1: a Slack token missing a scope, a refused token, another app's id, a model the server
does not offer, an Entra app missing a Graph permission, an index built with another embedder, a
database behind the code's schema, Redis down, no worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
import yaml
from alembic import command

from chatops.store import Store
from chatops.store.store import alembic_config
from connectors.index.edge_index import EdgeIndex
from standins.fake_openai import FakeOpenAI
from standins.fake_slack import FakeSlack
from standins.fake_webhook import FakeWebhook
from tests.actions_example import catalogue
from tests.integration.test_cli import SECRETS, Cli, base_env, key_prefix  # noqa: F401 - a fixture
from tests.sources.conftest import tls_tenant
from workers.health import Health, record_beat

pytestmark = pytest.mark.redis

BOT_TOKEN = "xoxb-4242-doctor-bot-token-7f3e"
SIGNING_SECRET = "8f14e45fceea167a5a36dedd4bea2543"


@pytest.fixture
def deployment(tmp_path, key_prefix):
    """Slack, a model server and a webhook on loopback, a small index, and the settings for them."""
    try:
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=1)
        client.ping()
    except redis.RedisError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    with FakeSlack(bot_token=BOT_TOKEN, app_id="A0DOCTOR") as slack, \
            FakeOpenAI(models=["gpt-doctor", "gpt-doctor-mini"], api_key="sk-doctor-key") as llm, FakeWebhook() as hook:
        slack.socket_url = "wss://wss-primary.slack.invalid/link"
        corpus = tmp_path / "corpus"
        corpus.mkdir()
        (corpus / ".acl.yml").write_text('- match: "**"\n  public: true\n')
        (corpus / "vpn.md").write_text("# VPN\n\nConnect with the corporate client and your badge number.\n")
        config = tmp_path / "chatops.yml"
        config.write_text(catalogue(hook.url))
        env = base_env(CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_KEY_PREFIX=key_prefix,
                       CHATOPS_CONFIG=str(config), SLACK_API_URL=slack.url, SLACK_BOT_TOKEN=BOT_TOKEN,
                       SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_APP_ID="A0DOCTOR",
                       OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="sk-doctor-key", CHATOPS_LLM_MODEL="gpt-doctor",
                       CHATOPS_LLM_MODEL_SMALL="gpt-doctor-mini")
        cli = Cli(env)
        assert cli("ingest", str(corpus)).exit_code == 0
        Store.for_url(f"sqlite:///{tmp_path / 'data' / 'chatops.db'}").close()   # as the worker does at start
        health = Health(client, key_prefix, name="worker-1")
        health.tick()
        health.publish()
        record_beat(client, key_prefix)
        yield type("Deployment", (), {"cli": cli, "slack": slack, "llm": llm, "hook": hook, "env": env,
                                      "tmp": tmp_path, "prefix": key_prefix, "redis": client})
        cli.assert_no_secrets()


def doctor(cli, **env) -> tuple[int, dict[str, dict]]:
    result = cli("doctor", "--json", **env)
    assert result.stdout.startswith("{"), result.output
    report = json.loads(result.stdout)
    assert report["ok"] == (result.exit_code == 0)
    return result.exit_code, {c["check"]: c for c in report["checks"]}


def test_a_deployment_in_order_passes_every_check(deployment):
    code, checks = doctor(deployment.cli)
    assert code == 0, [c for c in checks.values() if c["status"] != "ok"]
    assert {name: c["status"] for name, c in checks.items()} == {
        "slack bot token": "ok", "slack scopes": "ok", "slack requests": "ok", "slack app and workspace": "ok",
        "redis": "ok", "database": "ok", "index": "ok", "language model": "ok", "identity": "ok", "configuration": "ok",
        "action restart_service": "ok", "workers": "ok", "beat": "ok"}
    assert "bot UBOT" in checks["slack bot token"]["detail"]
    assert "app A0DOCTOR" in checks["slack app and workspace"]["detail"]
    assert "built with local:sentence-transformers/all-MiniLM-L6-v2 (384 dims)" in checks["index"]["detail"]
    assert "gpt-doctor listed, gpt-doctor-mini listed" in checks["language model"]["detail"]
    assert "schema 0006 (the latest)" in checks["database"]["detail"]
    assert deployment.hook.requests == []     # the webhook was reached, nothing was run
    # the text form: one line per check and a summary
    text = deployment.cli("doctor")
    assert text.exit_code == 0
    lines = text.stdout.strip().splitlines()
    assert len(lines) == len(checks) + 1 and lines[-1].startswith("no problems found: 13 ok, 0 warnings")
    assert any(line.startswith("ok    slack scopes") for line in lines)


def test_a_slack_token_missing_a_scope_fails_naming_it_and_what_needs_it(deployment):
    deployment.slack.scopes.discard("usergroups:read")
    code, checks = doctor(deployment.cli)
    assert code == 1
    scopes = checks["slack scopes"]
    assert scopes["status"] == "fail"
    assert "usergroups:read (for usergroups.users.list)" in scopes["detail"]
    assert "reinstall" in scopes["fix"]
    line = next(x for x in deployment.cli("doctor").stdout.splitlines() if "slack scopes" in x)
    assert line.startswith("FAIL") and "usergroups:read" in line and "reinstall" in line


def test_a_refused_token_and_another_apps_id(deployment):
    code, checks = doctor(deployment.cli, SLACK_BOT_TOKEN="xoxb-4242-revoked-token-0000")
    assert code == 1
    assert checks["slack bot token"]["status"] == "fail" and "invalid_auth" in checks["slack bot token"]["detail"]
    assert checks["slack scopes"]["status"] == "skip"      # not checked twice
    code, checks = doctor(deployment.cli, SLACK_APP_ID="A0OTHER")
    assert code == 1
    app = checks["slack app and workspace"]
    assert app["status"] == "fail" and "belongs to app A0DOCTOR" in app["detail"]
    assert app["fix"] == "set SLACK_APP_ID=A0DOCTOR, or SLACK_BOT_TOKEN to app A0OTHER's token"
    code, checks = doctor(deployment.cli, SLACK_SIGNING_SECRET="not-a-signing-secret")
    assert checks["slack requests"]["status"] == "fail"


def test_a_model_the_server_does_not_offer_and_a_wrong_key(deployment):
    code, checks = doctor(deployment.cli, CHATOPS_LLM_MODEL="gpt-missing")
    assert code == 1
    model = checks["language model"]
    assert model["status"] == "fail" and "does not offer gpt-missing" in model["detail"]
    assert "gpt-doctor" in model["detail"]          # what it does offer
    code, checks = doctor(deployment.cli, OPENAI_API_KEY="sk-wrong-key")
    assert checks["language model"]["status"] == "fail" and "401" in checks["language model"]["detail"]


def test_an_index_built_with_another_embedder(deployment):
    other = deployment.tmp / "other-index"
    index = EdgeIndex(path=other, dim=384, embedder="intfloat/multilingual-e5-small")
    index.ensure_collection()
    index.close()
    code, checks = doctor(deployment.cli, QDRANT_PATH=str(other))
    assert code == 1
    assert checks["index"]["status"] == "fail"
    assert ("the index was built with local:intfloat/multilingual-e5-small (384 dims) but CHATOPS_EMBEDDING_* "
            "configure local:sentence-transformers/all-MiniLM-L6-v2 (384 dims)") in checks["index"]["detail"]
    code, checks = doctor(deployment.cli, QDRANT_PATH=str(deployment.tmp / "nowhere"))
    assert checks["index"]["status"] == "fail" and "no index" in checks["index"]["detail"]


def test_a_database_behind_the_code(deployment):
    url = f"sqlite:///{deployment.tmp / 'old.db'}"
    store = Store(url)
    with store.engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0002")
    store.close()
    code, checks = doctor(deployment.cli, DATABASE_URL=url)
    assert code == 1
    assert checks["database"]["status"] == "fail"
    assert "is at schema 0002; this release needs 0006" in checks["database"]["detail"]
    assert Store(url).schema() == ("0002", "0006")       # the doctor changed nothing


def test_redis_down_and_no_worker(deployment):
    code, checks = doctor(deployment.cli, REDIS_URL="redis://127.0.0.1:9/0")
    assert code == 1
    assert checks["redis"]["status"] == "fail" and "cannot reach Redis at redis://127.0.0.1:9/0" in checks["redis"]["detail"]
    deployment.redis.delete(f"{deployment.prefix}:workers")
    code, checks = doctor(deployment.cli)
    assert code == 1
    assert checks["workers"]["status"] == "fail" and "start chatops worker" in checks["workers"]["fix"]


def test_an_entra_app_missing_a_graph_permission(deployment, tmp_path):
    with tls_tenant(tmp_path) as (entra, sp, bundle):
        entra.users["ana@contoso.com"] = {"id": "id-ana", "displayName": "Ana", "groups": []}
        env = dict(CHATOPS_IDENTITY_PROVIDER="entra", ENTRA_TENANT_ID="tenant-1", ENTRA_CLIENT_ID="client-1",
                   ENTRA_CLIENT_SECRET="secret-1", ENTRA_AUTHORITY_HOST=f"{entra.origin}/login",
                   ENTRA_INSTANCE_DISCOVERY="false", GRAPH_URL=f"{entra.origin}/graph/v1.0",
                   REQUESTS_CA_BUNDLE=str(bundle))
        # the catalogue's group names are not Entra object ids: one failed check, the others still run
        code, checks = doctor(deployment.cli, **env)
        assert code == 1 and checks["configuration"]["status"] == "fail"
        assert "group 'sre' is neither an alias" in checks["configuration"]["detail"]
        assert checks["identity"]["status"] == "ok" and "action restart_service" not in checks
        env["CHATOPS_CONFIG"] = None
        code, checks = doctor(deployment.cli, **env)
        assert checks["identity"]["status"] == "ok", checks["identity"]
        assert "GroupMember.Read.All" in checks["identity"]["detail"]
        entra.app_roles["graph"] = ["User.Read.All"]          # consent to GroupMember.Read.All withdrawn
        code, checks = doctor(deployment.cli, **env)
        assert code == 1
        identity = checks["identity"]
        assert identity["status"] == "fail"
        assert "GroupMember.Read.All" in identity["detail"] and "transitiveMemberOf" in identity["detail"]
        assert "admin consent" in identity["fix"]
        code, checks = doctor(deployment.cli, **{**env, "ENTRA_CLIENT_SECRET": "wrong-secret"})
        assert checks["identity"]["status"] == "fail" and "invalid_client" in checks["identity"]["detail"]


def test_nothing_secret_is_printed(deployment):
    text = deployment.cli("doctor").stdout + deployment.cli("doctor", "--json").stdout
    for value in (BOT_TOKEN, SIGNING_SECRET, "sk-doctor-key", *SECRETS.values()):
        assert value not in text
    assert Path(deployment.tmp / "data" / "chatops.db").exists()
    assert yaml.safe_load((deployment.tmp / "chatops.yml").read_text())["actions"]


def test_sources_are_checked_with_their_credentials(deployment, tmp_path):
    """A SharePoint site through Graph and SharePoint REST (the certificate, the app's permissions),
    and a Jira project that is not there, each on its own line."""
    from standins.fake_jira import FakeJira
    from tests.sources.conftest import CERT
    from tests.sources.test_sharepoint_sync import build

    with tls_tenant(tmp_path) as (entra, sp, bundle):
        jira = FakeJira()
        jira.tls = entra.tls                      # the same throwaway CA, REQUESTS_CA_BUNDLE trusts it
        jira.start()
        build(type("Tenant", (), {"sp": sp})())
        jira.add_user("acc-ana", "ana@contoso.com")
        jira.add_project("OPS", "Operations", browse=[("user", "acc-ana")])
        (tmp_path / "app.pem").write_text(CERT[0] + CERT[1])
        config = tmp_path / "sources.yml"
        config.write_text(yaml.safe_dump({"sources": [
            {"name": "eng-docs", "kind": "sharepoint", "sites": ["https://contoso.sharepoint.com/sites/engineering"]},
            {"name": "tickets", "kind": "jira", "url": jira.origin, "email": jira.email,
             "token_env": "JIRA_API_TOKEN", "projects": ["OPS", "OPSX"]}]}))
        env = dict(CHATOPS_CONFIG=str(config), ENTRA_TENANT_ID="tenant-1", ENTRA_CLIENT_ID="client-1",
                   ENTRA_CLIENT_SECRET=None, ENTRA_CLIENT_CERTIFICATE_PATH=str(tmp_path / "app.pem"),
                   ENTRA_AUTHORITY_HOST=f"{entra.origin}/login", ENTRA_INSTANCE_DISCOVERY="false",
                   GRAPH_URL=f"{entra.origin}/graph/v1.0", REQUESTS_CA_BUNDLE=str(bundle),
                   JIRA_API_TOKEN=jira.token)
        deployment.redis.delete(f"{deployment.prefix}:beat")
        code, checks = doctor(deployment.cli, **env)
        assert code == 1, checks          # the Jira project, and beat: sources are configured and none runs
        assert checks.get("source eng-docs", {}).get("status") == "ok", [c for c in checks.values() if c["status"] != "ok"]
        assert "1 site(s)" in checks["source eng-docs"]["detail"] and "site groups readable" in checks["source eng-docs"]["detail"]
        assert checks["entra certificate"]["status"] == "ok"
        tickets = checks["source tickets"]
        assert tickets["status"] == "fail" and "no project OPSX" in tickets["detail"]
        assert "check projects: in CHATOPS_CONFIG" in tickets["fix"]
        assert checks["beat"]["status"] == "fail"
        entra.app_roles["graph"] = ["User.Read.All", "GroupMember.Read.All"]   # no Sites.*, no Files.*
        entra.app_roles["sharepoint"] = []
        code, checks = doctor(deployment.cli, **env)
        source = checks["source eng-docs"]
        assert source["status"] == "fail" and "Sites.Selected" in source["detail"], source
        jira.stop()


def test_a_live_tool_is_checked_and_warns_until_approved(deployment):
    from standins.fake_prometheus import FakePrometheus

    config = Path(deployment.env["CHATOPS_CONFIG"])
    with FakePrometheus() as prom:
        config.write_text(config.read_text() + f"""
tools:
  - name: health
    kind: prometheus
    url: {prom.origin}
    queries: {{error_rate: 'sum(rate(http_requests_total{{service="$service",code=~"5.."}}[5m]))'}}
    params: {{service: {{enum: [billing, checkout]}}}}
""")
        code, checks = doctor(deployment.cli)
        assert checks["tool health"]["status"] == "warn"
        assert "not approved yet, so not offered: error_rate" in checks["tool health"]["detail"]
        assert "chatops tools approve health" in checks["tool health"]["fix"]
        assert deployment.cli("tools", "approve", "health").exit_code == 0
        code, checks = doctor(deployment.cli)
        assert checks["tool health"]["status"] == "ok"
        assert checks["tool health"]["detail"].startswith("Prometheus ") and "offered: error_rate" in checks["tool health"]["detail"]
    code, checks = doctor(deployment.cli)      # the server gone: one FAIL line saying so
    assert code == 1 and checks["tool health"]["status"] == "fail"
