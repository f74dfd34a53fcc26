"""Finding 11: the suggested link allow-list admitted any tenant.

``CHATOPS_LINK_HOSTS`` decides which hosts an answer may link to. Anyone can own a
``*.sharepoint.com`` or ``*.atlassian.net`` tenant, so a wildcard over such a suffix keeps a link
planted in a document (``https://evil.sharepoint.com/?q=<what it read>``) live. The example
settings suggest exact hosts; a worker says so at start, and ``chatops doctor`` shows it as WARN.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot import links
from chatops.settings import Settings
from chatops_app.container import Container
from chatops_app.doctor import checks
from tests.integration.processes import Process, clean_env, free_port
from tests.settings_env import clear_settings_env
from usecases import doctor

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / ".env.example"
RISKY = "wiki.corp.example,*.sharepoint.com,*.corp.example,*.atlassian.net"


def test_the_example_settings_suggest_exact_link_hosts_only():
    lines = [ln for ln in ENV_EXAMPLE.read_text().splitlines() if re.match(r"^#?\s*CHATOPS_LINK_HOSTS=", ln)]
    assert len(lines) == 1, lines
    hosts = [h.strip() for h in lines[0].split("=", 1)[1].split(",") if h.strip()]
    assert hosts and not [h for h in hosts if "*" in h], hosts


def test_wildcards_over_a_suffix_anyone_can_register_under_are_named():
    hosts = ["*.sharepoint.com", "*.atlassian.net", "*.com", "*.windows.net", "*.S3.AMAZONAWS.COM",
             "*.github.io", "*.slack.com", "contoso.sharepoint.com", "*.contoso.sharepoint.com",
             "contoso.atlassian.net", "*.corp.example", "wiki.corp.example"]
    assert links.shared_tenant_wildcards(hosts) == ["*.sharepoint.com", "*.atlassian.net", "*.com", "*.windows.net",
                                                    "*.s3.amazonaws.com", "*.github.io", "*.slack.com"]
    # what the warning is about: such a wildcard links any tenant's page, an exact host only its own
    planted = "https://evil.sharepoint.com/sites/x?q=salary+bands"
    assert links.LinkPolicy.of((), ["*.sharepoint.com"]).allows(planted)
    assert not links.LinkPolicy.of((), ["contoso.sharepoint.com"]).allows(planted)


def test_doctor_warns_about_a_link_wildcard_that_admits_any_tenant(tmp_path):
    def run(hosts: str):
        container = Container(Settings.load(CHATOPS_LINK_HOSTS=hosts, CHATOPS_DATA_DIR=str(tmp_path)))
        try:
            found = dict(checks(container))
            assert "answer links" in found, sorted(found)
            return doctor.run([("answer links", found["answer links"])])[0]
        finally:
            container.close()

    risky = run(RISKY)
    assert risky.status == "warn"
    assert "*.sharepoint.com" in risky.detail and "*.atlassian.net" in risky.detail
    assert "*.corp.example" not in risky.detail
    assert "exact" in risky.fix
    exact = run("wiki.corp.example,contoso.sharepoint.com,*.corp.example")
    assert exact.status == "ok" and "3 host(s)" in exact.detail


def test_a_worker_warns_at_start_when_a_link_wildcard_admits_any_tenant(tmp_path, redis_prefix):
    port = free_port()
    env = clean_env(REDIS_URL="redis://127.0.0.1:6379/0", CHATOPS_KEY_PREFIX=redis_prefix, CHATOPS_QUEUE=redis_prefix,
                    CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_LOG_FORMAT="text",
                    CHATOPS_WORKER_HEALTH_PORT=str(port), CHATOPS_LINK_HOSTS=RISKY)
    worker = Process(["worker", "--pool", "threads", "--concurrency", "1"], env, tmp_path / "worker.log")
    try:
        worker.wait_http(f"http://127.0.0.1:{port}/metrics", timeout=90)   # up: past its start
        out = worker.output()
    finally:
        worker.stop()
    warnings = [ln for ln in out.splitlines() if "CHATOPS_LINK_HOSTS" in ln and ln.lower().startswith("warning")]
    assert len(warnings) == 1, out[-3000:]
    assert "*.sharepoint.com" in warnings[0] and "*.atlassian.net" in warnings[0]
    assert "*.corp.example" not in warnings[0]


@pytest.fixture(autouse=True)
def _no_stray_settings(monkeypatch, tmp_path):
    clear_settings_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
