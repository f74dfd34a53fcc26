"""What the source demos share: asking as someone and showing what the answer cites, and the
closing verdict."""

from __future__ import annotations

import sys
from typing import Callable

from usecases.ask import Question, Refusal


def asker(pipeline, question: str) -> Callable[[str], set[str]]:
    """ask(email) -> the titles the answer to ``question`` cites for that person (printed)."""
    def ask(email: str) -> set[str]:
        try:
            answer, _ = pipeline.ask(Question(text=question, asker_email=email))
        except Refusal as refusal:
            print(f"  refused: {refusal}")
            return set()
        cited = {c.title for c in answer.citations}
        print(f"  cited: {', '.join(sorted(cited)) or 'nothing'}")
        return cited
    return ask


def verdict(failures: list[str], name: str) -> int:
    print()
    if failures:
        for failure in failures:
            print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    print(f"{name} demo: every check passed.")
    return 0
