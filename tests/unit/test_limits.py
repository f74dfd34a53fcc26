"""bot.limits: splitting and truncating text to Slack's limits."""

import random

import pytest

from bot import limits
from bot.limits import split_text, truncate


def non_ws(text: str) -> str:
    return "".join(text.split())


def check(text: str, limit: int) -> list[str]:
    parts = split_text(text, limit)
    assert all(len(p) <= limit for p in parts), max(len(p) for p in parts)
    assert non_ws("".join(parts)) == non_ws(text)   # nothing but whitespace lost
    return parts


def test_ordinary_text_has_no_blank_parts():
    text = "\n\n".join(f"Paragraph {i}. " + "words " * 30 for i in range(40))
    parts = check(text, 500)
    assert all(p.strip() for p in parts)


def test_short_text_is_one_part_and_empty_is_none():
    assert split_text("hello", 10) == ["hello"]
    assert split_text("x" * 10, 10) == ["x" * 10]
    assert split_text("", 10) == []


def test_splits_at_paragraphs_first():
    a, b, c = "a" * 40, "b" * 40, "c" * 40
    parts = check(f"{a}\n\n{b}\n\n{c}", 90)
    assert parts == [f"{a}\n\n{b}", c]


def test_long_paragraph_splits_at_lines():
    lines = [f"line {i:02d} " + "x" * 20 for i in range(20)]
    parts = check("\n".join(lines), 100)
    assert len(parts) > 1
    for p in parts:
        for line in p.split("\n"):
            assert not line or line in lines   # whole lines only


def test_long_line_splits_at_words():
    words = [f"w{i}" for i in range(2000)]
    parts = check(" ".join(words), 50)
    assert len(parts) > 10
    assert [w for p in parts for w in p.split()] == words   # no word cut in half


def test_very_long_single_word_is_cut_hard():
    parts = check("y" * 10_050, 3000)
    assert [len(p) for p in parts] == [3000, 3000, 3000, 1050]


def test_mixed_long_words_lines_and_paragraphs():
    text = ("intro\n\n" + "z" * 7000 + "\n" + "short line\n" + "word " * 1500
            + "\n\n" + "tail " * 10 + "\n\n\n\n" + "end")
    check(text, 3000)
    check(text, 7)


def test_line_exactly_at_limit():
    check("a" * 50 + "\n" + "b" * 50 + "\n" + "c", 50)


@pytest.mark.parametrize("seed", range(5))
def test_random_texts_never_exceed_limit(seed):
    rnd = random.Random(seed)
    pieces = ["a", "word", "x" * 37, " ", "  ", "\n", "\n\n", "\t", "é", "&"]
    for _ in range(300):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 120)))
        if not text.strip():
            continue
        check(text, rnd.randint(1, 60))


def test_truncate():
    assert truncate("short", 10) == "short"
    assert truncate("x" * 10, 10) == "x" * 10
    out = truncate("x" * 11, 10)
    assert out == "x" * 9 + "…"
    assert len(out) == 10


def test_limit_constants_match_slack():
    assert limits.SECTION_TEXT_MAX == 3000
    assert limits.CONTEXT_TEXT_MAX == 2000
    assert limits.BLOCKS_PER_MESSAGE == 50
    assert limits.BUTTON_TEXT_MAX == 75
