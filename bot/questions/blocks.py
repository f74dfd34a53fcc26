"""The answer as Slack messages: its text as mrkdwn, the Sources, what made it, the feedback
buttons; the reply to an empty question. Pure functions, within ``bot.limits``."""

from __future__ import annotations

from typing import Iterable

from bot import limits
from bot.blocks import context, message, section
from bot.feedback.blocks import feedback_blocks
from bot.links import LinkPolicy
from bot.mrkdwn import escape, inert_text, link, plain_text, to_mrkdwn


def help_message() -> dict:
    return message(
        "Ask me a question about company policies or runbooks.",
        [section("Ask me a question, for example _@chatops how do I request a new laptop?_ "
                 "I answer from the company's documents that everyone reading may see, with sources.")],
    )


def sources_lines(citations: Iterable) -> list[str]:
    """The Sources list. A title comes from the document, so a URL written in it is shown inert;
    the link is the source's own URL, set at ingestion."""
    lines = []
    for c in citations:
        title = link(c.url, plain_text(c.title)) if c.url else f"*{inert_text(c.title)}*"
        # a live tool's result names itself: "PagerDuty · get_oncall(service=billing) · 10:42 UTC"
        lines.append(f"[{c.n}] {title}" if c.source.startswith(TOOL_SOURCE) else f"[{c.n}] {title} · `{escape(c.source)}`")
    return lines


TOOL_SOURCE = "tool:"


def private_answer_note(asker: str, why: str) -> dict:
    """In the channel, in place of an answer that went to the asker alone."""
    text = f"<@{asker}>, I sent you the answer privately: {escape(why)}."
    return message("I sent the answer privately.", [context(f":lock: {text}")])


# Under every answer: it was written by a model (or quoted), and it reports nothing. Approvals,
# executions and permission changes are announced only by chatops' own status messages.
GENERATED_LABEL = {
    "llm": ":robot_face: Generated from the sources above. It cannot approve or run anything; "
           "only chatops' own status messages report approvals and actions.",
    "extractive": ":robot_face: Passages quoted from the sources above, not written by a person.",
    "cached": ":robot_face: Generated earlier for the same readers from the sources above, which were "
              "checked again just now. It cannot approve or run anything.",
}
EMPTY_ANSWER = "I have no answer text for this."


def answer_messages(answer, *, audience_note: str = "", link_hosts: tuple[str, ...] = (),
                    answer_id: str | None = None) -> list[dict]:
    """An ``Answer`` (see usecases.answer) as one or more messages (always at least one).

    Links: only to the answer's cited sources and ``link_hosts``; other URLs are shown inert.
    ``answer_id``: the feedback buttons go under the answer (not under a greeting)."""
    links = LinkPolicy.of((c.url for c in answer.citations), link_hosts)
    blocks: list[dict] = []
    if answer.note:   # may repeat a tool call's arguments or a tool's error text: URLs inert
        blocks.append(context(f":information_source: {inert_text(answer.note)}"))
    for part in limits.split_text(to_mrkdwn(answer.text, links), limits.SECTION_TEXT_MAX):
        blocks.append(section(part, verbatim=True))
    if not blocks:
        blocks.append(section(EMPTY_ANSWER))
    blocks += _under_the_text(answer, audience_note)
    tail = feedback_blocks(answer_id) if answer_id and answer.mode != "greeting" else []

    fallback = plain_text(answer.text, links) or EMPTY_ANSWER
    if answer.citations:
        fallback += "\n\nSources: " + "; ".join(f"[{c.n}] {plain_text(c.title)} ({c.source})"
                                                  for c in answer.citations)
    chunks = [blocks[start:start + limits.BLOCKS_PER_MESSAGE]
              for start in range(0, len(blocks), limits.BLOCKS_PER_MESSAGE)]
    if tail:    # the feedback blocks stay together, in the last message
        if len(chunks[-1]) + len(tail) <= limits.BLOCKS_PER_MESSAGE:
            chunks[-1] = chunks[-1] + tail
        else:       # a full last message: its last blocks move on with the feedback
            keep = limits.BLOCKS_PER_MESSAGE - len(tail)
            chunks[-1], moved = chunks[-1][:keep], chunks[-1][keep:]
            chunks.append(moved + tail)
    return [message(fallback if n == 0 else "(continued)", chunk) for n, chunk in enumerate(chunks)]


def stream_end_blocks(answer, *, audience_note: str = "", answer_id: str | None = None) -> list[dict]:
    """What ``chat.stopStream`` adds under a streamed answer's text: its note, the Sources, who may
    read it, the generated label and the feedback (as ``answer_messages`` shows them), within
    Slack's 50 blocks."""
    blocks: list[dict] = []
    if answer.note:
        blocks.append(context(f":information_source: {inert_text(answer.note)}"))
    blocks += _under_the_text(answer, audience_note)
    tail = feedback_blocks(answer_id) if answer_id and answer.mode != "greeting" else []
    return blocks[:limits.BLOCKS_PER_MESSAGE - len(tail)] + tail


def _under_the_text(answer, audience_note: str) -> list[dict]:
    """The Sources, who may read it, and the generated label: under an answer, posted or streamed."""
    blocks: list[dict] = []
    if answer.citations:
        blocks.append({"type": "divider"})
        for part in limits.split_text("*Sources*\n" + "\n".join(sources_lines(answer.citations)),
                                      limits.SECTION_TEXT_MAX):
            blocks.append(section(part, verbatim=True))
    if audience_note:
        blocks.append(context(escape(audience_note)))
    label = GENERATED_LABEL.get(answer.mode)
    if label:
        blocks.append(context(label))
    return blocks
