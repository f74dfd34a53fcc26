"""One behavioural contract, two index implementations.

Every test in the first part runs against ``QdrantIndex`` in qdrant-client's
local mode and against ``EdgeIndex`` (Qdrant Edge, in process), on the same
seeded synthetic chunks (random 384-d dense vectors, small sparse vectors; no
embedding model), and asserts behaviour, not internals: ACL filtering, deletes,
document hashes, counts, overwrite by id, persistence, locking, threads.

The second part compares the two directly: same top-k ids for dense-only
queries, same fused ids and scores for hybrid queries, and edge results equal to
a brute-force answer computed here with numpy on a 3,000-point corpus where 1%
of the points are visible.

Why the dense comparison is not flaky: qdrant-client local mode always scans;
Qdrant Edge builds HNSW only in ``optimize()`` and only for segments above the
indexing threshold (10 MB by default, ~6,500 vectors of 384 floats), so on these
corpora it scans too. The comparisons are also run with ``EdgeIndex(exact=True)``
(``SearchParams(exact=True)`` on every dense search), and the 3,000-point test
is repeated on an edge index whose HNSW graph was really built (indexing
threshold lowered to 1 KB, then ``optimize()``).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest

from chatops.access import Acl, Audience, Principal
from connectors.index.base import Built, Chunk, Hit, Query, SparseVec
from connectors.index.edge_index import EdgeIndex
from connectors.index.registry import ENGINES
from connectors.index.edge_index import acl_filter as edge_acl_filter
from connectors.index.base import IndexBusy
from connectors.index.qdrant_index import QdrantIndex

ROOT = Path(__file__).resolve().parents[2]
DIM = 384
VOCAB = 300
MAIN = "fs:/srv/docs"
OTHER = "fs:/srv/other"
_NS = uuid.UUID("0b9d5c1e-2f7a-4c61-8d3e-5a4f6e7d8c90")

# --- the people -------------------------------------------------------------------------

ALICE = Principal.of("Alice@Example.com", ["eng"], slack_user_id="UA")
BOB = Principal.of("bob@example.com", ["sales"], slack_user_id="UB")
CAROL = Principal.of("carol@example.com", [], slack_user_id="UC")      # an email, no groups
DAVE = Principal.of(None, ["eng", "ops"], slack_user_id="UD")           # groups, no email
UNKNOWN = Principal.unknown("UX")

# --- the documents: (source, doc_id) -> (acl, number of chunks) ------------------------------

DOCS: dict[tuple[str, str], tuple[Acl, int]] = {
    (MAIN, "public/handbook.md"): (Acl.of(public=True), 6),
    (MAIN, "eng/design.md"): (Acl.of(groups=["eng"]), 6),
    (MAIN, "sales/pipeline.md"): (Acl.of(groups=["sales"]), 6),
    (MAIN, "shared/eng-sales.md"): (Acl.of(groups=["eng", "sales"]), 4),
    (MAIN, "people/carol.md"): (Acl.of(users=["carol@example.com"]), 4),
    (MAIN, "people/alice-bob.md"): (Acl.of(users=["alice@example.com", "bob@example.com"]), 3),
    (MAIN, "ops/runbook.md"): (Acl.of(groups=["ops"]), 4),
    (MAIN, "mixed/public-and-eng.md"): (Acl.of(groups=["eng"], public=True), 3),
    (MAIN, "secret/no-acl.md"): (Acl(), 4),  # ingest skips these; the index must never return one
    (OTHER, "public/handbook.md"): (Acl.of(public=True), 3),
    (OTHER, "eng/design.md"): (Acl.of(groups=["eng"]), 2),
}
PUBLIC_DOCS = {(MAIN, "public/handbook.md"), (MAIN, "mixed/public-and-eng.md"), (OTHER, "public/handbook.md")}

# audience -> the documents it may see, written out by hand (and cross-checked with Audience.can_see)
AUDIENCES: dict[str, tuple[Audience, set]] = {
    "public-only": (Audience.public("external members"), PUBLIC_DOCS),
    "empty": (Audience(), PUBLIC_DOCS),
    "public-only-flag": (Audience(principals=(ALICE,), public_only=True), PUBLIC_DOCS),
    "unknown": (Audience.of(UNKNOWN), PUBLIC_DOCS),
    "alice (email + group)": (Audience.of(ALICE), PUBLIC_DOCS | {
        (MAIN, "eng/design.md"), (MAIN, "shared/eng-sales.md"), (MAIN, "people/alice-bob.md"),
        (OTHER, "eng/design.md")}),
    "bob (email + group)": (Audience.of(BOB), PUBLIC_DOCS | {
        (MAIN, "sales/pipeline.md"), (MAIN, "shared/eng-sales.md"), (MAIN, "people/alice-bob.md")}),
    "carol (email only)": (Audience.of(CAROL), PUBLIC_DOCS | {(MAIN, "people/carol.md")}),
    "dave (groups only)": (Audience.of(DAVE), PUBLIC_DOCS | {
        (MAIN, "eng/design.md"), (MAIN, "shared/eng-sales.md"), (MAIN, "ops/runbook.md"),
        (OTHER, "eng/design.md")}),
    "channel alice+bob": (Audience.everyone([ALICE, BOB]), PUBLIC_DOCS | {
        (MAIN, "shared/eng-sales.md"), (MAIN, "people/alice-bob.md")}),
    "channel alice+dave": (Audience.everyone([ALICE, DAVE]), PUBLIC_DOCS | {
        (MAIN, "eng/design.md"), (MAIN, "shared/eng-sales.md"), (OTHER, "eng/design.md")}),
    "channel alice+unknown": (Audience.everyone([ALICE, UNKNOWN]), PUBLIC_DOCS),
    "channel bob+carol": (Audience.everyone([BOB, CAROL]), PUBLIC_DOCS),
}


# --- synthetic data ---------------------------------------------------------------------

def unit(rng: np.random.Generator, n: int | None = None) -> np.ndarray:
    v = rng.normal(size=(n or 1, DIM)).astype(np.float64)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v if n else v[0]


def sparse_vec(rng: np.random.Generator, nnz: int = 8, vocab: int = VOCAB) -> SparseVec:
    idx = sorted(int(i) for i in rng.choice(vocab, nnz, replace=False))
    return SparseVec(tuple(idx), tuple(float(x) for x in rng.uniform(0.1, 1.0, nnz)))


def make_chunk(source: str, doc_id: str, position: int, acl: Acl, *, text: str | None = None,
               doc_hash: str | None = None) -> Chunk:
    return Chunk(
        id=str(uuid.uuid5(_NS, f"{source}\x00{doc_id}\x00{position}")), source=source, doc_id=doc_id,
        title=doc_id.rsplit("/", 1)[-1], heading=f"Section {position}",
        text=text or f"chunk {position} of {doc_id}", position=position, acl=acl,
        doc_hash=doc_hash or f"hash-{source}-{doc_id}", url=f"https://docs.example/{doc_id}#{position}",
    )


class Corpus:
    def __init__(self, seed: int = 1234):
        rng = np.random.default_rng(seed)
        self.chunks: list[Chunk] = []
        for (source, doc_id), (acl, n) in DOCS.items():
            self.chunks += [make_chunk(source, doc_id, i, acl) for i in range(n)]
        self.dense = unit(rng, len(self.chunks))
        self.sparse = [sparse_vec(rng) for _ in self.chunks]
        self.by_id = {c.id: i for i, c in enumerate(self.chunks)}
        qrng = np.random.default_rng(seed + 1)
        # queries: random directions, and perturbed copies of stored chunks (a clear nearest neighbour)
        self.queries = [Query(dense=unit(qrng).tolist(), sparse=sparse_vec(qrng, nnz=4)) for _ in range(4)]
        for i in (0, 7, 20, 33):
            v = self.dense[i] + 0.3 * unit(qrng)
            idx = self.sparse[i].indices[:3] + (int(qrng.integers(VOCAB)),)
            self.queries.append(Query(dense=(v / np.linalg.norm(v)).tolist(),
                                      sparse=SparseVec(tuple(sorted(set(idx))), (1.0,) * len(set(idx)))))

    def load(self, index) -> None:
        index.ensure_collection()
        index.upsert(self.chunks, self.dense.tolist(), self.sparse)

    def ids_of(self, docs: set) -> set[str]:
        return {c.id for c in self.chunks if (c.source, c.doc_id) in docs}


CORPUS = Corpus()


# --- the two implementations ------------------------------------------------------------

def open_local(path: Path, **_):
    return QdrantIndex(collection="chunks", dim=DIM, path=path)


def open_edge(path: Path, **kw):
    return EdgeIndex(path=path, dim=DIM, **kw)


def _registry_opener(engine):
    return lambda path, **_: engine.open(path=path, dim=DIM, collection="chunks")


# Every embedded engine of the registry runs the whole contract (a server needs QDRANT_URL).
OPENERS = {name: _registry_opener(engine) for name, engine in ENGINES.items() if engine.embedded}


@pytest.fixture(params=sorted(OPENERS))
def kind(request) -> str:
    return request.param


@pytest.fixture
def opener(kind):
    return OPENERS[kind]


@pytest.fixture
def index(opener, tmp_path):
    idx = opener(tmp_path / "index")
    try:
        yield idx
    finally:
        idx.close()


@pytest.fixture
def loaded(index):
    CORPUS.load(index)
    return index


def everything(index, audience: Audience, *, hybrid: bool, query: Query | None = None) -> list[Hit]:
    q = query or CORPUS.queries[0]
    if not hybrid:
        q = Query(dense=q.dense, sparse=None)
    return index.search(q, audience, limit=1000, candidates=1000)


def docs_of(hits: list[Hit]) -> set:
    return {(h.chunk.source, h.chunk.doc_id) for h in hits}


# === part 1: the contract, per implementation ===========================================

def test_kind(index, kind):
    assert index.kind == kind


def test_empty_index_before_ensure_collection(index):
    assert index.count() == 0
    assert index.document_hashes(MAIN) == {}
    index.ensure_collection()
    index.ensure_collection()  # idempotent
    assert index.count() == 0
    assert index.document_hashes(MAIN) == {}


def test_a_collection_records_the_embedder_it_was_created_for(kind, tmp_path):
    """What `chatops doctor` (and a later embedder change) reads: the model and dimension, from the
    moment the collection exists, kept when it is opened again."""
    engine = ENGINES[kind]
    index = engine.open(path=tmp_path / "index", dim=DIM, collection="chunks", embedder="org/model-a")
    try:
        assert index.built_with() is None
        index.ensure_collection()
        assert index.built_with() == Built("org/model-a", DIM)
    finally:
        index.close()
    again = engine.open(path=tmp_path / "index", dim=DIM, collection="chunks", embedder="org/model-b")
    try:
        again.ensure_collection()
        assert again.built_with() == Built("org/model-a", DIM)
    finally:
        again.close()


@pytest.mark.parametrize("hybrid", [False, True], ids=["dense", "hybrid"])
@pytest.mark.parametrize("name", list(AUDIENCES))
def test_acl_filtering(loaded, name, hybrid):
    audience, expected_docs = AUDIENCES[name]
    # the hand-written expectation is the Python rule
    assert expected_docs == {key for key, (acl, _) in DOCS.items() if audience.can_see(acl)}
    hits = everything(loaded, audience, hybrid=hybrid)
    assert docs_of(hits) == expected_docs
    assert {h.chunk.id for h in hits} == CORPUS.ids_of(expected_docs)  # every visible chunk, once
    assert len(hits) == len({h.chunk.id for h in hits})
    assert (MAIN, "secret/no-acl.md") not in docs_of(hits)


def test_a_document_without_acl_is_never_returned(loaded):
    secret = [i for i, c in enumerate(CORPUS.chunks) if c.doc_id == "secret/no-acl.md"]
    everyone = Audience.everyone([ALICE, BOB, CAROL, DAVE])
    for aud in [a for a, _ in AUDIENCES.values()] + [everyone, Audience.of(Principal.of("x@y.z", ["eng", "sales", "ops"]))]:
        for i in secret:  # aim straight at it, with its own vectors
            q = Query(dense=CORPUS.dense[i].tolist(), sparse=CORPUS.sparse[i])
            for hybrid in (False, True):
                qq = q if hybrid else Query(dense=q.dense, sparse=None)
                hits = loaded.search(qq, aud, limit=50, candidates=100)
                assert all(h.chunk.doc_id != "secret/no-acl.md" for h in hits)


def test_hits_round_trip_the_chunk_and_carry_cosine_similarity(loaded):
    q = CORPUS.queries[5]  # a perturbed copy of chunk 7
    hits = loaded.search(Query(dense=q.dense, sparse=None), Audience.of(ALICE), limit=5, candidates=20)
    assert hits
    qv = np.asarray(q.dense)
    for h in hits:
        i = CORPUS.by_id[h.chunk.id]
        assert h.chunk == CORPUS.chunks[i]
        assert h.chunk.url == CORPUS.chunks[i].url and h.chunk.acl == CORPUS.chunks[i].acl
        assert h.similarity == pytest.approx(float(qv @ CORPUS.dense[i]), abs=1e-5)
        assert h.score == pytest.approx(h.similarity, abs=1e-5)  # dense-only: the score is the cosine
        assert h.vector is not None  # the stored vector comes back (pseudo-relevance feedback uses it)
        assert np.asarray(h.vector) == pytest.approx(CORPUS.dense[i], abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_hybrid_scores_are_rrf_and_similarity_is_cosine(loaded):
    q = CORPUS.queries[6]
    hits = loaded.search(q, Audience.of(BOB), limit=8, candidates=10)
    assert 0 < len(hits) <= 8
    qv = np.asarray(q.dense)
    for h in hits:
        assert 0 < h.score <= 2 / 60 + 1e-6  # RRF with k=60 over two lists, ranks from 0
        assert h.similarity == pytest.approx(float(qv @ CORPUS.dense[CORPUS.by_id[h.chunk.id]]), abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_empty_sparse_query_falls_back_to_dense(loaded):
    for q in CORPUS.queries[:4]:
        dense_only = loaded.search(Query(dense=q.dense, sparse=None), Audience.of(ALICE), limit=10, candidates=30)
        empty = loaded.search(Query(dense=q.dense, sparse=SparseVec((), ())), Audience.of(ALICE),
                              limit=10, candidates=30)
        assert [h.chunk.id for h in empty] == [h.chunk.id for h in dense_only]
        assert [h.score for h in empty] == pytest.approx([h.score for h in dense_only])


def test_limit_is_respected(loaded):
    for hybrid in (False, True):
        hits = everything(loaded, Audience.of(ALICE), hybrid=hybrid)
        assert len(hits) > 3
        q = CORPUS.queries[1] if hybrid else Query(dense=CORPUS.queries[1].dense, sparse=None)
        assert len(loaded.search(q, Audience.of(ALICE), limit=3, candidates=10)) == 3


def test_count(loaded):
    assert loaded.count() == len(CORPUS.chunks)


def test_document_hashes(loaded):
    assert loaded.document_hashes(MAIN) == {doc: f"hash-{MAIN}-{doc}" for (src, doc) in DOCS if src == MAIN}
    assert loaded.document_hashes(OTHER) == {doc: f"hash-{OTHER}-{doc}" for (src, doc) in DOCS if src == OTHER}
    assert loaded.document_hashes("fs:/nowhere") == {}


def test_document_hashes_pages_through_more_than_a_thousand_points(index):
    rng = np.random.default_rng(5)
    chunks = [make_chunk("fs:/bulk", f"d/{i:05d}.md", 0, Acl.of(public=True), doc_hash=f"h{i}")
              for i in range(1100)]
    index.ensure_collection()
    index.upsert(chunks, unit(rng, len(chunks)).tolist(), [SparseVec((), ())] * len(chunks))
    CORPUS.load(index)
    hashes = index.document_hashes("fs:/bulk")
    assert len(hashes) == 1100
    assert hashes == {f"d/{i:05d}.md": f"h{i}" for i in range(1100)}
    assert index.count() == 1100 + len(CORPUS.chunks)


def test_delete_documents(loaded):
    before = loaded.count()
    loaded.delete_documents(MAIN, [])  # no-op
    assert loaded.count() == before
    loaded.delete_documents(MAIN, ["eng/design.md", "people/carol.md", "not/there.md"])
    gone = DOCS[(MAIN, "eng/design.md")][1] + DOCS[(MAIN, "people/carol.md")][1]
    assert loaded.count() == before - gone
    assert "eng/design.md" not in loaded.document_hashes(MAIN)
    assert "eng/design.md" in loaded.document_hashes(OTHER)  # same doc_id, other source: untouched
    hits = everything(loaded, Audience.everyone([ALICE]), hybrid=True)
    assert (MAIN, "eng/design.md") not in docs_of(hits)
    assert (OTHER, "eng/design.md") in docs_of(hits)
    assert (MAIN, "people/carol.md") not in docs_of(everything(loaded, Audience.of(CAROL), hybrid=False))
    loaded.delete_documents("fs:/nowhere", ["public/handbook.md"])
    assert loaded.count() == before - gone


def test_update_documents_changes_the_acl_in_place(loaded):
    """A permissions-only change: the chunks keep their ids and vectors, only who may see them
    changes, in the index's own filter (not only in the Python re-check)."""
    before = loaded.count()
    hashes = loaded.document_hashes(MAIN)
    # eng/design.md: eng -> carol only; the public handbook: public -> nobody
    loaded.update_documents(MAIN, ["eng/design.md"], Acl.of(users=["carol@example.com"]).to_payload())
    loaded.update_documents(MAIN, ["public/handbook.md"], Acl().to_payload())
    assert loaded.count() == before and loaded.document_hashes(MAIN) == hashes
    alice = docs_of(everything(loaded, Audience.of(ALICE), hybrid=True))
    assert (MAIN, "eng/design.md") not in alice and (OTHER, "eng/design.md") in alice
    assert (MAIN, "eng/design.md") in docs_of(everything(loaded, Audience.of(CAROL), hybrid=False))
    public = docs_of(everything(loaded, Audience.public("x"), hybrid=True))
    assert (MAIN, "public/handbook.md") not in public and (OTHER, "public/handbook.md") in public
    # and back to public: the boolean must match the public condition again
    loaded.update_documents(MAIN, ["public/handbook.md"], Acl.of(public=True).to_payload())
    assert (MAIN, "public/handbook.md") in docs_of(everything(loaded, Audience.public("x"), hybrid=False))
    loaded.update_documents(MAIN, [], {"title": "x"})  # nothing to do


@pytest.mark.parametrize("hybrid", [False, True], ids=["dense", "hybrid"])
def test_a_withheld_source_keeps_only_its_public_documents(loaded, hybrid):
    """A source whose permissions are stale: its restricted documents are withheld from everyone
    (in the engine's filter, and again in Python); its public ones and other sources' stay."""
    for audience in (Audience.of(ALICE), Audience.everyone([ALICE, DAVE]), Audience.of(CAROL)):
        expected = {key for key, (acl, _) in DOCS.items()
                    if audience.can_see(acl) and (key[0] != MAIN or acl.public)}
        assert docs_of(everything(loaded, audience.withholding([MAIN]), hybrid=hybrid)) == expected
    alice = docs_of(everything(loaded, Audience.of(ALICE).withholding([MAIN]), hybrid=hybrid))
    assert (MAIN, "public/handbook.md") in alice and (MAIN, "eng/design.md") not in alice
    assert (OTHER, "eng/design.md") in alice


@pytest.mark.parametrize("hybrid", [False, True], ids=["dense", "hybrid"])
def test_an_audience_limited_to_sources_gets_only_their_documents(loaded, hybrid):
    """A channel that may draw only on some sources: other sources' documents are out, public
    ones included, in the engine's filter; no source at all matches nothing."""
    for audience in (Audience.of(ALICE), Audience.everyone([ALICE, DAVE]), Audience.public("x")):
        expected = {key for key, (acl, _) in DOCS.items() if audience.can_see(acl) and key[0] == OTHER}
        assert expected
        assert docs_of(everything(loaded, audience.limited_to([OTHER]), hybrid=hybrid)) == expected
        assert everything(loaded, audience.limited_to([]), hybrid=hybrid) == []
        both = docs_of(everything(loaded, audience.limited_to([OTHER, MAIN]), hybrid=hybrid))
        assert both == docs_of(everything(loaded, audience, hybrid=hybrid))


def test_documents_reports_hash_and_acl_of_the_documents_asked_for(loaded):
    """What the answer cache re-checks: each document's hash and ACL as indexed now."""
    asked = ["eng/design.md", "public/handbook.md", "not/there.md"]
    states = loaded.documents(MAIN, asked)
    assert set(states) == {"eng/design.md", "public/handbook.md"}
    for doc in states:
        acl, _ = DOCS[(MAIN, doc)]
        assert states[doc].doc_hash == f"hash-{MAIN}-{doc}" and states[doc].acl == acl
    assert loaded.documents("fs:/nowhere", asked) == {} and loaded.documents(MAIN, []) == {}
    loaded.update_documents(MAIN, ["eng/design.md"], Acl.of(users=["carol@example.com"]).to_payload())
    assert loaded.documents(MAIN, ["eng/design.md"])["eng/design.md"].acl == Acl.of(users=["carol@example.com"])
    loaded.delete_documents(MAIN, ["eng/design.md"])
    assert loaded.documents(MAIN, ["eng/design.md"]) == {}


def test_update_documents_renames_without_touching_vectors(loaded):
    loaded.update_documents(MAIN, ["people/carol.md"], {"title": "Carol (moved)", "url": "https://x/new"})
    hits = [h for h in everything(loaded, Audience.of(CAROL), hybrid=False) if h.chunk.doc_id == "people/carol.md"]
    assert len(hits) == DOCS[(MAIN, "people/carol.md")][1]
    assert {(h.chunk.title, h.chunk.url) for h in hits} == {("Carol (moved)", "https://x/new")}
    assert all(h.vector is not None for h in hits)


def test_upsert_overwrites_by_id(loaded):
    i = next(i for i, c in enumerate(CORPUS.chunks) if c.doc_id == "public/handbook.md" and c.source == MAIN)
    old = CORPUS.chunks[i]
    new = make_chunk(old.source, old.doc_id, old.position, Acl.of(groups=["eng"]), text="rewritten", doc_hash="v2")
    assert new.id == old.id
    q = Query(dense=CORPUS.dense[i].tolist(), sparse=None)
    assert loaded.search(q, Audience.public("x"), limit=1, candidates=5)[0].chunk.id == old.id
    loaded.upsert([new], [CORPUS.dense[i].tolist()], [CORPUS.sparse[i]])
    assert loaded.count() == len(CORPUS.chunks)
    assert old.id not in {h.chunk.id for h in everything(loaded, Audience.public("x"), hybrid=True)}
    top = loaded.search(q, Audience.of(ALICE), limit=1, candidates=5)[0]
    assert top.chunk.id == old.id and top.chunk.text == "rewritten" and top.chunk.acl == Acl.of(groups=["eng"])
    assert loaded.document_hashes(MAIN)["public/handbook.md"] in {"v2", old.doc_hash}  # per chunk, last wins
    # a new dense vector replaces the old one too
    rng = np.random.default_rng(9)
    v = unit(rng)
    loaded.upsert([new], [v.tolist()], [SparseVec((), ())])
    top = loaded.search(Query(dense=v.tolist(), sparse=None), Audience.of(ALICE), limit=1, candidates=5)[0]
    assert top.chunk.id == new.id and top.similarity == pytest.approx(1.0, abs=1e-5)
    assert loaded.count() == len(CORPUS.chunks)


def test_persistence_across_close_and_reopen(opener, tmp_path):
    path = tmp_path / "index"
    first = opener(path)
    CORPUS.load(first)
    first.delete_documents(MAIN, ["ops/runbook.md"])
    expected_count = first.count()
    expected_hashes = first.document_hashes(MAIN)
    expected_hits = {name: [h.chunk.id for h in first.search(CORPUS.queries[2], aud, limit=10, candidates=20)]
                     for name, (aud, _) in AUDIENCES.items()}
    first.close()
    second = opener(path)
    try:
        second.ensure_collection()
        assert second.count() == expected_count
        assert second.document_hashes(MAIN) == expected_hashes
        for name, (aud, _) in AUDIENCES.items():
            assert [h.chunk.id for h in second.search(CORPUS.queries[2], aud, limit=10, candidates=20)] \
                == expected_hits[name], name
    finally:
        second.close()


def test_hit_rejected_by_the_python_rule_is_dropped_and_logged(loaded, monkeypatch, caplog):
    real = Audience.can_see

    def strict(self, acl):  # pretend the filter and the rule disagree on the eng-only design doc
        return real(self, acl) and acl != Acl.of(groups=["eng"])

    monkeypatch.setattr(Audience, "can_see", strict)
    with caplog.at_level(logging.ERROR):
        hits = everything(loaded, Audience.of(ALICE), hybrid=True)
    assert (MAIN, "eng/design.md") not in docs_of(hits)
    assert (MAIN, "shared/eng-sales.md") in docs_of(hits)
    dropped = [r for r in caplog.records if "may not see" in r.getMessage()]
    assert len(dropped) == DOCS[(MAIN, "eng/design.md")][1] + DOCS[(OTHER, "eng/design.md")][1]
    assert all(r.levelno == logging.ERROR for r in dropped)


def test_second_opener_in_the_same_process_is_busy(index, opener, tmp_path):
    index.ensure_collection()
    with pytest.raises(IndexBusy, match="open in another process"):
        opener(tmp_path / "index")


_HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from tests.index.test_index_contract import OPENERS
    idx = OPENERS[{kind!r}](Path({path!r}))
    idx.ensure_collection()
    print("ready", flush=True)
    sys.stdin.read()          # hold the index until the parent closes our stdin
    idx.close()
    print("closed", flush=True)
""")


def _hold(kind: str, path: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER.format(root=str(ROOT), kind=kind, path=str(path))],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise AssertionError(f"holder did not start: {line!r} {proc.stderr.read()}")
    return proc


def test_another_process_holding_the_folder_gives_index_busy(kind, opener, tmp_path):
    path = tmp_path / "index"
    holder = _hold(kind, path)
    try:
        with pytest.raises(IndexBusy, match="open in another process"):
            opener(path)
    finally:
        holder.stdin.close()
        assert holder.stdout.readline().strip() == "closed"
        holder.wait(timeout=30)
    idx = opener(path)  # released on close
    idx.close()


def test_a_killed_holder_releases_the_folder(kind, opener, tmp_path):
    path = tmp_path / "index"
    holder = _hold(kind, path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    holder.stdin.close()
    idx = opener(path)
    try:
        idx.ensure_collection()
        assert idx.count() == 0
    finally:
        idx.close()


def test_concurrent_searches_and_writes_from_threads(loaded, caplog):
    """The worker's thread pool: many readers, one writer, no errors, no leaks."""
    rng = np.random.default_rng(77)
    extra = [make_chunk("fs:/live", f"live/{i}.md", 0, Acl.of(groups=["eng"])) for i in range(60)]
    extra_dense = unit(rng, len(extra)).tolist()
    extra_sparse = [sparse_vec(rng) for _ in extra]
    audiences = [a for a, _ in AUDIENCES.values()]
    errors: list[BaseException] = []
    leaks: list = []
    stop = threading.Event()

    def reader(seed: int):
        r = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                aud = audiences[int(r.integers(len(audiences)))]
                q = CORPUS.queries[int(r.integers(len(CORPUS.queries)))]
                for h in loaded.search(q, aud, limit=10, candidates=30):
                    if not aud.can_see(h.chunk.acl):
                        leaks.append(h)
                loaded.count()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def writer():
        try:
            for i in range(0, len(extra), 10):
                loaded.upsert(extra[i:i + 10], extra_dense[i:i + 10], extra_sparse[i:i + 10])
                loaded.document_hashes("fs:/live")
                loaded.delete_documents("fs:/live", [extra[i].doc_id])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    with caplog.at_level(logging.ERROR):
        readers = [threading.Thread(target=reader, args=(s,)) for s in range(6)]
        w = threading.Thread(target=writer)
        for t in readers:
            t.start()
        w.start()
        w.join(timeout=60)
        stop.set()
        for t in readers:
            t.join(timeout=60)
    assert not errors, errors
    assert not leaks
    assert not [r for r in caplog.records if "may not see" in r.getMessage()]
    assert loaded.count() == len(CORPUS.chunks) + len(extra) - len(extra) // 10
    assert len(loaded.document_hashes("fs:/live")) == len(extra) - len(extra) // 10


# === part 2: the two implementations against each other, and against brute force ==========

@pytest.fixture(scope="module")
def trio(tmp_path_factory):
    """The same corpus in qdrant-client local mode, edge (defaults) and edge (exact search)."""
    base = tmp_path_factory.mktemp("trio")
    indexes = {"local": open_local(base / "local"), "edge": open_edge(base / "edge"),
               "edge-exact": open_edge(base / "edge-exact", exact=True)}
    for idx in indexes.values():
        CORPUS.load(idx)
    yield indexes
    for idx in indexes.values():
        idx.close()


PARITY_AUDIENCES = ["public-only", "alice (email + group)", "bob (email + group)", "dave (groups only)",
                    "channel alice+bob"]


@pytest.mark.parametrize("name", PARITY_AUDIENCES)
def test_dense_top_k_ids_are_the_same(trio, name):
    audience = AUDIENCES[name][0]
    for q in CORPUS.queries:
        dq = Query(dense=q.dense, sparse=None)
        got = {k: idx.search(dq, audience, limit=10, candidates=30) for k, idx in trio.items()}
        ids = {k: [h.chunk.id for h in hits] for k, hits in got.items()}
        assert ids["edge"] == ids["local"]
        assert ids["edge-exact"] == ids["local"]
        assert [h.score for h in got["edge"]] == pytest.approx([h.score for h in got["local"]], abs=1e-5)


@pytest.mark.parametrize("name", PARITY_AUDIENCES)
def test_hybrid_fused_ids_and_scores_are_the_same(trio, name):
    """With limit >= 2 * candidates the whole fused list comes back, so ties at the
    limit cannot make the sets differ; equal per-id RRF scores mean equal ranks in
    both prefetches (dense cosine and sparse dot product with IDF)."""
    audience = AUDIENCES[name][0]
    for q in CORPUS.queries:
        got = {k: idx.search(q, audience, limit=20, candidates=10) for k, idx in trio.items()}
        scores = {k: {h.chunk.id: h.score for h in hits} for k, hits in got.items()}
        assert set(scores["edge"]) == set(scores["local"])
        assert set(scores["edge-exact"]) == set(scores["local"])
        for cid, s in scores["local"].items():
            assert scores["edge"][cid] == pytest.approx(s, abs=1e-6)
        # and the top 5 as a set, when there is no tie across the cut
        ranked = sorted(scores["local"].values(), reverse=True)
        if len(ranked) > 5 and not math.isclose(ranked[4], ranked[5], abs_tol=1e-9):
            top = {k: {h.chunk.id for h in idx.search(q, audience, limit=5, candidates=10)}
                   for k, idx in trio.items()}
            assert top["edge"] == top["local"] == top["edge-exact"]


# --- 3,000 points, 1% visible: edge == brute force ---------------------------------------

N_BIG = 3000


def _big_corpus():
    rng = np.random.default_rng(4242)
    chunks, sparse = [], []
    for i in range(N_BIG):
        if i % 200 == 0:
            acl = Acl.of(public=True)                      # 15 public
        elif i % 200 == 100:
            acl = Acl.of(groups=["rare"])                  # 15 in the rare group
        else:
            acl = Acl.of(groups=[f"g{i % 10}"], users=[f"u{i % 37}@example.com"])
        chunks.append(make_chunk("fs:/big", f"big/{i:05d}.md", 0, acl))
        sparse.append(sparse_vec(rng, nnz=6, vocab=2000))
    return chunks, unit(rng, N_BIG), sparse, [unit(rng) for _ in range(12)]


BIG = _big_corpus()
RARE = Audience.of(Principal.of("someone@example.com", ["rare"]))
BROAD = Audience.of(Principal.of("u3@example.com", ["g1", "g2", "g3"]))


def _brute_force(audience: Audience, q: np.ndarray, k: int) -> list[str]:
    chunks, dense, _, _ = BIG
    visible = np.array([audience.can_see(c.acl) for c in chunks])
    scores = np.where(visible, dense @ q, -np.inf)
    order = np.argsort(-scores, kind="stable")[:k]
    return [chunks[i].id for i in order if np.isfinite(scores[i])]


@pytest.fixture(scope="module", params=["edge", "edge-hnsw"])
def big(request, tmp_path_factory):
    """Edge only: qdrant-client local mode always scans (and needs ~10 s to load 3,000 points)."""
    path = tmp_path_factory.mktemp("big") / request.param
    if request.param == "edge":
        idx = open_edge(path)
    else:  # lower both thresholds so optimize() builds HNSW on 3,000 points and search uses it
        idx = open_edge(path, indexing_threshold_kb=1, full_scan_threshold_kb=10)  # and search it
    chunks, dense, sparse, _ = BIG
    idx.ensure_collection()
    idx.upsert(chunks, dense.tolist(), sparse)
    if request.param == "edge-hnsw":
        assert idx.optimize() is True
        assert idx._shard.info().indexed_vectors_count >= 2 * N_BIG  # dense HNSW + sparse index
    yield request.param, idx
    idx.close()


def test_selective_filter_matches_brute_force(big):
    name, idx = big
    chunks, dense, _, queries = BIG
    assert sum(RARE.can_see(c.acl) for c in chunks) == N_BIG // 100   # 1% visible
    for q in queries:
        expected = _brute_force(RARE, q, 10)
        hits = idx.search(Query(dense=q.tolist(), sparse=None), RARE, limit=10, candidates=50)
        assert [h.chunk.id for h in hits] == expected  # recall 1.0 at k=10, same order


def test_broad_filter_recall(big):
    """~40% visible: exact on a scan; on HNSW, recall@10 stays high."""
    name, idx = big
    _, _, _, queries = BIG
    recalls = []
    for q in queries:
        expected = _brute_force(BROAD, q, 10)
        got = [h.chunk.id for h in idx.search(Query(dense=q.tolist(), sparse=None), BROAD, limit=10,
                                              candidates=50)]
        recalls.append(len(set(got) & set(expected)) / 10)
        if name != "edge-hnsw":
            assert got == expected
    assert np.mean(recalls) >= (0.95 if name == "edge-hnsw" else 1.0)


def test_selective_filter_hybrid_only_returns_visible_points(big):
    name, idx = big
    chunks, _, sparse, queries = BIG
    visible = {c.id for c in chunks if RARE.can_see(c.acl)}
    for i, q in enumerate(queries):
        hits = idx.search(Query(dense=q.tolist(), sparse=sparse[i * 7]), RARE, limit=30, candidates=30)
        assert {h.chunk.id for h in hits} == visible  # 30 visible, dense prefetch alone brings all of them


# --- edge-specific details ------------------------------------------------------------------

def test_edge_acl_filter_shape():
    public_only = edge_acl_filter(Audience.public("x"))
    assert len(public_only.must) == 1 and public_only.should is None
    (cond,) = public_only.must
    assert cond.key == "acl_public"
    # the engine must receive a boolean, not the integer 1 (see edge_index's docstring)
    assert type(cond.match.value) is bool and cond.match.value is True
    flt = edge_acl_filter(Audience.everyone([ALICE, CAROL, DAVE, UNKNOWN]))
    keys = [[c.key for c in group.should] for group in flt.must]
    assert keys == [["acl_public", "acl_users", "acl_groups"], ["acl_public", "acl_users"],
                    ["acl_public", "acl_groups"], ["acl_public"]]
    for group in flt.must:
        for c in group.should[1:]:
            assert list(c.match.value)  # never an empty MatchAny
    assert list(flt.must[2].should[1].match.value) == ["eng", "ops"]


def test_edge_engine_locks_the_shard_itself(tmp_path):
    """Without our flock, the engine's WAL lock still refuses a second opener."""
    import qdrant_edge as qe

    idx = open_edge(tmp_path / "index")
    try:
        idx.ensure_collection()
        with pytest.raises(Exception, match="WouldBlock"):
            qe.EdgeShard.load(str(tmp_path / "index" / "shard"))
    finally:
        idx.close()


def test_edge_refuses_a_different_dimension(tmp_path):
    idx = open_edge(tmp_path / "index")
    idx.ensure_collection()
    idx.close()
    with pytest.raises(Exception, match="incompatible"):
        EdgeIndex(path=tmp_path / "index", dim=DIM + 1)
    EdgeIndex(path=tmp_path / "index", dim=DIM).close()  # the failed open released the lock


def test_edge_closed_index_refuses_calls(tmp_path):
    idx = open_edge(tmp_path / "index")
    CORPUS.load(idx)
    idx.close()
    idx.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        idx.count()
