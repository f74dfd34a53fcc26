"""Any OpenAI-compatible chat completions server through the openai SDK:
OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp."""

from __future__ import annotations

import json
import logging

import openai
from openai.types.chat import ChatCompletion

from chatops import tracing
from chatops.settings import Settings
from connectors.llm.base import Completion, LLMUnavailable, ToolCall

log = logging.getLogger(__name__)


class OpenAILLM:
    @classmethod
    def from_settings(cls, s: Settings) -> "OpenAILLM":
        return cls(model=s.llm_model, api_key=s.openai_api_key.get_secret_value() if s.openai_api_key else None,
                   base_url=s.openai_base_url, timeout=s.llm_timeout, max_retries=s.llm_max_retries,
                   max_tokens=s.llm_max_tokens)

    def __init__(self, *, model: str, api_key: str | None, base_url: str | None,
                 timeout: float = 60.0, max_retries: int = 2, temperature: float = 0.1,
                 max_tokens: int = 800):
        self.model = model
        self.max_tokens = max_tokens
        self._client = openai.OpenAI(api_key=api_key or "not-needed", base_url=base_url,
                                     timeout=timeout, max_retries=max_retries)
        self._temperature = temperature

    def complete(self, messages: list[dict], *, max_tokens: int | None = None,
                 tools: list[dict] | None = None, model: str | None = None) -> Completion:
        """``model``: another model of the same server than this LLM's own (routing)."""
        model = model or self.model
        limit = max_tokens or self.max_tokens
        attributes = {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.provider.name": "openai",
                      "gen_ai.request.model": model, "gen_ai.request.max_tokens": limit,
                      "gen_ai.request.temperature": self._temperature}
        with tracing.span(f"chat {model}", kind=tracing.SpanKind.CLIENT, attributes=attributes) as span:
            if tracing.capture_content():
                span.set_attribute("gen_ai.input.messages", json.dumps(messages, ensure_ascii=False))
            completion = self._complete(messages, model, limit, tools)
            span.set_attribute("gen_ai.response.model", completion.model)
            if completion.prompt_tokens is not None:
                span.set_attribute("gen_ai.usage.input_tokens", completion.prompt_tokens)
            if completion.completion_tokens is not None:
                span.set_attribute("gen_ai.usage.output_tokens", completion.completion_tokens)
            span.set_attribute("gen_ai.response.finish_reasons", ["tool_calls" if completion.tool_calls else "stop"])
            if tracing.capture_content():
                span.set_attribute("gen_ai.output.messages", json.dumps(
                    [{"role": "assistant", "content": completion.text}], ensure_ascii=False))
            return completion

    def _complete(self, messages: list[dict], model: str, limit: int, tools: list[dict] | None) -> Completion:
        extra = {"tools": tools, "tool_choice": "auto"} if tools else {}
        try:
            resp = self._client.chat.completions.create(
                model=model, messages=messages, temperature=self._temperature, max_tokens=limit, **extra,
            )
        except (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError,
                openai.InternalServerError) as exc:
            raise LLMUnavailable(f"{type(exc).__name__}") from None
        except openai.APIStatusError as exc:
            # 4xx other than 429: our request or our credentials are wrong.
            raise LLMUnavailable(f"the model server refused the request ({exc.status_code})") from None
        if not isinstance(resp, ChatCompletion):  # a 200 that was not an API answer (a proxy page)
            raise LLMUnavailable("the model server answered with something that is not a completion")
        choice = resp.choices[0] if resp.choices else None
        text = (choice.message.content or "") if choice else ""
        calls = tuple(
            ToolCall(name=c.function.name, arguments=c.function.arguments or "{}")
            for c in ((choice.message.tool_calls or []) if choice else [])
            if getattr(c, "function", None) is not None
        )
        usage = resp.usage
        return Completion(text=text.strip(), model=resp.model or model,
                          prompt_tokens=getattr(usage, "prompt_tokens", None),
                          completion_tokens=getattr(usage, "completion_tokens", None),
                          tool_calls=calls)
