"""Streamed answers: what reaches the reader piece by piece is what the whole answer would be, and
nothing the whole answer's checks would remove is ever written, not even for a moment."""

from __future__ import annotations

import pytest

from connectors.llm.base import Completion
from usecases.answer import PieceCleaner, SourceDoc, apply_citations, generate
from usecases.claims import claim_free_prefix, strip_state_claims
from usecases.streaming import SafeStreamer, StreamStopped

SOURCES = [SourceDoc(1, "doc-a", "Laptops", "https://wiki.corp.example/a", ("…",), 1.0),
           SourceDoc(2, "doc-b", "VPN", None, ("…",), 0.9)]


def run(chunks: list[str], sources=SOURCES) -> tuple[list[str], SafeStreamer, PieceCleaner]:
    written: list[str] = []
    cleaner = PieceCleaner(sources)
    streamer = SafeStreamer(written.append, cleaner)
    for chunk in chunks:
        streamer.feed(chunk)
    streamer.finish()
    return written, streamer, cleaner


def whole(text: str, sources=SOURCES) -> str:
    cleaned, _claims = strip_state_claims(text)
    return apply_citations(cleaned, sources)[0]


def test_a_citation_split_across_chunks_is_checked_whole() -> None:
    written, streamer, cleaner = run(["Laptops come from IT [", "1", "2]. Ask the desk [2", "]. Done."])
    assert not any("[12]" in w or "[1" in w and "[1]" not in w for w in written)
    assert streamer.text == "Laptops come from IT. Ask the desk [1]. Done."
    assert cleaner.dropped == 1
    assert [c.n for c in cleaner.citations] == [1] and cleaner.citations[0].source == "doc-b"


def test_nothing_is_written_before_a_sentence_ends() -> None:
    written: list[str] = []
    streamer = SafeStreamer(written.append, PieceCleaner(SOURCES))
    for chunk in ["Order a laptop", " from the portal [1", "]", " and wait"]:
        streamer.feed(chunk)
        assert written == []
    streamer.feed(".")
    assert written == []            # the boundary is the whitespace after the full stop
    streamer.feed(" Then sign")
    assert written == ["Order a laptop from the portal [1] and wait."]


def test_a_url_split_across_chunks_is_written_whole() -> None:
    written, streamer, _ = run(["See https://attack", "er.example/?q=sec", "ret for details. Next."])
    assert written[0] == "See https://attacker.example/?q=secret for details."
    assert all("https://attack" not in w or "attacker.example/?q=secret" in w for w in written)


def test_a_markdown_link_split_across_chunks_and_sentences_is_written_whole() -> None:
    written, _, _ = run(["Read [the policy. It is", " short](https://evil.exa", "mple/x). Then ask."])
    assert written[0] == "Read [the policy. It is short](https://evil.example/x)."


def test_a_claim_sentence_is_never_written() -> None:
    chunks = ["Laptops are ordered in the portal [1]. I ", "have approved", " your request. ", "Ask IT [2]."]
    written, streamer, cleaner = run(chunks)
    assert not any("approved" in w for w in written)
    assert cleaner.claims == 1
    assert streamer.text == "Laptops are ordered in the portal [1]. Ask IT [2]."
    assert streamer.text == whole("".join(chunks))


def test_code_is_held_until_it_closes_and_left_alone() -> None:
    chunks = ["Run this:\n```\nsudo ", "reboot. now [9]\n", "echo ok. x\n```\nDone [1]."]
    written, streamer, _ = run(chunks)
    assert any("```\nsudo reboot. now [9]\necho ok. x\n```" in w for w in written)
    assert streamer.text == whole("".join(chunks))


@pytest.mark.parametrize("text", [
    "Plain answer with [1] and [2].\n\n- a bullet [3]\n- another [1]\n\nEnd.",
    "First [2]. Second [1][2]. Third [7].",
    "A `code [1]` span. After it [1].",
    "One.\nI approved it.\nTwo [1].",
])
@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_streamed_text_equals_the_whole_answer_however_it_is_chunked(text: str, size: int) -> None:
    chunks = [text[i:i + size] for i in range(0, len(text), size)]
    written, streamer, _ = run(chunks)
    assert "".join(written) == streamer.text == whole(text)


def test_a_stop_raised_by_the_writer_reaches_the_feeder() -> None:
    def write(piece: str) -> None:
        raise StreamStopped()
    streamer = SafeStreamer(write, PieceCleaner(SOURCES))
    with pytest.raises(StreamStopped):
        streamer.feed("One sentence. Two")


class StreamingStub:
    model = "stub"

    def __init__(self, chunks: list[str]) -> None:
        self.chunks = chunks
        self.sent = 0

    def complete(self, messages, *, max_tokens=None, tools=None, model=None) -> Completion:
        return Completion(text="".join(self.chunks), model=self.model)

    def stream(self, messages, on_text, *, max_tokens=None, tools=None, model=None) -> Completion:
        for chunk in self.chunks:
            self.sent += 1
            on_text(chunk)
        return Completion(text="".join(self.chunks).strip(), model=self.model, prompt_tokens=5, completion_tokens=9)


def test_generate_streams_the_answer_it_records() -> None:
    chunks = ["Laptops come from IT [1", "]. I approved ", "your request. See https://x.example/a. VPN [3]."]
    written: list[str] = []
    streamed = generate("laptop?", SOURCES, StreamingStub(chunks), opener=lambda: written.append)
    plain = generate("laptop?", SOURCES, StreamingStub(chunks))
    assert "".join(written) == streamed.text == plain.text
    assert streamed.citations == plain.citations and streamed.citations_dropped == plain.citations_dropped == 1
    assert streamed.note == plain.note != ""
    assert streamed.usage == {"stub": [5, 9]} and not streamed.stopped


def test_generate_ends_when_the_reader_stops() -> None:
    llm = StreamingStub(["One [1]. ", "Two. ", "Three. ", "Four. ", "Five."])
    written: list[str] = []

    def write(piece: str) -> None:
        if len(written) == 2:
            raise StreamStopped()
        written.append(piece)
    answer = generate("q", SOURCES, llm, opener=lambda: write)
    assert answer.stopped and answer.text == "One [1]. Two."
    assert llm.sent == 3      # the chunk that completed the third sentence was the last one asked for
    assert answer.to_record()["stopped"] is True


def test_generate_without_an_opened_stream_answers_as_before() -> None:
    answer = generate("q", SOURCES, StreamingStub(["One [1]."]), opener=lambda: None)
    assert answer.text == "One [1]." and not answer.stopped


# -- word by word: the words of a sentence no claim can include are written before it ends ---------

def run_words(chunks: list[str], sources=SOURCES) -> tuple[list[str], SafeStreamer, PieceCleaner]:
    written: list[str] = []
    cleaner = PieceCleaner(sources)
    streamer = SafeStreamer(written.append, cleaner, claim_free_prefix)
    for chunk in chunks:
        streamer.feed(chunk)
    streamer.finish()
    return written, streamer, cleaner


def test_words_are_written_before_their_sentence_ends() -> None:
    written: list[str] = []
    streamer = SafeStreamer(written.append, PieceCleaner(SOURCES), claim_free_prefix)
    streamer.feed("Order a")
    assert written == ["Order"]              # "a" may still grow
    streamer.feed(" laptop from the portal [1")
    assert "".join(written) == "Order a laptop from the portal"   # the open citation is held
    streamer.feed("] and wait.")
    streamer.finish()
    assert "".join(written) == streamer.text == "Order a laptop from the portal [1] and wait."


CLAIMS = [
    "The billing service has been restarted and is healthy again.",
    "Your access request was approved by the owner.",
    "Good news: I have granted you the admin role.",
    "The ticket you asked about has now been created in Jira.",
    "You have now been added to the finance group.",
    "Approved by @ana, the change is live.",
    "I've gone ahead and restarted it for you.",
]


@pytest.mark.parametrize("claim", CLAIMS)
@pytest.mark.parametrize("size", [1, 2, 5, 11, 1000])
def test_no_word_of_a_claim_is_ever_written(claim: str, size: int) -> None:
    text = f"Laptops come from IT [1]. {claim} Ask the desk [2]."
    chunks = [text[i:i + size] for i in range(0, len(text), size)]
    written: list[str] = []
    shown: list[str] = []

    def write(piece: str) -> None:
        written.append(piece)
        shown.append("".join(written))
        # what the reader sees at every moment holds no claim, not even its first words
        assert strip_state_claims("".join(written))[1] == 0
    cleaner = PieceCleaner(SOURCES)
    streamer = SafeStreamer(write, cleaner, claim_free_prefix)
    for chunk in chunks:
        streamer.feed(chunk)
    streamer.finish()
    assert cleaner.claims == 1
    assert streamer.text.startswith("Laptops come from IT [1].") and streamer.text.endswith("Ask the desk [2].")
    # whatever of the claim's sentence was shown comes before the first word a claim could start with
    verb = claim.split()[claim_free_prefix(claim) and len(claim[:claim_free_prefix(claim)].split())]
    assert verb not in streamer.text.replace("Laptops come from IT [1].", "").replace("Ask the desk [2].", "")


@pytest.mark.parametrize("text", [
    "If your request was approved, restart the laptop [1]. Then sign in.",
    "Laptops are ordered in the portal and arrive within a week [1]. VPN access needs a token [2].",
    "Once the service has been restarted, check the logs [1].",
    "A `code [1]` span. After it [1], more words follow here.",
    "See https://attacker.example/?q=secret for details and [the guide](https://wiki.corp.example/a) too.",
])
@pytest.mark.parametrize("size", [1, 3, 8, 1000])
def test_word_by_word_writes_the_whole_answer(text: str, size: int) -> None:
    chunks = [text[i:i + size] for i in range(0, len(text), size)]
    written, streamer, cleaner = run_words(chunks)
    assert "".join(written) == streamer.text == whole(text)
    assert cleaner.claims == 0
    if size < 1000:
        assert len(written) > text.count(".") + 1     # more pieces than sentences: words went early


def test_a_url_and_a_link_are_written_whole_word_by_word() -> None:
    text = "See https://attacker.example/?q=secret for details and [the guide](https://evil.example/x) too."
    written, _, _ = run_words([text[i:i + 2] for i in range(0, len(text), 2)])
    assert "https://attacker.example/?q=secret" in written[[i for i, w in enumerate(written) if "https://att" in w][0]]
    assert any("[the guide](https://evil.example/x)" in w for w in written)


def test_claim_free_prefix_holds_from_where_a_claim_could_begin() -> None:
    assert claim_free_prefix("The billing service") == len("The billing service")
    assert claim_free_prefix("The billing service has") == len("The billing service ")
    assert claim_free_prefix("Your request") == len("Your ")
    assert claim_free_prefix("If your request was approved") == len("If your request was approved")
    assert claim_free_prefix("I") == 0


def test_a_new_paragraph_is_written_word_by_word_too() -> None:
    written: list[str] = []
    streamer = SafeStreamer(written.append, PieceCleaner(SOURCES), claim_free_prefix)
    streamer.feed("One [1].\n\nAsk the service desk if it is")
    assert "".join(written).endswith("Ask the service desk if it")     # not held to the paragraph's end
