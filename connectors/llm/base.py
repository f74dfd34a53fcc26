"""The LLM interface: chat messages in, text out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class LLMUnavailable(Exception):
    """The model could not be reached, timed out, or kept failing."""


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class LLM(Protocol):
    model: str

    def complete(self, messages: list[dict], *, max_tokens: int | None = None) -> Completion: ...
