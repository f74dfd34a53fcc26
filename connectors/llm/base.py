"""The LLM interface: chat messages in, text out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable


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


@runtime_checkable
class StreamingLLM(Protocol):
    """An LLM that can also give its answer as it is written."""

    model: str

    def stream(self, messages: list[dict], on_text: Callable[[str], None], *, max_tokens: int | None = None,
               tools: list[dict] | None = None, model: str | None = None) -> Completion:
        """``on_text`` is told each piece of text as it comes; the whole completion is returned at the
        end (text, tool calls, usage). An exception raised by ``on_text`` ends the generation (the
        connection is closed) and propagates."""
        ...
