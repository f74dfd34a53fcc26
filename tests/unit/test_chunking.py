"""connectors.sources.chunking: sections -> bounded, stable chunks."""

import uuid

from chatops.access import Acl
from connectors.sources.base import Document, Section
from connectors.sources.chunking import MAX_WORDS, chunk_document, chunk_id

ACL = Acl.of(groups=["eng"])


def doc(*sections, doc_id="runbooks/db.md", title="Database runbook", url=None):
    return Document(doc_id=doc_id, title=title, sections=tuple(sections), acl=ACL,
                    content_hash="h1", url=url)


def words(n, prefix="w"):
    return " ".join(f"{prefix}{i}" for i in range(n))


def all_words(chunks):
    return [w for c in chunks for w in c.text.split()]


# --- ids ------------------------------------------------------------------------

def test_chunk_id_is_a_stable_uuid():
    a = chunk_id("fs:/docs", "a.md", 0)
    assert a == chunk_id("fs:/docs", "a.md", 0)
    assert uuid.UUID(a).version == 5


def test_chunk_id_differs_by_source_doc_and_position():
    base = chunk_id("fs:/docs", "a.md", 0)
    others = {chunk_id("fs:/other", "a.md", 0), chunk_id("fs:/docs", "b.md", 0),
              chunk_id("fs:/docs", "a.md", 1)}
    assert base not in others and len(others) == 3
    # The separator keeps ("s", "ab") and ("sa", "b") apart.
    assert chunk_id("s", "ab", 1) != chunk_id("sa", "b", 1)


def test_same_input_gives_same_chunks_and_ids():
    d = doc(Section("A", words(400)), Section("B", "short text"))
    first = chunk_document(d, "fs:/docs")
    second = chunk_document(d, "fs:/docs")
    assert [c.id for c in first] == [c.id for c in second]
    assert first == second


def test_ids_unique_within_document_and_differ_across_documents():
    d1 = doc(Section("A", words(500)), Section("B", words(50)))
    d2 = doc(Section("A", words(500)), Section("B", words(50)), doc_id="runbooks/other.md")
    c1, c2 = chunk_document(d1, "fs:/docs"), chunk_document(d2, "fs:/docs")
    assert len({c.id for c in c1}) == len(c1) > 2
    assert not {c.id for c in c1} & {c.id for c in c2}
    assert [c.position for c in c1] == list(range(len(c1)))
    assert all(c.id == chunk_id("fs:/docs", d1.doc_id, c.position) for c in c1)


# --- sizes ------------------------------------------------------------------------------

def test_no_chunk_exceeds_max_words_and_no_word_is_lost():
    long_sentence = words(MAX_WORDS * 3 + 7, "s")           # one sentence, no punctuation
    sentences = " ".join(f"Sentence {i} has a few words." for i in range(200))
    paragraphs = "\n\n".join(words(40, f"p{i}_") for i in range(12))
    d = doc(Section("Long", long_sentence), Section("Sentences", sentences), Section("Paras", paragraphs))
    chunks = chunk_document(d, "fs:/docs")
    assert chunks
    assert all(len(c.text.split()) <= MAX_WORDS for c in chunks)
    expected = long_sentence.split() + sentences.split() + paragraphs.split()
    assert all_words(chunks) == expected


def test_custom_max_words():
    d = doc(Section("", words(100)))
    chunks = chunk_document(d, "fs:/docs", max_words=30)
    assert all(len(c.text.split()) <= 30 for c in chunks)
    assert len(chunks) == 4
    assert all_words(chunks) == words(100).split()


def test_small_paragraphs_are_merged_and_kept_whole():
    paras = ["alpha beta gamma.", "delta epsilon.", "zeta."]
    chunks = chunk_document(doc(Section("H", "\n\n".join(paras))), "fs:/docs")
    assert len(chunks) == 1
    assert chunks[0].text == "alpha beta gamma.\n\ndelta epsilon.\n\nzeta."


def test_long_paragraph_splits_at_sentence_ends():
    sentence = "Restart the primary database node now. "
    para = (sentence * 40).strip()          # 240 words in 40 sentences
    chunks = chunk_document(doc(Section("", para)), "fs:/docs")
    assert len(chunks) >= 2
    for c in chunks:
        assert c.text.split()[-1] == "now."      # every chunk ends at a sentence end
        assert len(c.text.split()) <= MAX_WORDS


# --- sections and metadata ---------------------------------------------------------------------

def test_chunks_never_span_two_sections():
    d = doc(Section("A", words(10, "a")), Section("B", words(10, "b")), Section("A › C", words(10, "c")))
    chunks = chunk_document(d, "fs:/docs")
    assert [c.heading for c in chunks] == ["A", "B", "A › C"]
    for c, prefix in zip(chunks, "abc"):
        assert all(w.startswith(prefix) for w in c.text.split())


def test_large_sections_keep_their_heading_on_every_chunk():
    d = doc(Section("A", words(400, "a")), Section("B", words(400, "b")))
    chunks = chunk_document(d, "fs:/docs")
    for c in chunks:
        prefixes = {w[0] for w in c.text.split()}
        assert prefixes == {c.heading.lower()}


def test_title_heading_and_acl_carried_and_title_in_embedding_text():
    d = doc(Section("Failover", words(300)), Section("", "top text"), url="https://wiki/db")
    chunks = chunk_document(d, "fs:/docs")
    for c in chunks:
        assert c.title == "Database runbook"
        assert c.acl == ACL
        assert c.source == "fs:/docs" and c.doc_id == "runbooks/db.md"
        assert c.doc_hash == "h1" and c.url == "https://wiki/db"
        emb = c.embedding_text()
        assert "Database runbook" in emb
        assert c.text in emb
        if c.heading:
            assert c.heading in emb


def test_empty_sections_give_no_chunks():
    assert chunk_document(doc(Section("A", "  \n\n  ")), "fs:/docs") == []
    assert chunk_document(doc(), "fs:/docs") == []
