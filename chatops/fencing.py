"""Document text given to a language model as data, never as instructions: each passage inside a
``<source n=… title=…>`` fence that nothing inside it can close or open. The answer's prompt
(``usecases/answer.py``) and the listwise reranker (``connectors/rerank/llm.py``) fence the same way."""

from __future__ import annotations

import re
from typing import Iterable

_TAG = re.compile(r"<\s*/?\s*(source|tool_result)\b", re.IGNORECASE)


def fence(text: str) -> str:
    """``text`` with every opening or closing ``source`` / ``tool_result`` tag made inert: a source
    cannot close its own fence."""
    return _TAG.sub(lambda m: "&lt;" + m.group(1), text)


def source_block(n: int, title: str, passages: Iterable[str]) -> str:
    """One numbered source, its passages (in order) fenced as data."""
    body = "\n...\n".join(fence(p) for p in passages)
    return f'<source n="{n}" title="{fence(title)}">\n{body}\n</source>'
