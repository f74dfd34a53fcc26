"""The rebuild use case (usecases/rebuild.py) and the switching index (connectors/embeddings/switching.py)
on real Qdrant Edge generations, with ``openai`` embedders talking to the /v1/embeddings stand-in:
a rebuild that stops on the server's 500s continues where it stopped when run again; the check
refuses a switch when ACLs keep changing under it; a question is searched in the generation whose
embedder embedded it, also across a switch."""

from __future__ import annotations

import contextlib
import uuid

import pytest

from chatops.access import Acl, Audience, Principal
from connectors.embeddings.base import EmbeddingUnavailable, WrongEmbedder
from connectors.embeddings.openai_embeddings import OpenAIEmbedder
from connectors.embeddings.sparse import Bm25
from connectors.embeddings.switching import GenerationChanged, Pair, SwitchingIndex
from connectors.index.base import Chunk, Query
from connectors.index.edge_index import EdgeIndex
from connectors.index.generations import EmbeddedGenerations, GenerationState, generation_name
from standins.fake_embeddings import FakeEmbeddings
from usecases.rebuild import Paused, SwitchRefused, compare, rebuild

KEY = "sk-rebuild-unit-51aa"
OLD, NEW = "model-old", "model-new"
SOURCE = "fs:/srv/docs"


@pytest.fixture(scope="module")
def bm25():
    return Bm25()


@pytest.fixture
def server():
    with FakeEmbeddings({OLD: 64, NEW: 96}, api_key=KEY) as fake:
        yield fake


def embedder(server, model, bm25, retries=2):
    return OpenAIEmbedder(model, base_url=server.base_url, api_key=KEY, batch_size=4, concurrency=1,
                          max_retries=retries, sparse=bm25)


def chunks(n_docs=10, per_doc=4) -> list[Chunk]:
    out = []
    for d in range(n_docs):
        acl = Acl.of(public=True) if d % 2 == 0 else Acl.of(groups=["sre"])
        for p in range(per_doc):
            out.append(Chunk(id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{d}/{p}")), source=SOURCE, doc_id=f"doc{d}.md",
                             title=f"Document {d}", heading="", text=f"passage {p} of document {d} about topic {d}",
                             position=p, acl=acl, doc_hash=f"h{d}"))
    return out


@pytest.fixture
def layout(tmp_path, server, bm25):
    """An index folder whose first generation (its own files) was built with OLD."""
    old = embedder(server, OLD, bm25)
    first = EdgeIndex(path=tmp_path, dim=old.dim, embedder=OLD, provider="openai")
    first.ensure_collection()
    cs = chunks()
    dense, sparse = old.embed_documents([c.embedding_text() for c in cs])
    first.upsert(cs, dense, sparse)
    gens = EmbeddedGenerations(tmp_path, "chatops")
    yield gens, first, old
    first.close()


def open_new(gens, new):
    name = generation_name("chatops", "openai", NEW, new.dim)
    target = EdgeIndex(path=gens.prepare(name), dim=new.dim, embedder=NEW, provider="openai")
    target.ensure_collection()
    return name, target


def test_a_rebuild_stopped_by_500s_continues_where_it_stopped(layout, server, bm25):
    gens, first, _ = layout
    new = embedder(server, NEW, bm25, retries=0)
    name, target = open_new(gens, new)
    state = GenerationState(name, "openai", NEW, new.dim)
    pages: list[str] = []

    def progress(line):   # after the second page of 8 chunks the server starts failing
        pages.append(line)
        if sum("chunks (" in p for p in pages) == 2:
            server.fail_next(1, status=500)   # no retries: the rebuild stops on it

    n = len(server.requests)
    with pytest.raises(EmbeddingUnavailable):
        rebuild(first, target, new, gens, state, progress=progress, every=0, page=8)
    assert gens.state(name).state == "building" and gens.state(name).done == 16
    assert gens.active() == "chatops" and target.count() == 16                    # nothing switched
    target.close()

    name, target = open_new(gens, new)
    before = [r for r in server.requests[n:] if r.get("status") == 200]
    report = rebuild(first, target, new, gens, gens.state(name), page=8)
    after = [r for r in server.requests[n:] if r.get("status") == 200][len(before):]
    assert report.switched and report.skipped == 16 and report.embedded == 40 - 16
    assert sum(len(r["input"]) for r in after) == 40 - 16                        # only what was missing
    assert gens.active() == name and gens.state(name).state == "checked"
    assert gens.names() == ["chatops", name]                                     # the old one kept


def test_the_check_refuses_a_switch_while_acls_keep_changing(layout, server, bm25):
    gens, first, _ = layout
    new = embedder(server, NEW, bm25)
    name, target = open_new(gens, new)
    flips = iter(range(1000))

    class Racing:
        """The active generation as a sync on another host changes it: a new ACL on doc1.md each
        time it is read at switch time (no lock covers another process)."""

        racing = False

        def __getattr__(self, item):
            return getattr(first, item)

        def scroll_chunks(self, offset=None, limit=256):
            if self.racing and offset is None:
                first.update_documents(SOURCE, ["doc1.md"], Acl.of(groups=[f"team{next(flips)}"]).to_payload())
            return first.scroll_chunks(offset, limit)

    racing = Racing()

    @contextlib.contextmanager
    def exclusive():
        racing.racing = True
        yield

    with pytest.raises(SwitchRefused) as refused:
        rebuild(racing, target, new, gens, GenerationState(name, "openai", NEW, new.dim), exclusive=exclusive)
    assert "1 documents with another ACL" in str(refused.value) and "doc1.md" in str(refused.value)
    assert "run `chatops index rebuild` again" in str(refused.value)
    assert gens.active() == "chatops"                                            # nothing switched
    assert gens.state(name).detail.startswith("check refused")


def test_compare_names_what_differs(layout, server, bm25):
    gens, first, _ = layout
    new = embedder(server, NEW, bm25)
    name, target = open_new(gens, new)
    rebuild(first, target, new, gens, GenerationState(name, "openai", NEW, new.dim), switch=False)
    target = EdgeIndex(path=gens.location(name), dim=new.dim)
    assert not compare(first, target)
    target.update_documents(SOURCE, ["doc3.md"], Acl.of(public=True).to_payload())     # a leak, were it switched
    target.delete_documents(SOURCE, ["doc4.md"])
    diff = compare(first, target)
    assert diff.acl == [(SOURCE, "doc3.md")] and diff.missing == [(SOURCE, "doc4.md")]
    target.close()


def test_a_question_is_searched_where_its_embedder_built(layout, server, bm25):
    gens, first, old = layout
    new = embedder(server, NEW, bm25)
    name, target = open_new(gens, new)
    rebuild(first, target, new, gens, GenerationState(name, "openai", NEW, new.dim), switch=False)
    opened: list[str] = []

    def open_pair(gen):
        opened.append(gen)
        return Pair(gen, EdgeIndex(path=gens.location(gen), dim=new.dim), new)

    now = [0.0]
    switching = SwitchingIndex(Pair("chatops", first, old), open_pair=open_pair, stamp=gens.stamp,
                               active=gens.active, poll=2.0, grace=30.0, clock=lambda: now[0])
    sre = Audience.of(Principal.of("ana@x.example", ["sre"]))
    with pytest.raises(WrongEmbedder):   # untagged and of another length than the active generation's
        switching.search(Query([0.1] * 96, None), sre, limit=3, candidates=10)
    dense, sparse = switching.embedder.embed_query("passage 1 of document 3")
    assert len(dense) == 64 and dense.generation == "chatops"
    gens.switch(name)
    now[0] += 1.0      # within the poll interval: not looked at yet
    assert switching.search(Query(dense, sparse), sre, limit=3, candidates=10)
    now[0] += 1.5      # past it: the next call follows the pointer, opening the new pair
    d2, s2 = switching.embedder.embed_query("passage 1 of document 3")
    assert opened == [name] and len(d2) == 96 and d2.generation == name
    assert server.requests[-1]["model"] == NEW
    # the question embedded before the switch is still searched in the old generation...
    hits = switching.search(Query(dense, sparse), sre, limit=3, candidates=10)
    assert hits and {len(h.vector) for h in hits} == {64}                       # the old generation's vectors
    assert {len(h.vector) for h in switching.search(Query(d2, s2), sre, limit=3, candidates=10)} == {96}
    # ...until the grace period closed it: then asked again, never searched with the wrong model
    now[0] += 31
    switching.count()
    with pytest.raises(GenerationChanged):
        switching.search(Query(dense, sparse), sre, limit=3, candidates=10)
    with pytest.raises(GenerationChanged):   # untagged: the configured (first) embedder's, not the new one's
        switching.search(Query(list(d2), s2), sre, limit=3, candidates=10)
    # writes made with the old embedder are made again with the new one
    extra = [Chunk(id=str(uuid.uuid4()), source=SOURCE, doc_id="late.md", title="Late", heading="",
                   text="a late passage", position=0, acl=Acl.of(public=True), doc_hash="l")]
    stale = switching.embedder.embed_documents([extra[0].embedding_text()])
    stale[0].generation = "chatops"
    switching.upsert(extra, *stale)
    assert switching.documents(SOURCE, ["late.md"])
    switching.close()


def test_a_rebuild_pauses_at_its_time_budget_and_the_next_run_continues(layout, server, bm25):
    """A worker task has a time limit: the copy stops between pages at its budget, and the next task
    (the handler queues it) skips what is written."""
    gens, first, _ = layout
    new = embedder(server, NEW, bm25)
    name, target = open_new(gens, new)
    ticks = iter(range(0, 10_000, 10))      # every call of the clock: 10 s later
    with pytest.raises(Paused):
        rebuild(first, target, new, gens, GenerationState(name, "openai", NEW, new.dim), page=8, budget=25,
                clock=lambda: float(next(ticks)))
    assert gens.state(name).state == "building" and 0 < gens.state(name).done < 40 and gens.active() == "chatops"
    report = rebuild(first, target, new, gens, gens.state(name), page=8)
    assert report.switched and report.skipped == gens.state(name).total - report.embedded > 0


def test_a_process_that_cannot_open_the_new_generation_keeps_answering_from_the_old_one(layout, server, bm25):
    gens, first, old = layout
    new = embedder(server, NEW, bm25)
    name, target = open_new(gens, new)
    rebuild(first, target, new, gens, GenerationState(name, "openai", NEW, new.dim), switch=False)
    attempts: list[str] = []

    def open_pair(gen):   # the first time, the new embedder's server is not reachable from here
        attempts.append(gen)
        if len(attempts) == 1:
            raise EmbeddingUnavailable("the embedding server did not answer")
        return Pair(gen, EdgeIndex(path=gens.location(gen), dim=new.dim), new)

    now = [0.0]
    switching = SwitchingIndex(Pair("chatops", first, old), open_pair=open_pair, stamp=gens.stamp,
                               active=gens.active, poll=1.0, clock=lambda: now[0])
    sre = Audience.of(Principal.of("ana@x.example", ["sre"]))
    gens.switch(name)
    now[0] += 2
    dense, sparse = switching.embedder.embed_query("passage 2 of document 5")    # the poll fails: still the old
    assert dense.generation == "chatops" and switching.search(Query(dense, sparse), sre, limit=3, candidates=10)
    now[0] += 2
    dense, sparse = switching.embedder.embed_query("passage 2 of document 5")    # the next poll succeeds
    assert dense.generation == name and attempts == [name, name]
    assert {len(h.vector) for h in switching.search(Query(dense, sparse), sre, limit=3, candidates=10)} == {96}
    switching.close()
