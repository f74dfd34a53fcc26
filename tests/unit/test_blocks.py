"""bot.blocks and the features' Block Kit (bot/questions/blocks.py, bot/dm_offer/blocks.py): payloads
within Slack's limits."""

import pytest

from bot import blocks, limits
from bot.dm_offer import blocks as offer_blocks
from bot.questions import blocks as answer_blocks
from usecases.answer import Answer, Citation


def iter_texts(message):
    """(kind, text, limit) for every text in a message payload."""
    yield "message", message["text"], limits.MESSAGE_TEXT_MAX
    for b in message["blocks"]:
        if b["type"] == "section":
            yield "section", b["text"]["text"], limits.SECTION_TEXT_MAX
        elif b["type"] == "context":
            for el in b["elements"]:
                yield "context", el["text"], limits.CONTEXT_TEXT_MAX
        elif b["type"] == "actions":
            for el in b["elements"]:
                yield "button", el["text"]["text"], limits.BUTTON_TEXT_MAX
                yield "value", el["value"], limits.BUTTON_VALUE_MAX
        elif b["type"] == "context_actions":       # Slack's 👍 / 👎 element
            assert 1 <= len(b["elements"]) <= 5
            for el in b["elements"]:
                for button in (el["positive_button"], el["negative_button"]):
                    yield "button", button["text"]["text"], limits.BUTTON_TEXT_MAX
                    yield "value", button["value"], limits.BUTTON_VALUE_MAX
                    yield "label", button["accessibility_label"], 75


def assert_within_limits(message):
    assert len(message["blocks"]) <= limits.BLOCKS_PER_MESSAGE
    for kind, text, limit in iter_texts(message):
        assert isinstance(text, str) and text, kind
        assert len(text) <= limit, (kind, len(text))


def section_texts(messages):
    return [b["text"]["text"] for m in messages for b in m["blocks"] if b["type"] == "section"]


CITES = [
    Citation(1, "Leave policy", "hr/leave.md", None),
    Citation(2, "VPN & remote", "it/vpn.md", "https://wiki.example.com/vpn"),
]


def test_answer_with_sources_section():
    ans = Answer(text="You get **25 days** [1]. Use the VPN [2].", citations=CITES, mode="llm")
    (msg,) = answer_blocks.answer_messages(ans)
    assert_within_limits(msg)
    types = [b["type"] for b in msg["blocks"]]
    assert types == ["section", "divider", "section", "context"]
    assert msg["blocks"][0]["text"] == {"type": "mrkdwn", "text": "You get *25 days* [1]. Use the VPN [2].",
                                        "verbatim": True}
    assert msg["blocks"][-1]["elements"][0]["text"] == answer_blocks.GENERATED_LABEL["llm"]
    sources = msg["blocks"][2]["text"]["text"]
    assert sources.startswith("*Sources*\n")
    assert "[1] *Leave policy* · `hr/leave.md`" in sources
    assert "[2] <https://wiki.example.com/vpn|VPN &amp; remote> · `it/vpn.md`" in sources
    # The plain-text fallback names the sources too.
    assert "Leave policy (hr/leave.md)" in msg["text"]
    assert "VPN &amp; remote (it/vpn.md)" in msg["text"]  # escaped: the fallback is mrkdwn too


def test_answer_without_citations_has_no_sources():
    (msg,) = answer_blocks.answer_messages(Answer(text="Nothing found.", citations=[], mode="no-evidence"))
    assert [b["type"] for b in msg["blocks"]] == ["section"]
    assert "Sources" not in msg["text"]


def test_note_is_a_context_block_first_and_audience_note_last():
    ans = Answer(text="quoted", citations=CITES[:1], mode="extractive", note="Model down <sorry>")
    (msg,) = answer_blocks.answer_messages(ans, audience_note="Only documents everyone in #x may see & read.")
    first, last = msg["blocks"][0], msg["blocks"][-2]
    assert first["type"] == "context"
    assert "Model down &lt;sorry&gt;" in first["elements"][0]["text"]
    assert last["type"] == "context"
    assert last["elements"][0]["text"] == "Only documents everyone in #x may see &amp; read."
    assert msg["blocks"][-1]["elements"][0]["text"] == answer_blocks.GENERATED_LABEL["extractive"]
    assert_within_limits(msg)


def test_long_answer_split_into_sections_within_limits():
    paragraph = ("This is a fairly ordinary sentence about policies. " * 8).strip()
    text = "\n\n".join(paragraph for _ in range(60))
    text = text[:20_000]
    assert len(text) == 20_000
    msgs = answer_blocks.answer_messages(Answer(text=text, citations=CITES, mode="llm"))
    for m in msgs:
        assert_within_limits(m)
    body = [t for t in section_texts(msgs) if not t.startswith("*Sources*")]
    assert len(body) >= 7
    assert all(len(t) <= limits.SECTION_TEXT_MAX for t in body)
    # Nothing lost (modulo whitespace).
    assert "".join("".join(body).split()) == "".join(text.split())


def test_long_answer_without_spaces_still_fits():
    msgs = answer_blocks.answer_messages(Answer(text="x" * 20_000, citations=[], mode="llm"))
    assert all(len(t) <= limits.SECTION_TEXT_MAX for t in section_texts(msgs))
    assert sum(len(t) for t in section_texts(msgs)) == 20_000
    for m in msgs:
        assert_within_limits(m)


def test_huge_answer_split_into_messages_of_at_most_50_blocks():
    text = "\n\n".join("word " * 550 for _ in range(120))   # ~330k chars -> >100 sections
    msgs = answer_blocks.answer_messages(Answer(text=text, citations=CITES, mode="llm"))
    assert len(msgs) >= 3
    for m in msgs:
        assert_within_limits(m)
    assert msgs[1]["text"] == "(continued)"
    # The sources still come at the very end, before the "generated" label.
    assert msgs[-1]["blocks"][-2]["text"]["text"].startswith("*Sources*")
    total_blocks = sum(len(m["blocks"]) for m in msgs)
    assert all(len(m["blocks"]) == limits.BLOCKS_PER_MESSAGE for m in msgs[:-1])
    assert total_blocks == 120 + 3          # one section per paragraph, divider, sources, label
    # No block (and no text) was dropped between messages.
    body = "".join(section_texts(msgs))
    assert body.count("word") == 550 * 120


def test_many_citations_split_sources_within_limits():
    cites = [Citation(i, f"Document {i} " + "t" * 80, f"folder/{i}/" + "p" * 80 + ".md", None)
             for i in range(1, 60)]
    msgs = answer_blocks.answer_messages(Answer(text="answer", citations=cites, mode="llm"))
    for m in msgs:
        assert_within_limits(m)
    joined = "\n".join(section_texts(msgs))
    for c in cites:
        assert f"[{c.n}] *{c.title}* · `{c.source}`" in joined


def test_fallback_text_is_truncated():
    (msg,) = answer_blocks.answer_messages(Answer(text="y" * 2500, citations=[], mode="llm"))
    assert msg["text"] == "y" * 2500
    msgs = answer_blocks.answer_messages(Answer(text="z " * 5000, citations=[], mode="llm"))
    assert len(msgs[0]["text"]) == limits.MESSAGE_TEXT_MAX


def test_sources_lines():
    assert answer_blocks.sources_lines(CITES) == [
        "[1] *Leave policy* · `hr/leave.md`",
        "[2] <https://wiki.example.com/vpn|VPN &amp; remote> · `it/vpn.md`",
    ]
    assert answer_blocks.sources_lines([Citation(3, "<b>", "a&b.md", None)]) == ["[3] *&lt;b&gt;* · `a&amp;b.md`"]


@pytest.mark.parametrize("n,noun", [(1, "1 more relevant document "), (3, "3 more relevant documents ")])
def test_dm_offer(n, noun):
    msg = offer_blocks.dm_offer(n, "offer-123")
    assert_within_limits(msg)
    assert noun in msg["text"]
    actions = [b for b in msg["blocks"] if b["type"] == "actions"]
    assert len(actions) == 1
    (button,) = actions[0]["elements"]
    assert button["type"] == "button"
    assert button["action_id"] == "answer_in_dm" == offer_blocks.ANSWER_IN_DM_ACTION
    assert button["value"] == "offer-123"


@pytest.mark.parametrize("message", [
    blocks.working_message(),
    answer_blocks.help_message(),
    blocks.refusal_message("No <b> & " * 1000),
    blocks.error_message("ref-1", detail="d" * 5000),
    offer_blocks.dm_offer(2, "o" * 40),
    offer_blocks.dm_offer_done("Sent & done " * 500),
])
def test_every_builder_fits_its_limits(message):
    assert_within_limits(message)


def test_refusal_and_error_escape_text():
    msg = blocks.refusal_message("too <many> & members")
    assert msg["blocks"][0]["text"]["text"] == ":no_entry: too &lt;many&gt; &amp; members"
    err = blocks.error_message("abc123", "timeout")
    assert "Reference: abc123" in err["text"]
    assert "(timeout)" in err["text"]
    assert "abc123" in err["blocks"][0]["text"]["text"]


# -- the feedback blocks under an answer --------------------------------------------------------

def test_an_answer_ends_with_the_feedback_element_and_needs_a_human():
    (msg,) = answer_blocks.answer_messages(Answer(text="You get 25 days [1].", citations=CITES, mode="llm"),
                                           answer_id="a1b2c3d4e5f60718")
    assert [b["type"] for b in msg["blocks"][-3:]] == ["context", "context_actions", "actions"]
    assert msg["blocks"][-1]["elements"][0]["value"] == "a1b2c3d4e5f60718"
    assert_within_limits(msg)
    # a greeting gets none
    (greeting,) = answer_blocks.answer_messages(Answer(text="Hi!", citations=[], mode="greeting"), answer_id="x")
    assert [b["type"] for b in greeting["blocks"]] == ["section"]


@pytest.mark.parametrize("paragraphs", [46, 47, 48, 49, 50, 95, 96, 120])
def test_the_feedback_blocks_stay_together_in_the_last_message_of_at_most_50_blocks(paragraphs):
    """Around each 50-block boundary the two feedback blocks are never split between messages,
    and nothing is dropped."""
    text = "\n\n".join(f"paragraph {i} " + "word " * 500 for i in range(paragraphs))
    msgs = answer_blocks.answer_messages(Answer(text=text, citations=CITES, mode="llm"), answer_id="a" * 16)
    for m in msgs:
        assert_within_limits(m)
    kinds = [[b["type"] for b in m["blocks"]] for m in msgs]
    assert kinds[-1][-2:] == ["context_actions", "actions"] and len(kinds[-1]) > 2
    assert sum(k.count("context_actions") + k.count("actions") for k in kinds) == 2
    assert sum(len(k) for k in kinds) == paragraphs + 3 + 2     # divider, sources, label; feedback
    assert [t.split(" ", 2)[1] for t in section_texts(msgs) if t.startswith("paragraph")] == \
        [str(i) for i in range(paragraphs)]
