"""What a report posted to a Slack channel may quote of the questions that found no evidence.

The report channel's members are not the people who could read where a question was asked. A
question is quoted only when the privacy mode shows question text (not ``off``) and it was asked in
a public channel of the workspace, as ``public(channel, channel_type)`` says (the caller asks
Slack). Every other unanswered question (asked in a direct message, a group DM, a private
channel, a conversation nobody can tell about, or under ``off``) is counted, never quoted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from chatops.privacy import MODES
from usecases.report import Unanswered

IsPublic = Callable[[str | None, str | None], bool]


@dataclass(frozen=True)
class Quotes:
    text_shown: bool                          # False: the privacy mode is off (counts only)
    questions: list[dict[str, Any]] = field(default_factory=list)   # question, count, last_asked; most asked first
    withheld: int = 0                         # unanswered questions counted, not quoted


def quotes(rows: Iterable[dict[str, Any]], *, privacy: str, public: IsPublic, top: int = 5) -> Quotes:
    """The unanswered questions among ``rows`` (``Answers.questions``) a channel report may quote."""
    text_shown = privacy in MODES and privacy != "off"
    quoted, withheld = Unanswered(), 0
    for row in rows:
        if row["mode"] != "no-evidence":
            continue
        if text_shown and public(row.get("channel"), row.get("channel_type")):
            quoted.add(row)
        else:
            withheld += 1
    return Quotes(text_shown=text_shown, questions=quoted.top(top), withheld=withheld)
