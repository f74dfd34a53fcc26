"""Block Kit builders: pure functions from values to message payloads.

Each returns ``{"text": ..., "blocks": [...]}`` (or a list of them when an
answer needs more than one message), within the limits in ``bot.limits``.
"""

from __future__ import annotations

from typing import Iterable

from bot import limits
from bot.feedback_blocks import feedback_actions
from bot.links import LinkPolicy
from bot.mrkdwn import escape, inert_text, link, plain_text, to_mrkdwn

ANSWER_IN_DM_ACTION = "answer_in_dm"


def _section(text: str, *, verbatim: bool = False) -> dict:
    """``verbatim``: Slack links no bare URL and expands no name in it (answers: model text)."""
    obj = {"type": "mrkdwn", "text": limits.truncate(text, limits.SECTION_TEXT_MAX)}
    if verbatim:
        obj["verbatim"] = True
    return {"type": "section", "text": obj}


def _context(text: str) -> dict:
    return {"type": "context",
            "elements": [{"type": "mrkdwn", "text": limits.truncate(text, limits.CONTEXT_TEXT_MAX)}]}


def _message(text: str, blocks: list[dict]) -> dict:
    # The fallback text shows in notifications; escape it so it cannot @-mention anyone.
    return {"text": limits.truncate(escape(text), limits.MESSAGE_TEXT_MAX), "blocks": blocks}


def working_message() -> dict:
    return _message("Looking into it…", [_context(":hourglass_flowing_sand: Looking into it…")])


def help_message() -> dict:
    return _message(
        "Ask me a question about company policies or runbooks.",
        [_section("Ask me a question, for example _@chatops how do I request a new laptop?_ "
                  "I answer from the company's documents that everyone reading may see, with sources.")],
    )


def note_message(text: str) -> dict:
    """A note for one person (an ephemeral message): a budget used up, a rate limit."""
    return _message(text, [_context(f":information_source: {escape(text)}")])


def refusal_message(reason: str) -> dict:
    return _message(reason, [_section(f":no_entry: {escape(reason)}")])


def error_message(reference: str, detail: str = "") -> dict:
    text = ("Sorry, something went wrong on my side while answering"
            + (f" ({detail})" if detail else "") + f". Please try again in a minute. Reference: {reference}")
    return _message(text, [_section(f":warning: {escape(text)}")])


def sources_lines(citations: Iterable) -> list[str]:
    """The Sources list. A title comes from the document, so a URL written in it is shown inert;
    the link is the source's own URL, set at ingestion."""
    lines = []
    for c in citations:
        title = link(c.url, plain_text(c.title)) if c.url else f"*{inert_text(c.title)}*"
        lines.append(f"[{c.n}] {title} · `{escape(c.source)}`")
    return lines


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
    if answer.note:
        blocks.append(_context(f":information_source: {escape(answer.note)}"))
    for part in limits.split_text(to_mrkdwn(answer.text, links), limits.SECTION_TEXT_MAX):
        blocks.append(_section(part, verbatim=True))
    if not blocks:
        blocks.append(_section(EMPTY_ANSWER))
    if answer.citations:
        blocks.append({"type": "divider"})
        for part in limits.split_text("*Sources*\n" + "\n".join(sources_lines(answer.citations)),
                                      limits.SECTION_TEXT_MAX):
            blocks.append(_section(part, verbatim=True))
    if audience_note:
        blocks.append(_context(escape(audience_note)))
    label = GENERATED_LABEL.get(answer.mode)
    if label:
        blocks.append(_context(label))
    if answer_id and answer.mode != "greeting":
        blocks.append(feedback_actions(answer_id))

    fallback = plain_text(answer.text, links) or EMPTY_ANSWER
    if answer.citations:
        fallback += "\n\nSources: " + "; ".join(f"[{c.n}] {plain_text(c.title)} ({c.source})"
                                                  for c in answer.citations)
    messages = []
    for start in range(0, len(blocks), limits.BLOCKS_PER_MESSAGE):
        chunk = blocks[start:start + limits.BLOCKS_PER_MESSAGE]
        messages.append(_message(fallback if start == 0 else "(continued)", chunk))
    return messages


def dm_offer(hidden_documents: int, offer_id: str) -> dict:
    noun = "document" if hidden_documents == 1 else "documents"
    text = (f"You can see {hidden_documents} more relevant {noun} that not everyone here may see, "
            "so I left them out of this answer. Want the full answer in a direct message?")
    return _message(text, [
        _section(f":lock: {text}"),
        {"type": "actions", "elements": [{
            "type": "button", "action_id": ANSWER_IN_DM_ACTION, "style": "primary",
            "text": {"type": "plain_text", "text": "Send me the full answer"},
            "value": offer_id,
        }]},
    ])


def dm_offer_done(text: str) -> dict:
    return _message(text, [_context(escape(text))])
