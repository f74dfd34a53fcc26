"""Streamed answers: what reaches the reader piece by piece is what the whole answer would be, and
nothing the whole answer's checks would remove is ever written, not even for a moment."""

from __future__ import annotations

import pytest

from connectors.llm.base import Completion
from usecases.answer import PieceCleaner, SourceDoc, apply_citations, generate
from usecases.claims import strip_state_claims
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
