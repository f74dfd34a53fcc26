"""The source framework itself: the filesystem source on it, windows and the lease, staleness,
a person's source groups, and the chains the workers run (with real Redis)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
import redis

from chatops.access import Audience, Principal
from chatops.errors import IdentityUnavailable
from chatops.store.sources import SourceStates
from connectors.identity.source_groups import WithSourceGroups
from connectors.sources.filesystem.connector import FilesystemSource
from tests.sources.test_sharepoint_sync import ENG, build
from usecases.freshness import Withheld, statuses
from usecases.sync import Budget, Sync
from workers.source_tasks import SourceChains, SourceSyncHandler


def _folder(tmp_path):
    root = tmp_path / "docs"
    (root / "eng").mkdir(parents=True)
    (root / ".acl.yml").write_text('- match: "eng/**"\n  groups: [eng]\n- match: "*.md"\n  public: true\n')
    (root / "eng" / "design.md").write_text("# Design\n\nThe design.\n")
    (root / "welcome.md").write_text("# Welcome\n\nHello.\n")
    return root


_OPENED: dict = {}


def _fs_sync(tenant, root, **kw):
    """The source is opened once, as a process keeps it (a broken .acl.yml at opening is
    refused by the constructor instead)."""
    if root not in _OPENED:
        _OPENED[root] = FilesystemSource(root, name="handbook")
    source = _OPENED[root]
    return Sync(source, tenant.states, tenant.index, tenant.embedder, kind="filesystem", **kw)


def test_a_folder_through_the_framework_acl_edits_apply_in_place(tenant, tmp_path):
    root = _folder(tmp_path)
    first = _fs_sync(tenant, root).run("changes")
    assert first.mode == "full" and first.added == 2          # the first sync is a full one
    sid = f"fs:{root.resolve()}"
    assert tenant.visible_to(Principal.of("x@y", ["eng"]), sid) == {"Design", "Welcome"}
    assert tenant.visible_to(Audience.public("p"), sid) == {"Welcome"}
    embedded = len(tenant.embedder.embedded)
    (root / ".acl.yml").write_text('- match: "eng/**"\n  groups: [ops]\n- match: "*.md"\n  public: true\n')
    again = _fs_sync(tenant, root).run("changes")
    assert again.permissions_changed == 1 and again.added == again.updated == 0
    assert len(tenant.embedder.embedded) == embedded               # no re-embedding
    assert tenant.visible_to(Principal.of("x@y", ["eng"]), sid) == {"Welcome"}
    assert tenant.visible_to(Principal.of("x@y", ["ops"]), sid) == {"Design", "Welcome"}
    (root / "welcome.md").unlink()
    assert _fs_sync(tenant, root).run("changes").deleted == 1
    # a broken .acl.yml stops the sync, names the file, and changes nothing
    (root / ".acl.yml").write_text("- match: [unclosed\n")
    broken = _fs_sync(tenant, root).run("changes")
    assert broken.error and ".acl.yml" in broken.error and not broken.done
    assert tenant.visible_to(Principal.of("x@y", ["ops"]), sid) == {"Design"}
    assert tenant.states.get("handbook").last_error


def test_windows_resume_where_the_last_one_stopped(tenant):
    t = build(tenant)
    for n in range(8):
        tenant.sp.add_file(t["drive"], f"doc{n}.md", f"# Doc {n}\n\ntext {n}")
    source = tenant.source()
    windows = []
    while True:
        report = Sync(source, tenant.states, tenant.index, tenant.embedder, kind="sharepoint").window(
            "changes", Budget(items=3, seconds=None))
        windows.append(report)
        if report.done or len(windows) > 50:
            break
    assert len(windows) > 3 and all(not w.done for w in windows[:-1])
    assert sum(w.added for w in windows) == 10
    assert len(tenant.index.document_hashes("sharepoint:eng-docs")) == 10
    assert tenant.sp.downloads == 10                          # each document fetched once


def test_one_window_per_source_at_a_time(tenant):
    build(tenant)
    states = tenant.states
    states.ensure("eng-docs", "sharepoint:eng-docs", "sharepoint")
    assert states.take_lease("eng-docs", "someone-else", 60)
    busy = tenant.sync(tenant.source())
    assert busy.busy and not busy.done and "another sync" in busy.summary()
    states.release_lease("eng-docs", "someone-else")
    assert tenant.sync(tenant.source()).done


def test_stale_permissions_withhold_restricted_documents(tenant):
    t = build(tenant)
    tenant.sync(tenant.source())
    configured = {"eng-docs": ("sharepoint", "sharepoint:eng-docs")}
    withheld = Withheld(tenant.states, configured, max_acl_age=3600, ttl=0)
    assert withheld() == frozenset()
    old = datetime.now(timezone.utc) - timedelta(hours=2)
    tenant.states.set("eng-docs", acl_watermark=old)
    assert withheld() == frozenset({"sharepoint:eng-docs"})
    (status,) = statuses(tenant.states, configured, max_acl_age=3600)
    assert status.stale and status.documents == 2
    ana = tenant.person("ana@contoso.com")
    assert tenant.visible_to(Audience.of(ana).withholding(withheld())) == set()
    # a new permission pass: trusted again
    tenant.sync(tenant.source(), "permissions")
    assert withheld() == frozenset()
    assert not t["handbook"].unreadable


def test_unreadable_state_withholds_every_configured_source():
    class Broken:
        def all(self):
            raise OSError("database down")

    withheld = Withheld(Broken(), {"a": ("sharepoint", "sharepoint:a"), "b": ("filesystem", "fs:/b")},
                        max_acl_age=60, ttl=0)
    assert withheld() == {"sharepoint:a", "fs:/b"}


def test_a_persons_groups_include_the_source_groups_they_are_in(tenant):
    build(tenant)
    tenant.sync(tenant.source(), "full")

    class Directory:
        name = "directory"

        def by_email(self, email):
            return Principal.of(email, [ENG] if email.startswith("eve") else [])

    identity = WithSourceGroups(Directory(), tenant.states)
    ana, eve, zed = (identity.by_email(e) for e in ("ana@contoso.com", "eve@contoso.com", "zed@contoso.com"))
    members = {g for g in ana.groups if g.endswith("::4")}
    assert members and members <= eve.groups                   # Ana directly, Eve through the Entra group
    assert ENG in eve.groups and not zed.groups

    class Down(SourceStates):
        def groups_of(self, email, groups):
            raise OSError("down")

    with pytest.raises(IdentityUnavailable):
        WithSourceGroups(Directory(), Down(tenant.store)).by_email("ana@contoso.com")


@pytest.mark.redis
def test_chains_run_window_after_window_and_once_more_when_asked_meanwhile(tenant):
    t = build(tenant)
    for n in range(6):
        tenant.sp.add_file(t["drive"], f"doc{n}.md", f"# Doc {n}\n\ntext")
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0", decode_responses=False)
    prefix = f"chatops-test-chains-{uuid.uuid4().hex[:8]}"
    queue: list[tuple[str, dict]] = []
    chains = SourceChains(client, prefix, lambda kind, payload: queue.append((kind, payload)))
    source = tenant.source()
    handler = SourceSyncHandler(
        sync_for=lambda name: Sync(source, tenant.states, tenant.index, tenant.embedder, kind="sharepoint"),
        chains=chains, budget=lambda: Budget(items=4, seconds=None))
    try:
        handler.handle({"source": "eng-docs", "mode": "changes", "chain": None})      # the scheduler's tick
        assert len(queue) == 1 and queue[0][1]["chain"]
        handler.handle({"source": "eng-docs", "mode": "changes", "chain": None})      # a second tick meanwhile
        assert len(queue) == 1                                                       # no second chain
        runs = 0
        while queue and runs < 40:
            _kind, payload = queue.pop(0)
            handler.handle(payload)
            runs += 1
        assert runs > 3                                   # windows, then the chain ran once more
        assert len(tenant.index.document_hashes("sharepoint:eng-docs")) == 8
        assert client.get(f"{prefix}:sources:chain:eng-docs:changes") is None
        # a stale delivery of an ended chain does nothing
        handler.handle({"source": "eng-docs", "mode": "changes", "chain": "gone"})
        assert queue == []
    finally:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
