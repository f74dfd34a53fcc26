"""The LLM interface: chat messages in, text out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class LLMUnavailable(Exception):
    """The model could not be reached, timed out, or kept failing."""


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asked for. Never executed as such: at most proposed."""

    name: str
    arguments: str          # raw JSON text, as the model wrote it
    id: str = ""            # the model's id of the call (a tool result answers it by this id)


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tool_calls: tuple[ToolCall, ...] = ()


class LLM(Protocol):
    model: str

    def complete(self, messages: list[dict], *, max_tokens: int | None = None,
                 tools: list[dict] | None = None, model: str | None = None) -> Completion:
        """``model``: another model than the LLM's own (routing); None: its own."""
        ...
