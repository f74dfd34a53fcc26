"""Finding 3: the filesystem source followed symlinked files. ``public/bands.md ->
../hr/salary-bands.md`` was indexed as public, and ``public/env.txt -> /proc/self/environ`` put
the worker's own environment into a public document.

The rule: a symbolic link is never followed, inside the root or out of it. A link is listed as
skipped (counted in ``sources status``; the file it points to, when it is in the root, is indexed
in its own place with its own permissions), and every file is opened one path component at a
time without following links, so a link swapped in after the listing fails the read instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chatops.access import Audience, Principal
from chatops.settings import Settings
from connectors.sources.base import Unfetchable
from connectors.sources.filesystem.connector import FilesystemSource
from connectors.sources.registry import SourceContext, open_sync_source
from usecases.freshness import statuses
from usecases.sync import Sync

NAME = "handbook"
SALARY = "Band 7: 180,000 to 220,000"
SECRET = "s3cr3t-token-from-the-environment"


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "public").mkdir(parents=True)
    (root / "hr").mkdir()
    (root / ".acl.yml").write_text('- match: "public/**"\n  public: true\n- match: "hr/**"\n  groups: [hr]\n')
    (root / "public" / "welcome.md").write_text("# Welcome\n\nHello.\n")
    (root / "hr" / "salary-bands.md").write_text(f"# Salary bands\n\n{SALARY}\n")
    os.symlink("../hr/salary-bands.md", root / "public" / "bands.md")
    os.symlink("/proc/self/environ", root / "public" / "env.txt")
    return root


def _sync(tenant, root: Path) -> Sync:
    spec = {"kind": "filesystem", "path": str(root)}
    source = open_sync_source(NAME, spec, SourceContext(name=NAME, settings=Settings.load()))
    return Sync(source, tenant.states, tenant.index, tenant.embedder, kind="filesystem")


def _texts(tenant, who, root: Path) -> str:
    audience = who if isinstance(who, Audience) else Audience.of(who)
    from connectors.index.base import Query
    from tests.sources.conftest import DIM

    hits = tenant.index.search(Query(dense=[0.5] * DIM, sparse=None), audience, limit=1000, candidates=1000,
                               mode="dense")
    return "\n".join(h.chunk.text for h in hits if h.chunk.source == f"fs:{root.resolve()}")


def test_links_are_not_followed_by_a_sync_and_are_counted_as_skipped(tenant, tmp_path, monkeypatch):
    monkeypatch.setenv("CHATOPS_PLANTED_SECRET", SECRET)
    root = _folder(tmp_path)
    report = _sync(tenant, root).run("changes")
    assert report.done and report.error is None, report.summary()
    public = _texts(tenant, Audience.public("p"), root)
    assert "Hello." in public
    assert SALARY not in public and SECRET not in public
    assert SALARY in _texts(tenant, Principal.of("hr@x", ["hr"]), root)       # in its own place
    skipped = dict(report.skipped)
    assert set(skipped) == {"bands.md", "env.txt"} and all("symbolic link" in why for why in skipped.values())
    [status] = statuses(tenant.states, {NAME: ("filesystem", f"fs:{root.resolve()}")}, max_acl_age=86400)
    assert status.skipped == 2


def test_links_are_not_followed_by_chatops_ingest(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATOPS_PLANTED_SECRET", SECRET)
    root = _folder(tmp_path)
    source = FilesystemSource(root)
    docs = {d.doc_id: d for d in source.documents()}
    assert set(docs) == {"public/welcome.md", "hr/salary-bands.md"}
    assert {rel for rel, _ in source.skipped} == {"public/bands.md", "public/env.txt"}
    assert list(source.documents(only=["public/bands.md", "public/env.txt"])) == []


def test_a_link_swapped_in_after_the_listing_is_not_read(tmp_path):
    root = _folder(tmp_path)
    (root / "public" / "notes.md").write_text("# Notes\n\nPublic notes.\n")
    source = FilesystemSource(root)
    [page] = source.changes("", None)
    notes = next(i for i in page.items if i.doc_id == "public/notes.md")
    (root / "public" / "notes.md").unlink()
    os.symlink("../hr/salary-bands.md", root / "public" / "notes.md")
    with pytest.raises(Unfetchable):
        source.fetch(notes)


def test_a_folder_swapped_for_a_link_after_the_listing_is_not_read(tmp_path):
    root = _folder(tmp_path)
    (root / "hr" / "welcome.md").write_text(f"# Welcome\n\n{SALARY}\n")
    source = FilesystemSource(root)
    [page] = source.changes("", None)
    welcome = next(i for i in page.items if i.doc_id == "public/welcome.md")
    (root / "public").rename(root / "old-public")
    os.symlink("hr", root / "public")
    with pytest.raises(Unfetchable):
        source.fetch(welcome)
    assert list(source.documents(only=["public/welcome.md"])) == []


def test_a_fifo_is_skipped_without_blocking_the_listing(tmp_path):
    root = _folder(tmp_path)
    os.mkfifo(root / "public" / "pipe.md")
    source = FilesystemSource(root)
    [page] = source.changes("", None)
    pipe = next(i for i in page.items if i.doc_id == "public/pipe.md")
    assert pipe.skip and "not a regular file" in pipe.skip
    assert "public/pipe.md" not in {d.doc_id for d in source.documents()}
