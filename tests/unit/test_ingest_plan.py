"""Ingestion split into batches: the pure parts (batching, classification, source specs) and
the sources' ``documents(only=...)``."""

import json
import os

import pytest

from chatops.access import Acl
from connectors.sources.base import Document, Section
from connectors.sources.beir import BeirSource
from connectors.sources.filesystem.connector import FilesystemSource
from connectors.sources.registry import SourceSpecError, beir_spec, filesystem_spec, open_source
from usecases.ingest import IngestReport, classify
from workers.ingest_jobs import Progress
from usecases.ingest_plan import split_batches


# --- split_batches ----------------------------------------------------------------------

def test_batches_are_cut_by_document_count():
    sizes = [(f"d{i}", 1) for i in range(7)]
    assert split_batches(sizes, max_docs=3, max_chunks=100) == [["d0", "d1", "d2"], ["d3", "d4", "d5"], ["d6"]]


def test_batches_are_cut_by_chunk_budget_and_a_big_document_goes_alone():
    sizes = [("a", 3), ("b", 3), ("c", 1), ("huge", 50), ("d", 2), ("e", 5)]
    assert split_batches(sizes, max_docs=10, max_chunks=6) == [["a", "b"], ["c"], ["huge"], ["d"], ["e"]]


def test_batches_keep_every_document_once_in_order():
    sizes = [(f"d{i}", i % 5) for i in range(50)]
    batches = split_batches(sizes, max_docs=4, max_chunks=7)
    assert [d for b in batches for d in b] == [d for d, _ in sizes]
    for batch in batches:
        chunks = sum(n for d, n in sizes if d in batch)
        assert len(batch) <= 4 and (chunks <= 7 or len(batch) == 1)


def test_no_changed_documents_is_no_batch():
    assert split_batches([], max_docs=64, max_chunks=1024) == []


@pytest.mark.parametrize("docs, chunks", [(0, 10), (10, 0)])
def test_empty_batches_are_refused(docs, chunks):
    with pytest.raises(ValueError):
        split_batches([("a", 1)], max_docs=docs, max_chunks=chunks)


# --- classify ---------------------------------------------------------------------------

def _doc(doc_id="a.md", content_hash="h1", acl=Acl.of(public=True)):
    return Document(doc_id=doc_id, title="T", sections=(Section("", "text"),), acl=acl, content_hash=content_hash)


@pytest.mark.parametrize("existing, doc, kind", [
    ({}, _doc(), "added"),
    ({"a.md": "h1"}, _doc(), "unchanged"),
    ({"a.md": "h0"}, _doc(), "updated"),
    ({"a.md": "h1"}, _doc(acl=Acl()), "no_acl"),
])
def test_classify(existing, doc, kind):
    assert classify(doc, existing) == kind


# --- the job's progress and summary --------------------------------------------------------

@pytest.mark.parametrize("progress, picked_up, finished", [
    (Progress(state="queued"), False, False),
    (Progress(state="planning"), True, False),
    (Progress(state="running", total=3, done=2), True, False),
    (Progress(state="running", total=3, done=2, failed=1), True, True),
    (Progress(state="running", total=0), True, True),
    (Progress(state="failed", error="boom"), True, True),
])
def test_progress_states(progress, picked_up, finished):
    assert (progress.picked_up, progress.finished) == (picked_up, finished)


def test_summary_names_failed_batches():
    report = IngestReport(source="fs:/docs", added=3, chunks=9, batches=2, failed=[("batch b00001 (x.md)", "boom")])
    assert report.summary() == ("ingested fs:/docs: 3 added, 0 updated, 0 unchanged, 0 removed, 9 chunks written; "
                                "1 of 2 batch(es) failed")


# --- source specs -----------------------------------------------------------------------

def test_specs_are_json_and_reopen_the_same_source(tmp_path):
    (tmp_path / "a.md").write_text("# A\n\nalpha\n")
    spec = filesystem_spec(tmp_path, "https://docs.example/")
    assert json.loads(json.dumps(spec)) == spec
    source = open_source(spec)
    assert source.source_id == f"fs:{tmp_path.resolve()}"
    assert [d.url for d in source.documents()] == ["https://docs.example/a.md"]


def test_unknown_spec_kind_is_named():
    with pytest.raises(SourceSpecError, match="'ftp'"):
        open_source({"kind": "ftp", "path": "/x"})


# --- documents(only=...) ----------------------------------------------------------------

@pytest.fixture
def folder(tmp_path):
    files = {".acl.yml": "- match: '**'\n  public: true\n", "a.md": "# A\n\nalpha\n", "sub/b.md": "# B\n\nbeta\n",
             "sub/c.txt": "gamma\n", ".hidden/d.md": "# D\n", "e.bin": "x", "sub/.f.md": "# F\n"}
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def test_only_reads_just_the_named_documents_as_the_full_listing_does(folder):
    source = FilesystemSource(folder)
    full = {d.doc_id: d for d in source.documents()}
    assert set(full) == {"a.md", "sub/b.md", "sub/c.txt"}
    some = list(source.documents(only=["sub/c.txt", "a.md"]))
    assert [d.doc_id for d in some] == ["a.md", "sub/c.txt"]
    assert some == [full["a.md"], full["sub/c.txt"]]


@pytest.mark.parametrize("doc_id", ["gone.md", ".hidden/d.md", "sub/.f.md", "e.bin", ".acl.yml", "../a.md",
                                    "sub/../../a.md", "/etc/passwd", "", "sub", "link/b.md"])
def test_only_leaves_out_what_the_listing_would_not_hold(folder, doc_id):
    os.symlink(folder / "sub", folder / "link")  # os.walk does not follow it, so neither may only=
    assert list(FilesystemSource(folder).documents(only=[doc_id])) == []


def test_beir_only(tmp_path):
    rows = [{"_id": f"d{i}", "title": f"T{i}", "text": f"text {i}"} for i in range(5)]
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    source = open_source(beir_spec(tmp_path, limit=4))
    full = {d.doc_id: d for d in source.documents()}
    assert [d.doc_id for d in source.documents(only={"d3", "d1", "d4"})] == ["d1", "d3"]  # d4 is past the limit
    assert list(source.documents(only={"d1"})) == [full["d1"]]
