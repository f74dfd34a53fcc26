"""A planted file costs its own parse, never the sync: files are parsed in a child process under
CPU-time and memory limits (connectors/sources/isolation.py). A file that fails is tried once
more at the next sync, then skipped and counted in ``sources status``; the try is recorded before
the file is read, so a worker killed while reading it counts it too, and a new version of the
file starts afresh."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from chatops.access import Audience
from chatops.settings import Settings
from connectors.sources.registry import SourceContext, open_sync_source
from tests.planted_files import slow_pdf, text_pdf
from tests.sources.test_sharepoint_sync import build as build_library
from usecases.freshness import statuses
from usecases.sync import Sync

ROOT = Path(__file__).resolve().parents[2]
NAME = "handbook"


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    (root / ".acl.yml").write_text('- match: "**"\n  public: true\n')
    (root / "welcome.md").write_text("# Welcome\n\nHello.\n")
    (root / "guide.md").write_text("# Guide\n\nHow to.\n")
    (root / "bomb.pdf").write_bytes(slow_pdf())
    return root


def _sync(tenant, root: Path, **settings) -> Sync:
    """The configured source as the container opens it: its parse limits from the settings."""
    spec = {"kind": "filesystem", "path": str(root)}
    source = open_sync_source(NAME, spec, SourceContext(name=NAME, settings=Settings.load(**settings)))
    return Sync(source, tenant.states, tenant.index, tenant.embedder, kind="filesystem")


def _status(tenant, root: Path):
    [status] = statuses(tenant.states, {NAME: ("filesystem", f"fs:{root.resolve()}")}, max_acl_age=86400)
    return status


def _titles(tenant, root: Path) -> set[str]:
    return tenant.visible_to(Audience.public("p"), f"fs:{root.resolve()}")


def test_a_file_past_the_cpu_limit_is_skipped_and_the_rest_is_indexed(tenant, tmp_path):
    root = _folder(tmp_path)
    first = _sync(tenant, root, CHATOPS_PARSE_TIMEOUT="1").run("changes")
    assert first.done and first.error is None, first.summary()
    assert _titles(tenant, root) == {"Welcome", "Guide"}
    assert "more than 1 s of CPU" in dict(first.failed)["bomb.pdf"]      # tried again at the next sync
    assert (_status(tenant, root).retrying, _status(tenant, root).failed) == (1, 0)

    second = _sync(tenant, root, CHATOPS_PARSE_TIMEOUT="1").run("changes")
    reason = dict(second.skipped)["bomb.pdf"]
    assert reason.startswith("failed twice: ") and "more than 1 s of CPU" in reason
    status = _status(tenant, root)
    assert (status.skipped, status.failed, status.retrying) == (1, 1, 0)

    third = _sync(tenant, root, CHATOPS_PARSE_TIMEOUT="1").run("changes")    # not tried again
    assert third.done and not third.failed and not third.skipped and third.unchanged == 3

    (root / "bomb.pdf").write_bytes(text_pdf("Fixed now"))                    # a new version: tried afresh
    fourth = _sync(tenant, root, CHATOPS_PARSE_TIMEOUT="1").run("changes")
    assert fourth.added == 1 and _titles(tenant, root) == {"Welcome", "Guide", "Bomb"}
    status = _status(tenant, root)
    assert (status.skipped, status.failed, status.retrying) == (0, 0, 0)


KILLED_SYNC = """
import sys
from chatops.settings import Settings
from chatops.store import Store
from chatops.store.sources import SourceStates
from connectors.index.edge_index import EdgeIndex
from connectors.sources.registry import SourceContext, open_sync_source
from tests.ingest_helpers import DIM, HashEmbedder
from usecases.sync import Sync

root, db, index = sys.argv[1:]
source = open_sync_source("handbook", {"kind": "filesystem", "path": root},
                          SourceContext(name="handbook", settings=Settings.load(CHATOPS_PARSE_TIMEOUT="120")))
Sync(source, SourceStates(Store.for_url(db)), EdgeIndex(path=index, dim=DIM, exact=True), HashEmbedder(),
     kind="filesystem", lease_ttl=1).run("changes")
"""


def _tries(tenant, doc_id: str) -> int:
    row = tenant.states.items(NAME, [doc_id]).get(doc_id)
    return getattr(row, "tries", 0) if row is not None else 0


def test_a_worker_killed_while_reading_a_file_counts_the_try(tenant, tmp_path):
    """The worker (here a sync process) dies while the file is being parsed, twice: the third
    sync skips the file without reading it, and indexes the rest."""
    root = _folder(tmp_path)
    db = str(tenant.store.engine.url)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for attempt in (1, 2):
        proc = subprocess.Popen([sys.executable, "-c", KILLED_SYNC, str(root), db, str(tmp_path / f"index{attempt}")],
                                cwd=ROOT, env=env, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while _tries(tenant, "bomb.pdf") < attempt:
                assert proc.poll() is None, "the sync ended without recording the file's try"
                assert time.monotonic() < deadline, "no try recorded before the file was read"
                time.sleep(0.05)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)     # the worker and its parse child, mid-file
            proc.wait()
        time.sleep(1.1)                             # its lease on the source runs out
    report = _sync(tenant, root, CHATOPS_PARSE_TIMEOUT="120").run("changes")
    assert report.done and report.error is None, report.summary()
    assert dict(report.skipped) == {"bomb.pdf": "failed twice: the worker stopped while reading it"}
    assert _titles(tenant, root) == {"Welcome", "Guide"}
    assert _status(tenant, root).failed == 1


def test_a_source_failing_while_a_file_is_read_does_not_count_the_try(tenant):
    """Throttled (past the window's bound) while downloading, twice: the files are read at the
    next sync as if nothing had happened, and none is listed as skipped meanwhile."""
    t = build_library(tenant)
    tenant.sync(tenant.source())
    tenant.sp.edit(t["drive"], t["handbook"].id, "# Handbook\n\nThe second edition.")
    tenant.sp.add_file(t["drive"], "fresh.md", "# Fresh\n\nJust added.")
    for _ in range(2):
        tenant.entra.throttle_next(1, retry_after=600, match="/content")
        stopped = tenant.sync(tenant.source(max_wait=30))
        assert stopped.error and "throttled" in stopped.error and not stopped.failed
        assert [title for title, _ in tenant.states.skipped("eng-docs")] == ["tools.zip"]
        tenant.states.set("eng-docs", throttled_until=None)          # the wait is over
    report = tenant.sync(tenant.source())
    assert report.error is None and report.skipped == [] and not report.failed, report.summary()
    assert tenant.visible_to(tenant.person("ana@contoso.com")) == {"handbook.md", "fresh.md"}
