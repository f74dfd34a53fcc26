"""The ``chatops`` CLI through click's CliRunner, in process.

Real pieces throughout: the offline embedder and an embedded index in a
temporary folder, the directory provider (``demo/directory.yml``) with its
Redis cache under a unique key prefix, the audit store (SQLite in the data
folder, and PostgreSQL where it is reachable), and the real webhook connector
posting to a loopback ``FakeWebhook``. Every environment variable the settings
read is set or removed per invocation, so the developer's environment cannot
leak in; every output is checked for the secrets that were set.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from chatops_app.cli import main
from tests.actions_example import catalogue
from tests.settings_env import settings_env_names
from standins.fake_webhook import FakeWebhook

pytestmark = pytest.mark.redis

DIRECTORY = Path(__file__).resolve().parents[2] / "demo" / "directory.yml"
ANA = "ana@northwind.example"        # engineering, sre: an approver
BEN = "ben@northwind.example"        # engineering: may request, may not approve
CARLA = "carla@northwind.example"    # hr
STRANGER = "mallory@elsewhere.example"

HOOK_SECRET = "whsec-cli-7d1f0c2b9e4a4f1e8c3b"
SECRETS = {
    "RESTART_HOOK_SECRET": HOOK_SECRET,
    "SLACK_BOT_TOKEN": "xoxb-1111-2222-clitestbottoken",
    "SLACK_SIGNING_SECRET": "signing-secret-cli-3c9f1a7e",
    "SLACK_APP_TOKEN": "xapp-1-A111-2222-clitestapptoken",
    "ENTRA_CLIENT_SECRET": "entra-secret-cli-5b2d8e0f",
}

CORPUS = {
    ".acl.yml": "- match: handbook/**\n  public: true\n- match: runbooks/**\n  groups: [sre]\n",
    "handbook/vacation.md": "# Vacation policy\n\nEvery employee gets 25 days of paid vacation per year. "
                            "Unused vacation days carry over until the end of March.\n",
    "runbooks/billing/restart.md": "# Restart the billing service\n\nTo restart the billing service, "
                                   "drain the queue and then run systemctl restart billing on the app host.\n",
}
BILLING_Q = "How do I restart the billing service?"

RESTART_ARGS = '{"service": "billing", "env": "staging"}'

NOISY_LOGGERS = ("httpx", "httpcore", "urllib3", "msal", "slack_sdk", "slack_bolt")  # see chatops.logs.setup

ID = re.compile(r"\bas ([0-9a-f]{32});")


ENV_NAMES = settings_env_names() | set(SECRETS)


def catalogue_yaml(url: str) -> str:
    return catalogue(url, f"""  - name: flush_cache
    kind: webhook
    description: Flush a cache; the proposal lapses after three seconds.
    url: {url}
    secret_env: RESTART_HOOK_SECRET
    parameters: {{type: object, properties: {{}}, additionalProperties: false}}
    approvers: {{groups: [sre]}}
    expires_after: 3
""")


def write_corpus(root: Path) -> Path:
    for rel, text in CORPUS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


class Cli:
    """Runs ``chatops`` with a controlled environment and remembers every output."""

    def __init__(self, env: dict[str, str | None]):
        self.env = env
        self.outputs: list[str] = []
        self.runner = CliRunner()

    def __call__(self, *args: str, **extra_env: str | None):
        env = {**self.env, **extra_env}
        # The CLI installs its own log handler on the captured stream and sets log levels: undo that.
        loggers = [logging.getLogger(name) for name in (None, *NOISY_LOGGERS)]
        saved = [(lg, lg.handlers[:], lg.level) for lg in loggers]
        try:
            result = self.runner.invoke(main, list(args), env=env, catch_exceptions=True)
        finally:
            for lg, handlers, level in saved:
                lg.handlers[:] = handlers
                lg.setLevel(level)
        self.outputs += [result.stdout, result.stderr]
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"chatops {' '.join(args)} raised {result.exception!r}\n{result.output}") \
                from result.exception
        return result

    def assert_no_secrets(self) -> None:
        text = "\n".join(self.outputs)
        for name, value in SECRETS.items():
            assert value not in text, f"the value of {name} appeared in the CLI output"


def base_env(**overrides) -> dict[str, str | None]:
    # Remove every spelling of every variable the settings read (they match case-insensitively).
    env: dict[str, str | None] = {k: None for k in os.environ if k.upper() in ENV_NAMES}
    env.update({k: None for k in ENV_NAMES})
    env.update(SECRETS)
    env.update(
        CHATOPS_DIRECTORY_FILE=str(DIRECTORY),
        CHATOPS_IDENTITY_PROVIDER="directory",
        SLACK_API_URL="http://127.0.0.1:9/api/",   # never reached; nothing here talks to Slack
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    env.update(overrides)
    return env


def _drop_keys(prefix: str) -> None:
    try:
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        client.close()
    except redis.RedisError:
        pass


@pytest.fixture(scope="module")
def redis_up():
    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, redis_up):
    """The small corpus ingested once for the module; returns the index folder."""
    base = tmp_path_factory.mktemp("cli-index")
    corpus = write_corpus(base / "corpus")
    prefix = f"chatops-test-cli-{uuid.uuid4().hex[:8]}"
    cli = Cli(base_env(CHATOPS_DATA_DIR=str(base / "data"), CHATOPS_KEY_PREFIX=prefix))
    try:
        result = cli("ingest", str(corpus))
        assert result.exit_code == 0, result.output
        cli.assert_no_secrets()
        yield base / "data" / "index"
    finally:
        _drop_keys(prefix)


@pytest.fixture
def key_prefix():
    prefix = f"chatops-test-cli-{uuid.uuid4().hex[:8]}"
    yield prefix
    _drop_keys(prefix)


@pytest.fixture
def hook():
    with FakeWebhook() as server:
        yield server


@pytest.fixture
def cli(tmp_path, hook, key_prefix, redis_up):
    """A CLI with its own data folder, key prefix and webhook catalogue (SQLite in the data folder)."""
    config = tmp_path / "chatops.yml"
    config.write_text(catalogue_yaml(hook.url))
    runner = Cli(base_env(CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_KEY_PREFIX=key_prefix,
                          CHATOPS_CONFIG=str(config)))
    yield runner
    runner.assert_no_secrets()


@pytest.fixture
def any_db_cli(cli, backend, request):
    """``cli`` on each backend: the default SQLite file, then PostgreSQL via DATABASE_URL."""
    if backend == "postgresql":
        cli.env["DATABASE_URL"] = request.getfixturevalue("db_url")
    return cli


def propose(cli, action="restart_service", as_email=BEN, args=RESTART_ARGS) -> str:
    result = cli("propose", action, "--as", as_email, "--args", args)
    assert result.exit_code == 0, result.output
    m = ID.search(result.stdout)
    assert m, result.stdout
    return m.group(1)


def show(cli, proposal_id: str) -> dict:
    result = cli("proposals", "show", proposal_id)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def one_line_error(result, starts: str = "error:") -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(starts), result.output
    return lines[0]


# -- ingest -----------------------------------------------------------------------------


def test_ingest_prints_the_summary_and_reingest_finds_nothing_new(tmp_path, key_prefix):
    corpus = write_corpus(tmp_path / "corpus")
    (corpus / "drafts").mkdir()
    (corpus / "drafts" / "secret-plan.md").write_text("# Plan\n\nNobody may see this.\n")  # no ACL rule
    cli = Cli(base_env(CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_KEY_PREFIX=key_prefix))
    first = cli("ingest", str(corpus))
    assert first.exit_code == 0, first.output
    (line,) = first.stdout.splitlines()
    assert line.startswith(f"ingested fs:{corpus}: 2 added, 0 updated, 0 unchanged, 0 removed, ")
    assert re.search(r", [1-9]\d* chunks written", line)
    assert "1 file(s) match no .acl.yml rule" in line
    second = cli("ingest", str(corpus))
    assert second.exit_code == 0, second.output
    assert ": 0 added, 0 updated, 2 unchanged, 0 removed, 0 chunks written" in second.stdout
    assert (tmp_path / "data" / "index").is_dir()
    cli.assert_no_secrets()


def test_ingest_of_a_missing_folder_is_one_error_line(tmp_path, key_prefix):
    cli = Cli(base_env(CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_KEY_PREFIX=key_prefix))
    result = cli("ingest", str(tmp_path / "nope"))
    line = one_line_error(result)
    assert str(tmp_path / "nope") in line
    assert result.stdout == ""
    cli.assert_no_secrets()


def test_ingest_with_an_invalid_acl_rule_is_one_error_line(tmp_path, key_prefix):
    corpus = write_corpus(tmp_path / "corpus")
    (corpus / ".acl.yml").write_text("- match: handbook/**\n  colour: blue\n")
    cli = Cli(base_env(CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_KEY_PREFIX=key_prefix))
    line = one_line_error(cli("ingest", str(corpus)))
    assert ".acl.yml" in line


def test_an_invalid_action_catalogue_is_one_error_line(tmp_path, hook, key_prefix, redis_up):
    config = tmp_path / "chatops.yml"
    config.write_text(catalogue_yaml(hook.url).replace("    url: ", "    address: ", 1))
    cli = Cli(base_env(CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_KEY_PREFIX=key_prefix,
                       CHATOPS_CONFIG=str(config)))
    line = one_line_error(cli("propose", "restart_service", "--as", BEN, "--args", RESTART_ARGS))
    assert line.startswith("error: action 'restart_service': ")
    cli.assert_no_secrets()


@pytest.mark.parametrize("broken", ["acl", "config"])
def test_a_yaml_syntax_error_is_one_error_line(tmp_path, broken, key_prefix):
    corpus = write_corpus(tmp_path / "corpus")
    bad_yaml = "- match: [handbook/**\n  public: yes please\n"
    env = base_env(CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_KEY_PREFIX=key_prefix)
    if broken == "acl":
        (corpus / ".acl.yml").write_text(bad_yaml)
    else:
        (tmp_path / "chatops.yml").write_text("actions: " + bad_yaml)
        env["CHATOPS_CONFIG"] = str(tmp_path / "chatops.yml")
    line = one_line_error(Cli(env)("ingest", str(corpus)))
    assert "is not valid YAML" in line


# -- ask --------------------------------------------------------------------------------


@pytest.fixture
def ask_cli(tmp_path, indexed, key_prefix):
    runner = Cli(base_env(CHATOPS_DATA_DIR=str(tmp_path / "data"), QDRANT_PATH=str(indexed),
                          CHATOPS_KEY_PREFIX=key_prefix))
    yield runner
    runner.assert_no_secrets()


def test_ask_json_has_the_documented_shape(ask_cli):
    result = ask_cli("ask", BILLING_Q, "--as", ANA, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)   # the whole of stdout is one JSON document
    assert set(out) == {"answer", "citations", "mode"}
    assert isinstance(out["answer"], str) and "systemctl restart billing" in out["answer"]
    assert out["mode"] == "extractive"
    assert out["citations"], out
    for c in out["citations"]:
        assert set(c) == {"n", "title", "source", "url"}
        assert isinstance(c["n"], int) and isinstance(c["title"], str) and isinstance(c["source"], str)
        assert c["url"] is None or isinstance(c["url"], str)
    assert [c["n"] for c in out["citations"]] == list(range(1, len(out["citations"]) + 1))
    billing = [c for c in out["citations"] if c["source"] == "runbooks/billing/restart.md"]
    assert billing and billing[0]["title"] == "Restart the billing service" and billing[0]["url"] is None
    assert all(not Path(c["source"]).is_absolute() for c in out["citations"])


def test_ask_respects_permissions(ask_cli):
    result = ask_cli("ask", BILLING_Q, "--as", BEN, "--json")   # not in sre: the runbook is hidden
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert all(not c["source"].startswith("runbooks/") for c in out["citations"])
    assert "systemctl" not in out["answer"]


def test_ask_as_text_lists_the_sources(ask_cli):
    result = ask_cli("ask", "How many vacation days do I get?", "--as", CARLA)
    assert result.exit_code == 0, result.output
    assert "25 days" in result.stdout
    assert "Sources:" in result.stdout
    assert "[1] Vacation policy — handbook/vacation.md" in result.stdout


def test_ask_as_an_unknown_person_is_refused(ask_cli):
    result = ask_cli("ask", BILLING_Q, "--as", STRANGER)
    assert result.exit_code == 1
    assert result.stdout.startswith("refused:")
    assert "Traceback" not in result.output
    result = ask_cli("ask", BILLING_Q, "--as", STRANGER, "--json")
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["mode"] == "refused" and out["citations"] == [] and out["answer"]


# -- propose ----------------------------------------------------------------------------


def test_propose_prints_the_proposal_id(cli, hook):
    result = cli("propose", "restart_service", "--as", BEN, "--args", RESTART_ARGS)
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    assert line.startswith('proposed restart_service {"service": "billing", "env": "staging"} as ')
    assert "; approvers: group sre; expires " in line
    proposal_id = ID.search(line).group(1)
    expires = datetime.fromisoformat(line.rsplit("expires ", 1)[1])
    assert timedelta(minutes=59) < expires - datetime.now(timezone.utc) <= timedelta(hours=1)
    p = show(cli, proposal_id)["proposal"]
    assert p["state"] == "proposed" and p["requested_by_email"] == BEN and p["channel"] is None
    assert hook.requests == []   # nothing runs on proposal


@pytest.mark.parametrize("args, fragment", [
    ('{"service": "billing"}', "'env' is a required property"),
    ('{"service": "payroll", "env": "staging"}', "service: 'payroll' is not one of ['billing', 'search']"),
    ('{"service": "billing", "env": "staging", "force": true}', "Additional properties are not allowed"),
    ("not json", "the arguments are not valid JSON"),
])
def test_propose_with_invalid_arguments_fails_with_the_schema_error(cli, hook, args, fragment):
    result = cli("propose", "restart_service", "--as", BEN, "--args", args)
    assert result.exit_code == 1
    assert result.stdout.startswith("I couldn't propose restart_service: ")
    assert fragment in result.stdout
    assert "Nothing was proposed." in result.stdout
    assert cli("proposals", "list").stdout == ""


def test_propose_unknown_action_or_person(cli):
    result = cli("propose", "teleport", "--as", BEN)
    assert result.exit_code == 1 and "there is no action called 'teleport'" in result.stdout
    result = cli("propose", "restart_service", "--as", STRANGER, "--args", RESTART_ARGS)
    assert result.exit_code == 1 and result.stdout.startswith("refused:")
    assert cli("proposals", "list").stdout == ""


# -- proposals list / show --------------------------------------------------------------


def test_proposals_list_and_show(any_db_cli, hook):
    cli = any_db_cli
    first = propose(cli)
    second = propose(cli, args='{"service": "search", "env": "production"}', as_email=ANA)

    text = cli("proposals", "list")
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(second) and lines[1].startswith(first)  # newest first
    assert "proposed" in lines[1] and "restart_service" in lines[1]
    assert '{"service": "billing", "env": "staging"}' in lines[1] and lines[1].endswith(f"by {BEN}")

    as_json = cli("proposals", "list", "--state", "proposed", "--json")
    assert as_json.exit_code == 0, as_json.output
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [r["id"] for r in rows] == [second, first]
    assert rows[1]["arguments"] == {"service": "billing", "env": "staging"}
    assert rows[1]["approvers"] == {"groups": ["sre"], "users": [], "requester_alone": False}
    assert rows[1]["allow_self_approval"] is False
    datetime.fromisoformat(rows[1]["created_at"])
    datetime.fromisoformat(rows[1]["expires_at"])
    assert cli("proposals", "list", "--state", "succeeded", "--json").stdout == ""
    assert cli("proposals", "list", "--limit", "1").stdout.splitlines()[0].startswith(second)

    shown = show(cli, first)
    assert set(shown) == {"proposal", "events"}
    assert shown["proposal"]["id"] == first and shown["proposal"]["action"] == "restart_service"
    assert [e["kind"] for e in shown["events"]] == ["proposal_created"]
    assert shown["events"][0]["actor_email"] == BEN


def test_proposals_list_rejects_an_unknown_state(cli):
    result = cli("proposals", "list", "--state", "pending")
    assert result.exit_code == 2 and "Invalid value" in result.stderr


def test_proposals_show_unknown_id(cli):
    result = cli("proposals", "show", "0" * 32)
    assert result.exit_code == 1
    assert f"no proposal {'0' * 32}" in result.stderr
    assert "Traceback" not in result.output


# -- decisions from the command line ----------------------------------------------------


def test_decisions_are_off_unless_enabled(cli, hook):
    proposal_id = propose(cli)
    for args in (["approve", proposal_id, "--as", ANA], ["reject", proposal_id, "--as", ANA, "--reason", "no"]):
        line = one_line_error(cli("proposals", *args))
        assert "CHATOPS_CLI_DECISIONS=true" in line
    assert hook.requests == []
    assert show(cli, proposal_id)["proposal"]["state"] == "proposed"


def test_approval_by_an_approver_runs_the_webhook_once(any_db_cli, hook):
    cli = any_db_cli
    cli.env["CHATOPS_CLI_DECISIONS"] = "true"
    proposal_id = propose(cli)

    for outsider in (CARLA, BEN):   # not in sre; Ben is also the requester
        refused = cli("proposals", "approve", proposal_id, "--as", outsider)
        assert refused.exit_code == 1
        assert refused.stdout == "refused: You can't approve this: approvers are group sre.\n"
    stranger = cli("proposals", "approve", proposal_id, "--as", STRANGER)
    assert stranger.exit_code == 1 and stranger.stdout.startswith("refused:")
    assert hook.requests == []
    assert show(cli, proposal_id)["proposal"]["state"] == "proposed"

    approved = cli("proposals", "approve", proposal_id, "--as", ANA)
    assert approved.exit_code == 0, approved.output
    assert approved.stdout.startswith(f"{proposal_id}: succeeded — ")
    assert "HTTP 200" in approved.stdout
    assert len(hook.requests) == 1
    assert hook.verify(HOOK_SECRET)
    sent = hook.requests[0]
    assert sent.headers["idempotency-key"] == proposal_id
    assert sent.json() == {"action": "restart_service", "arguments": {"service": "billing", "env": "staging"},
                           "proposal_id": proposal_id, "requested_by": BEN, "approved_by": ANA}

    again = cli("proposals", "approve", proposal_id, "--as", ANA)
    assert again.exit_code == 1 and "already approved" in again.stdout
    assert len(hook.requests) == 1

    shown = show(cli, proposal_id)
    assert shown["proposal"]["state"] == "succeeded"
    assert shown["proposal"]["decided_by_email"] == ANA
    assert shown["proposal"]["result"]["ok"] is True
    kinds = [e["kind"] for e in shown["events"]]
    assert kinds == ["proposal_created", "click_refused", "click_refused", "approved", "executing", "succeeded"]
    approved_event = shown["events"][kinds.index("approved")]
    assert approved_event["detail"]["via"] == "cli" and approved_event["actor_email"] == ANA
    assert cli("proposals", "list", "--state", "succeeded", "--json").stdout.count(proposal_id) == 1


def test_a_failing_webhook_is_reported_as_failed(cli, hook):
    cli.env["CHATOPS_CLI_DECISIONS"] = "true"
    hook.script(422)
    proposal_id = propose(cli)
    result = cli("proposals", "approve", proposal_id, "--as", ANA)
    assert result.exit_code == 0, result.output   # the decision was recorded; the action failed
    assert result.stdout.startswith(f"{proposal_id}: failed — ") and "422" in result.stdout
    assert len(hook.requests) == 1
    assert show(cli, proposal_id)["proposal"]["state"] == "failed"


def test_reject_with_a_reason(any_db_cli, hook):
    cli = any_db_cli
    cli.env["CHATOPS_CLI_DECISIONS"] = "true"
    proposal_id = propose(cli)
    outsider = cli("proposals", "reject", proposal_id, "--as", CARLA, "--reason", "nope")
    assert outsider.exit_code == 1 and outsider.stdout.startswith("refused: You can't reject this")

    result = cli("proposals", "reject", proposal_id, "--as", ANA, "--reason", "change freeze until Monday")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{proposal_id}: rejected\n"
    shown = show(cli, proposal_id)
    assert shown["proposal"]["state"] == "rejected"
    assert shown["proposal"]["reason"] == "change freeze until Monday"
    assert shown["proposal"]["decided_by_email"] == ANA
    rejected = [e for e in shown["events"] if e["kind"] == "rejected"]
    assert len(rejected) == 1 and rejected[0]["detail"]["reason"] == "change freeze until Monday"
    assert rejected[0]["detail"]["via"] == "cli"

    late = cli("proposals", "approve", proposal_id, "--as", ANA)
    assert late.exit_code == 1 and "already rejected" in late.stdout
    assert hook.requests == []


def test_the_requester_may_withdraw_without_a_reason(cli, hook):
    cli.env["CHATOPS_CLI_DECISIONS"] = "true"
    proposal_id = propose(cli)
    result = cli("proposals", "reject", proposal_id, "--as", BEN)
    assert result.exit_code == 0, result.output
    p = show(cli, proposal_id)["proposal"]
    assert p["state"] == "rejected" and p["reason"] is None and p["decided_by_email"] == BEN


def test_proposals_expire(any_db_cli, hook):
    cli = any_db_cli
    cli.env["CHATOPS_CLI_DECISIONS"] = "true"
    lapsing = propose(cli, action="flush_cache", args="{}")
    lasting = propose(cli)
    # three seconds of headroom: on a loaded machine two CLI runs have taken more than one
    assert cli("proposals", "expire").stdout == "0 proposal(s) expired, 0 Slack message(s) updated\n"
    time.sleep(3.1)
    result = cli("proposals", "expire")
    assert result.exit_code == 0, result.output
    assert result.stdout == "1 proposal(s) expired, 0 Slack message(s) updated\n"
    assert cli("proposals", "expire").stdout == "0 proposal(s) expired, 0 Slack message(s) updated\n"
    expired = [json.loads(line)["id"] for line in
               cli("proposals", "list", "--state", "expired", "--json").stdout.splitlines()]
    assert expired == [lapsing]
    shown = show(cli, lapsing)
    assert [e["kind"] for e in shown["events"]] == ["proposal_created", "expired"]
    assert shown["events"][-1]["detail"]["via"] == "sweep"
    assert show(cli, lasting)["proposal"]["state"] == "proposed"

    late = cli("proposals", "approve", lapsing, "--as", ANA)
    assert late.exit_code == 1 and "already expired" in late.stdout
    assert hook.requests == []


def test_expire_takes_the_buttons_off_the_slack_message(cli, tmp_path, hook):
    from chatops.store import Store
    from tests.integration.harness import text_of
    from standins.fake_slack import FakeSlack

    store = Store.for_url(f"sqlite:///{tmp_path / 'data' / 'chatops.db'}")
    try:
        p = store.create_proposal(
            action="restart_service", arguments={"service": "billing", "env": "staging"},
            requested_by_slack="UBEN", requested_by_email=BEN, approvers={"groups": ["sre"]},
            allow_self_approval=False, channel="COPS", thread_ts="1700000000.000100",
            expires_at=datetime.now(timezone.utc) - timedelta(seconds=1), correlation_id=None)
        store.set_message(p.id, "1700000000.000200")
    finally:
        store.close()
    with FakeSlack() as slack:
        result = cli("proposals", "expire", SLACK_API_URL=slack.url)
        assert result.exit_code == 0, result.output
        assert result.stdout == "1 proposal(s) expired, 1 Slack message(s) updated\n"
        update = slack.wait_for("chat.update", lambda params: params.get("ts") == "1700000000.000200")
    assert update["channel"] == "COPS"
    assert "Expired before anyone approved it" in text_of(update)
    assert not [b for b in update["blocks"] if b.get("type") == "actions"]  # no buttons left
    assert hook.requests == []


# -- report -----------------------------------------------------------------------------


def test_report_counts_questions_outcomes_and_unanswered_on_each_backend(any_db_cli, indexed):
    cli = any_db_cli
    cli.env.update(QDRANT_PATH=str(indexed))
    for question in (BILLING_Q, "where is the parking garage map?", "Where is the parking garage map",
                     "hello!"):
        assert cli("ask", question, "--as", ANA).exit_code == 0
    assert cli("ask", "anything", "--as", STRANGER).exit_code == 1
    result = cli("report", "--since", "1h", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["questions"] == 4 and report["greetings"] == 1
    assert report["by_mode"]["refused"] == 1 and report["by_mode"]["no-evidence"] == 2
    assert report["refused_rate"] == 0.25 and report["no_evidence_rate"] == 0.5
    assert report["top_unanswered"][0]["count"] == 2
    assert "parking garage" in report["top_unanswered"][0]["question"].lower()
    assert "retrieval" in report["latency_ms"]
    text = cli("report", "--since", "2w")
    assert text.exit_code == 0 and "Top unanswered questions" in text.stdout
    bad = cli("report", "--since", "last tuesday")
    assert bad.exit_code == 2 and "neither an ISO date/time nor an age" in bad.output


def test_report_counts_live_tool_calls_per_tool_and_outcome_on_each_backend(any_db_cli, tmp_path):
    from chatops.store import Store
    from chatops.store.tools import ToolRecords

    cli = any_db_cli
    (tmp_path / "data").mkdir(exist_ok=True)
    store = Store.for_url(cli.env.get("DATABASE_URL") or f"sqlite:///{tmp_path / 'data' / 'chatops.db'}")
    try:
        records = ToolRecords(store)
        for tool, function, outcome, times in (("pagerduty", "get_oncall", "ok", 3), ("pagerduty", "get_oncall", "timeout", 1),
                                               ("tickets-live", "search", "error", 2), ("health", "error_rate", "refused", 1)):
            for _ in range(times):
                records.record_call(tool=tool, function=function, arguments={"service": "billing"}, outcome=outcome,
                                    duration_ms=25.0, result_chars=100, person_email=ANA)
    finally:
        store.close()
    result = cli("report", "--since", "1h", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tool_calls"] == {"health": {"refused": 1}, "pagerduty": {"ok": 3, "timeout": 1},
                                                       "tickets-live": {"error": 2}}
    text = cli("report", "--since", "1h").stdout
    assert "Live tool calls  7 in all" in text
    assert re.search(r"^  pagerduty +ok 3, timeout 1$", text, re.M) and re.search(r"^  tickets-live +error 2$", text, re.M)
    earlier = cli("report", "--since", "2h", "--until", (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat(),
                  "--json")
    assert json.loads(earlier.stdout)["tool_calls"] == {}       # none in that period
    assert "Live tool calls" not in cli("report", "--since", "2h", "--until",
                                        (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()).stdout


# -- audit export -----------------------------------------------------------------------


def test_audit_export(any_db_cli, hook, indexed):
    cli = any_db_cli
    cli.env.update(CHATOPS_CLI_DECISIONS="true", QDRANT_PATH=str(indexed))
    asked = cli("ask", BILLING_Q, "--as", ANA, "--json")
    assert asked.exit_code == 0, asked.output
    refused = cli("ask", "anything", "--as", STRANGER)
    assert refused.exit_code == 1
    proposal_id = propose(cli)
    assert cli("proposals", "approve", proposal_id, "--as", ANA).exit_code == 0
    invalid = cli("propose", "restart_service", "--as", BEN, "--args", "{}")
    assert invalid.exit_code == 1

    result = cli("audit", "export", "--since", "1h", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines and all(line.strip() for line in lines)
    events = [json.loads(line) for line in lines]    # every line one valid JSON object
    assert all(isinstance(e, dict) for e in events)
    kinds = [e["kind"] for e in events]
    assert kinds == ["question", "question", "proposal_created", "approved", "executing", "succeeded",
                     "proposal_invalid"]
    stamps = [e["at"] for e in events]
    assert stamps == sorted(stamps) and all(s.endswith("Z") for s in stamps)

    question = events[0]
    assert question["actor_email"] == ANA and question["detail"] == {"mode": "extractive"}
    assert question["question"]["question"] == BILLING_Q
    assert question["question"]["channel"] == "cli"
    assert any(c["source"] == "runbooks/billing/restart.md" for c in question["question"]["cited"])
    assert question["proposal"] is None
    assert events[1]["question"]["mode"] == "refused" and events[1]["actor_email"] == STRANGER

    for e in events[2:6]:
        assert e["proposal_id"] == proposal_id and e["question"] is None
        assert e["proposal"] == {"action": "restart_service",
                                 "arguments": {"service": "billing", "env": "staging"},
                                 "state": "succeeded"}
    assert events[6]["detail"]["action"] == "restart_service"
    assert "'service' is a required property" in " ".join(events[6]["detail"]["errors"])

    default_format = cli("audit", "export", "--since", "1h")
    assert default_format.stdout == result.stdout

    future = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    nothing = cli("audit", "export", "--since", future)
    assert nothing.exit_code == 0, nothing.output
    assert nothing.stdout == ""

    window = cli("audit", "export", "--since", "1d", "--until",
                 (datetime.now(timezone.utc) - timedelta(hours=2)).isoformat())
    assert window.exit_code == 0 and window.stdout == ""


@pytest.mark.parametrize("args", [["--since", "notadate"], ["--since", "7x"], ["--since", "1h", "--until", "soon"]])
def test_audit_export_bad_dates_are_usage_errors(cli, args):
    result = cli("audit", "export", *args)
    assert result.exit_code == 2
    assert "Invalid value" in result.stderr and "neither an ISO date/time nor an age" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_audit_export_needs_since(cli):
    result = cli("audit", "export")
    assert result.exit_code == 2 and "--since" in result.stderr


def test_verbose_logs_carry_no_secrets(cli, hook):
    """-v logs at INFO on stderr: the approval path must not log a secret (checked by the fixture)."""
    cli.env.update(CHATOPS_CLI_DECISIONS="true", CHATOPS_LOG_LEVEL="DEBUG")
    proposal_id = propose(cli)
    result = cli("-v", "proposals", "approve", proposal_id, "--as", ANA)
    assert result.exit_code == 0, result.output
    assert len(hook.requests) == 1


# -- ingest --via-workers (the end-to-end run with a worker: test_ingest_via_workers.py) -----


@pytest.fixture
def no_model(monkeypatch):
    """--via-workers must neither load the embedding model nor open the index."""
    def refuse(*_a, **_k):
        raise AssertionError("the CLI loaded the embedding model")

    monkeypatch.setattr("connectors.embeddings.local.LocalEmbedder.__init__", refuse)


def _drop_queue(queue: str) -> None:
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    client.delete(queue, f"{queue}.ingest")
    client.close()


def test_ingest_via_workers_with_no_worker_is_one_error_line(tmp_path, key_prefix, redis_up, no_model):
    corpus = write_corpus(tmp_path / "corpus")
    queue = f"chatops-test-noworker-{uuid.uuid4().hex[:8]}"
    cli = Cli(base_env(CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_KEY_PREFIX=key_prefix, CHATOPS_QUEUE=queue))
    try:
        started = time.monotonic()
        result = cli("ingest", str(corpus), "--via-workers", "--timeout", "1")
        took = time.monotonic() - started
        line = one_line_error(result)
        assert "no worker took ingest job" in line and "is `chatops worker` running" in line
        assert f"queue {queue}.ingest" in line
        assert result.exit_code == 2 and took < 10
        assert not (tmp_path / "data" / "index").exists()
        assert redis.Redis.from_url("redis://127.0.0.1:6379/0").llen(f"{queue}.ingest") == 1  # still queued
    finally:
        _drop_queue(queue)
    cli.assert_no_secrets()


def test_ingest_via_workers_no_wait_prints_the_job_id(tmp_path, key_prefix, redis_up, no_model):
    corpus = write_corpus(tmp_path / "corpus")
    queue = f"chatops-test-nowait-{uuid.uuid4().hex[:8]}"
    cli = Cli(base_env(CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_KEY_PREFIX=key_prefix, CHATOPS_QUEUE=queue))
    try:
        result = cli("ingest", str(corpus), "--via-workers", "--no-wait")
        assert result.exit_code == 0, result.output
        job = result.stdout.strip()
        assert re.fullmatch(r"[0-9a-f]{32}", job)
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        assert client.hget(f"{key_prefix}:ingest:{job}", "state") == b"queued"
        message = json.loads(client.lindex(f"{queue}.ingest", 0))
        assert message["headers"]["task"] == "chatops.ingest_plan"
        assert str(corpus) not in json.dumps(message["headers"])  # the task's arguments stay out of headers
    finally:
        _drop_queue(queue)


@pytest.mark.parametrize("option", [["--no-wait"], ["--batch-docs", "4"], ["--timeout", "3"]])
def test_via_workers_options_need_via_workers(tmp_path, key_prefix, option):
    corpus = write_corpus(tmp_path / "corpus")
    cli = Cli(base_env(CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_KEY_PREFIX=key_prefix))
    result = cli("ingest", str(corpus), *option)
    assert result.exit_code == 2 and "only with --via-workers" in result.stderr
    assert not (tmp_path / "data" / "index").exists()
