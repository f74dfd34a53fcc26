"""The worker's own /metrics, with a process pool: what the pool's processes count is what the
health port serves (``chatops worker`` starts again with PROMETHEUS_MULTIPROC_DIR set)."""

from __future__ import annotations

import subprocess
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.harness import BOT, System, free_port

pytestmark = pytest.mark.redis

ANA = "UANA"


def test_a_prefork_worker_serves_what_its_pool_processes_counted(tmp_path):
    system = System.start(
        tmp_path, corpus={".acl.yml": '- match: "**"\n  public: true\n',
                          "handbook/vacation.md": "# Vacation\n\nEveryone gets 27 days of paid vacation.\n"},
        directory="users:\n  - {email: ana@corp.example, groups: [staff]}\n",
        users={ANA: {"id": ANA, "profile": {"email": "ana@corp.example"}}, BOT: {"id": BOT, "is_bot": True}},
        channels={"COPS": [ANA, BOT]}, reply="Twenty-seven days [1].",
        extra_env={"CHATOPS_METRICS_TOKEN": "scrape-me"})
    system.stop_worker()
    port = free_port()
    log = open(tmp_path / "prefork.log", "w")
    worker = subprocess.Popen([system.chatops(), "worker", "--pool", "prefork", "--concurrency", "1",
                               "--health-port", str(port)], env=system.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(2):
            event = system.mention("COPS", ANA, "how many vacation days?")
            assert system.post_event(event).status_code == 200
            assert "Twenty-seven" in system.final_reply("COPS", event["ts"], timeout=120)
        url = f"http://127.0.0.1:{port}/metrics"
        assert requests.get(url, timeout=5).status_code == 401
        deadline = time.time() + 20
        while True:
            text = requests.get(url, headers={"Authorization": "Bearer scrape-me"}, timeout=5).text
            samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                       for f in text_string_to_metric_families(text) for s in f.samples}
            done = samples.get(("chatops_tasks_total", (("kind", "question"), ("outcome", "done"))), 0)
            if done >= 2 or time.time() > deadline:
                break
            time.sleep(0.5)
        assert done == 2, text[-2000:]
        assert samples[("chatops_index_points", ())] >= 1          # set by the pool process that opened it
        assert sum(v for (name, labels), v in samples.items() if name == "chatops_answers_total") == 2
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
        system.stop()
