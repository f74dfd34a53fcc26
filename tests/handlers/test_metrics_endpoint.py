"""GET /metrics on the web process and the worker's health port: Prometheus' text format, a
Bearer token when CHATOPS_METRICS_TOKEN is set, and several web worker processes adding up."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import redis
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from bot.web import create_web_app
from chatops import metrics
from workers.health import Health, serve

ROOT = Path(__file__).resolve().parents[2]


def _families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_the_web_process_serves_its_metrics():
    metrics.SLACK_REQUESTS_REFUSED.labels(reason="malformed").inc()
    client = TestClient(create_web_app(None, ready=lambda: (True, "ok")))
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    families = _families(resp.text)
    refused = families["chatops_slack_requests_refused"]           # the parser drops _total
    assert any(s.labels.get("reason") == "malformed" and s.value >= 1 for s in refused.samples)


def test_a_metrics_token_is_required_when_configured():
    client = TestClient(create_web_app(None, ready=lambda: (True, "ok"), metrics_token="s3cret"))
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "s3cret"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and "chatops_" in ok.text
    assert client.get("/livez").status_code == 200                # the probes need no token


def test_the_worker_health_port_wants_the_token_too():
    server = serve(0, Health(redis.Redis.from_url("redis://127.0.0.1:6379/0"), "chatops-test-metrics"),
                   host="127.0.0.1", metrics_token="w0rker")
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    try:
        try:
            urllib.request.urlopen(url, timeout=5)
            raise AssertionError("expected 401")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": "Bearer w0rker"}),
                                    timeout=5) as resp:
            assert "chatops_" in resp.read().decode()
    finally:
        server.shutdown()


def test_several_web_processes_add_up(tmp_path):
    """What ``chatops serve --workers N`` does: each process counts into the multiprocess
    directory, and the /metrics of any one of them answers for all."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    count = "from chatops import metrics; metrics.SLACK_REQUESTS_REFUSED.labels(reason='too_large').inc({n})"
    for n in (2, 3):
        subprocess.run([sys.executable, "-c", count.format(n=n)], env=env, check=True, timeout=60)
    collect = "from chatops import metrics; print(metrics.exposition()[0].decode())"
    out = subprocess.run([sys.executable, "-c", collect], env=env, check=True, timeout=60, capture_output=True,
                         text=True).stdout
    refused = _families(out)["chatops_slack_requests_refused"]
    assert [s.value for s in refused.samples if s.labels.get("reason") == "too_large"] == [5.0]



def test_readyz_follows_whether_work_can_be_queued():
    def broken():
        raise redis.ConnectionError("down")

    assert TestClient(create_web_app(None, ready=lambda: (False, "no worker"), can_queue=lambda: True)) \
        .get("/readyz").status_code == 200                       # workers down: still takes and queues
    resp = TestClient(create_web_app(None, ready=lambda: (True, "ok"), can_queue=broken)).get("/readyz")
    assert resp.status_code == 503 and "Redis" in resp.text


def test_gauges_read_on_scrape_are_refreshed_and_a_failing_refresh_still_answers():
    def refresh():
        metrics.QUEUE_DEPTH.labels(queue="chatops-scrape-test").set(7)

    client = TestClient(create_web_app(None, ready=lambda: (True, "ok"), refresh_metrics=refresh))
    depth = _families(client.get("/metrics").text)["chatops_queue_depth"]
    assert any(s.labels.get("queue") == "chatops-scrape-test" and s.value == 7 for s in depth.samples)

    def broken():
        raise redis.ConnectionError("down")

    assert TestClient(create_web_app(None, ready=lambda: (True, "ok"), refresh_metrics=broken)) \
        .get("/metrics").status_code == 200


def test_the_prometheus_names_follow_the_conventions():
    """chatops_ prefix, _total counters, base units (seconds), and no label that names a person or
    a channel."""
    from prometheus_client import REGISTRY

    ours = [m for m in REGISTRY.collect() if m.name.startswith("chatops_")]
    assert len(ours) >= 25
    for family in ours:
        assert not (family.type == "histogram" and "_ms" in family.name)
        labels = {name for s in family.samples for name in s.labels}
        assert not labels & {"user", "person", "channel", "email", "asker", "team"}, family.name
    names = {m.name for m in ours}
    for wanted in ("chatops_slack_events", "chatops_slack_ack_duration_seconds", "chatops_answers",
                   "chatops_answer_stage_duration_seconds", "chatops_answer_top_similarity",
                   "chatops_answer_citations", "chatops_feedback", "chatops_llm_tokens", "chatops_llm_cost",
                   "chatops_answer_cache_lookups", "chatops_slack_api_calls", "chatops_budget_rejections",
                   "chatops_tasks", "chatops_queue_depth", "chatops_index_points", "chatops_source_acl_age_seconds"):
        assert wanted in names, wanted
