"""Block Kit's building blocks, and the messages every feature posts: pure functions from values
to message payloads.

Each returns ``{"text": ..., "blocks": [...]}``, within the limits in ``bot.limits``. A feature's
own messages are in its folder (``bot/<feature>/blocks.py``).
"""

from __future__ import annotations

from bot import limits
from bot.mrkdwn import escape, inert_text, plain_text


def section(text: str, *, verbatim: bool = False) -> dict:
    """``verbatim``: Slack links no bare URL and expands no name in it (answers: model text)."""
    obj = {"type": "mrkdwn", "text": limits.truncate(text, limits.SECTION_TEXT_MAX)}
    if verbatim:
        obj["verbatim"] = True
    return {"type": "section", "text": obj}


def context(text: str) -> dict:
    return {"type": "context",
            "elements": [{"type": "mrkdwn", "text": limits.truncate(text, limits.CONTEXT_TEXT_MAX)}]}


def message(text: str, blocks: list[dict]) -> dict:
    # The fallback text shows in notifications; escape it so it cannot @-mention anyone.
    return {"text": limits.truncate(escape(text), limits.MESSAGE_TEXT_MAX), "blocks": blocks}


def working_message(step: str | None = None) -> dict:
    """"Looking into it…", or the step under way ("Checking PagerDuty…")."""
    text = step or "Looking into it…"
    return message(text, [context(f":hourglass_flowing_sand: {escape(text)}")])


def note_message(text: str) -> dict:
    """A note for one person (an ephemeral message): a budget used up, a rate limit."""
    return message(text, [context(f":information_source: {escape(text)}")])


def refusal_message(reason: str) -> dict:
    """A refusal; its reason may quote what the model wrote (a bad argument): URLs shown inert."""
    return message(plain_text(reason), [section(f":no_entry: {inert_text(reason)}")])


def error_message(reference: str, detail: str = "") -> dict:
    text = ("Sorry, something went wrong on my side while answering"
            + (f" ({detail})" if detail else "") + f". Please try again in a minute. Reference: {reference}")
    return message(text, [section(f":warning: {escape(text)}")])
