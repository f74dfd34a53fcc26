"""Every process the README and docs/cli.md name, deploy/compose.yml and deploy/k8s/ run, started for real: `chatops
serve`, `worker`, `beat`, `socket` and `admin serve`, each a process of its own with the settings from its environment, waited for until it is up, and
stopped as an orchestrator stops it (SIGTERM).

The fresh-deployment test is the one that matters most: Celery beat sends an interval entry one
interval after it starts, so without the entries that run at start a new deployment would get
its Graph subscriptions after an hour and its first documents after five minutes. Here the web
process, a worker and beat start against loopback Entra/Graph/SharePoint over TLS and Slack, and
the subscriptions must exist (Graph's validation handshake answered by the web process) within a
minute of beat starting, the first changes sync must have indexed the library, and beat's
first maintenance task must have reached the worker.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import redis
import requests
import yaml

from standins.fake_slack import FakeSlack
from standins.fake_socket_mode import FakeSocketMode, envelope
from tests.integration.processes import CHATOPS, Process, clean_env, free_port
from tests.sources.conftest import CERT, tls_tenant
from tests.sources.test_sharepoint_sync import build
from tests.standins.test_socket_mode import mention_payload

pytestmark = pytest.mark.redis

DIRECTORY = Path(__file__).resolve().parents[2] / "demo" / "directory.yml"


@pytest.fixture
def prefix(redis_prefix):
    return redis_prefix


def _counter(text: str, name: str, **labels: str) -> float:
    """A sample's value from Prometheus' text format (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(r"^(\w+)\{([^}]*)\} (\S+)$", line)
        if match and match.group(1) == name and ",".join(sorted(match.group(2).split(","))) == want:
            return float(match.group(3))
    return 0.0


def _status(env: dict) -> list[dict]:
    done = subprocess.run([CHATOPS, "sources", "status", "--json"], env=env, capture_output=True, text=True,
                          timeout=120)
    return json.loads(done.stdout) if done.stdout.strip().startswith("[") else []


def test_a_fresh_deployment_has_its_subscriptions_first_sync_and_upkeep_within_a_minute_of_beat(tmp_path, prefix):
    with tls_tenant(tmp_path) as (entra, sp, bundle), FakeSlack(bot_user_id="UBOT") as slack:
        build(type("Tenant", (), {"sp": sp})())
        web_port, health_port = free_port(), free_port()
        (tmp_path / "app.pem").write_text(CERT[0] + CERT[1])
        (tmp_path / "chatops.yml").write_text(yaml.safe_dump({"sources": [
            {"name": "eng-docs", "kind": "sharepoint", "sites": ["https://contoso.sharepoint.com/sites/engineering"]}]}))
        env = clean_env(
            REDIS_URL="redis://127.0.0.1:6379/0", CHATOPS_QUEUE=prefix, CHATOPS_KEY_PREFIX=prefix,
            CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_CONFIG=str(tmp_path / "chatops.yml"),
            CHATOPS_IDENTITY_PROVIDER="directory", CHATOPS_DIRECTORY_FILE=str(DIRECTORY),
            SLACK_BOT_TOKEN="xoxb-entry-points", SLACK_SIGNING_SECRET="entry-points-secret", SLACK_API_URL=slack.url,
            ENTRA_TENANT_ID="tenant-1", ENTRA_CLIENT_ID="client-1",
            ENTRA_CLIENT_CERTIFICATE_PATH=str(tmp_path / "app.pem"), ENTRA_AUTHORITY_HOST=f"{entra.origin}/login",
            ENTRA_INSTANCE_DISCOVERY="false", GRAPH_URL=f"{entra.origin}/graph/v1.0", REQUESTS_CA_BUNDLE=str(bundle),
            CHATOPS_PUBLIC_URL=f"http://127.0.0.1:{web_port}", GRAPH_NOTIFY_SECRET="entry-points-notify-secret",
            CHATOPS_LOG_FORMAT="text")
        # As deploy/k8s runs them: two web processes, a worker with its health port, one beat.
        web = Process(["serve", "--port", str(web_port), "--workers", "2"], env, tmp_path / "web.log")
        worker = Process(["worker", "--concurrency", "2", "--health-port", str(health_port)], env,
                         tmp_path / "worker.log")
        beat = None
        try:
            web.wait_http(f"http://127.0.0.1:{web_port}/livez")
            worker.wait_http(f"http://127.0.0.1:{health_port}/healthz")
            web.wait_http(f"http://127.0.0.1:{web_port}/healthz")   # the web process sees the worker
            assert not sp.subscriptions

            beat = Process(["beat", "--schedule-file", str(tmp_path / "beat-schedule")], env, tmp_path / "beat.log")
            beat.wait_until(lambda: sp.subscriptions, timeout=60, what="creating the Graph subscriptions")
            assert time.monotonic() - beat.started < 60
            drive = next(iter(sp.drives))
            assert [s["resource"] for s in sp.subscriptions.values()] == [f"drives/{drive}/root"]
            assert all(s["notificationUrl"].startswith(f"http://127.0.0.1:{web_port}/") for s in sp.subscriptions.values())

            # the first changes sync ran on the worker at once, not after CHATOPS_SYNC_CHANGES_EVERY
            synced = beat.wait_until(lambda: [r for r in _status(env) if r["documents"] == 2], timeout=60,
                                     what="the first changes sync indexing the library")
            assert synced[0]["name"] == "eng-docs"
            # and the upkeep's first job (proposals' expiry) reached the worker
            metrics = beat.wait_until(
                lambda: (lambda text: text if _counter(text, "chatops_tasks_total", kind="maintenance",
                                                       outcome="done") >= 1 else None)(
                    requests.get(f"http://127.0.0.1:{health_port}/metrics", timeout=5).text),
                timeout=30, what="a maintenance task done on the worker")
            assert _counter(metrics, "chatops_tasks_total", kind="source_sync", outcome="done") >= 2

            announced = beat.output()
            for line in ("every 3600 s, first at start: graph subscriptions", "every 300 s, first at start: "
                         "sync eng-docs changes", "every 900 s: sync eng-docs permissions",
                         "at 08:00 UTC daily: daily report"):
                assert line in announced
            # Graph's notifications now reach the web process and become a sync on the worker.
            assert sp.notify(sp.drives[drive]) == [202]
        finally:
            codes = {p.args[0]: p.stop() for p in (beat, worker, web) if p is not None}
        assert codes == {"beat": 0, "worker": 0, "serve": 0}, codes


def test_beat_without_sources_schedules_the_upkeep_and_keeps_running(tmp_path, prefix):
    env = clean_env(REDIS_URL="redis://127.0.0.1:6379/0", CHATOPS_QUEUE=prefix, CHATOPS_KEY_PREFIX=prefix,
                    CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_REPORT_HOUR="6", CHATOPS_LOG_FORMAT="text")
    beat = Process(["beat"], env, tmp_path / "beat.log")
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        # the upkeep's first job is queued for the workers (none runs here) as soon as beat starts
        beat.wait_until(lambda: client.llen(f"{prefix}.ingest"), timeout=30, what="queueing the proposals' expiry")
        message = json.loads(client.lindex(f"{prefix}.ingest", 0))
        assert message["headers"]["task"].endswith("maintenance")
        assert "expire_proposals" in json.dumps(message)
        assert (tmp_path / "data" / "celerybeat-schedule").exists() or \
            list((tmp_path / "data").glob("celerybeat-schedule*"))
        assert "at 06:00 UTC daily: daily report" in beat.output()
        time.sleep(2)
        assert beat.proc.poll() is None, beat.output()
    finally:
        assert beat.stop() == 0, beat.output()


def test_serve_answers_its_probes_and_slack(tmp_path, prefix):
    with FakeSlack(bot_user_id="UBOT") as slack:
        port = free_port()
        env = clean_env(REDIS_URL="redis://127.0.0.1:6379/0", CHATOPS_QUEUE=prefix, CHATOPS_KEY_PREFIX=prefix,
                        CHATOPS_DATA_DIR=str(tmp_path / "data"), SLACK_BOT_TOKEN="xoxb-entry-points",
                        SLACK_SIGNING_SECRET="entry-points-secret", SLACK_API_URL=slack.url)
        web = Process(["serve", "--port", str(port)], env, tmp_path / "web.log")
        try:
            web.wait_http(f"http://127.0.0.1:{port}/livez")
            assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
            # no worker has been seen: /healthz says so
            assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 503
            unsigned = requests.post(f"http://127.0.0.1:{port}/slack/events", json={"type": "url_verification",
                                                                                    "challenge": "x"}, timeout=5)
            assert unsigned.status_code == 401
        finally:
            assert web.stop() == 0, web.output()


def test_admin_serve_signs_in_with_a_one_time_link(tmp_path, prefix):
    port = free_port()
    env = clean_env(REDIS_URL="redis://127.0.0.1:6379/0", CHATOPS_KEY_PREFIX=prefix,
                    CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_PUBLIC_URL=f"http://127.0.0.1:{port}")
    console = Process(["admin", "serve", "--port", str(port)], env, tmp_path / "console.log")
    try:
        console.wait_http(f"http://127.0.0.1:{port}/livez")
        assert requests.get(f"http://127.0.0.1:{port}/admin/", timeout=5, allow_redirects=False).status_code in (
            302, 303, 401, 403)
        link = subprocess.run([CHATOPS, "admin", "link", "--as", "Ana Ops"], env=env, capture_output=True,
                              text=True, timeout=60)
        assert link.returncode == 0, link.stderr
        browser = requests.Session()
        confirm = browser.get(link.stdout.strip(), timeout=10)     # opening the link spends nothing ...
        assert confirm.status_code == 200 and "Overview" not in confirm.text
        fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', confirm.text))
        page = browser.post(f"http://127.0.0.1:{port}/admin/auth/link", data=fields, timeout=10)
        assert page.status_code == 200 and "Overview" in page.text and "Ana Ops" in page.text   # ... the click does
    finally:
        assert console.stop() == 0, console.output()


def test_socket_connects_acknowledges_and_queues_a_mention_and_survives_a_refresh(tmp_path, prefix):
    """`chatops socket` as compose runs it: Slack's Socket Mode (a loopback server) hands it an
    @-mention, it acknowledges the envelope and the question reaches the queue; then Slack
    refreshes the connection and the next envelope arrives on the new one."""
    with FakeSocketMode() as socket_server, FakeSlack(bot_user_id="UBOT") as slack:
        slack.socket_url = socket_server.url
        env = clean_env(REDIS_URL="redis://127.0.0.1:6379/0", CHATOPS_QUEUE=prefix, CHATOPS_KEY_PREFIX=prefix,
                        CHATOPS_DATA_DIR=str(tmp_path / "data"), SLACK_BOT_TOKEN="xoxb-entry-points",
                        SLACK_APP_TOKEN="xapp-1-A123-entry-points", SLACK_API_URL=slack.url)
        socket = Process(["socket"], env, tmp_path / "socket.log")
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        try:
            socket.wait_until(lambda: socket_server.connections, timeout=60, what="connecting to Socket Mode")
            first = envelope(mention_payload("where is the VPN guide?"), "env-entry-1")
            socket_server.send(first)
            assert socket_server.wait_for_ack("env-entry-1").ack_seconds < 3.0
            socket.wait_until(lambda: client.llen(prefix), timeout=10, what="queueing the question")
            old = socket_server.current()
            socket_server.send_on_next_connection(envelope(mention_payload("and the wiki?"), "env-entry-2"))
            socket_server.refresh()
            delivery = socket_server.wait_for_ack("env-entry-2")
            assert delivery.acked_on == old.number + 1 and delivery.ack_seconds < 3.0
            socket.wait_until(lambda: client.llen(prefix) == 2, timeout=10, what="queueing the second question")
        finally:
            assert socket.stop() == 0, socket.output()
