"""Any OpenAI-compatible chat completions server through the openai SDK:
OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp."""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

import openai
from openai.types.chat import ChatCompletion

from chatops import tracing
from chatops.checks import CheckFailed
from chatops.settings import Settings
from connectors.llm.base import Completion, LLMUnavailable, ToolCall
from connectors.llm.openai_settings import OpenAISettings
from connectors.llm.settings import LLMSettings

log = logging.getLogger(__name__)


class OpenAILLM:
    @classmethod
    def from_settings(cls, settings: Settings) -> "OpenAILLM":
        llm, server = settings.of(LLMSettings), settings.of(OpenAISettings)
        return cls(model=llm.llm_model, api_key=server.openai_api_key.get_secret_value() if server.openai_api_key else None,
                   base_url=server.openai_base_url, timeout=llm.llm_timeout, max_retries=llm.llm_max_retries,
                   max_tokens=llm.llm_max_tokens)

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

    def stream(self, messages: list[dict], on_text: Callable[[str], None], *, max_tokens: int | None = None,
               tools: list[dict] | None = None, model: str | None = None) -> Completion:
        """The completion as it is written (``stream=True``; the usage comes in the last chunk)."""
        model = model or self.model
        limit = max_tokens or self.max_tokens
        attributes = {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.provider.name": "openai",
                      "gen_ai.request.model": model, "gen_ai.request.max_tokens": limit,
                      "gen_ai.request.temperature": self._temperature, "gen_ai.request.stream": True}
        with tracing.span(f"chat {model}", kind=tracing.SpanKind.CLIENT, attributes=attributes) as span:
            completion = self._stream(messages, model, limit, tools, on_text)
            span.set_attribute("gen_ai.response.model", completion.model)
            if completion.prompt_tokens is not None:
                span.set_attribute("gen_ai.usage.input_tokens", completion.prompt_tokens)
            if completion.completion_tokens is not None:
                span.set_attribute("gen_ai.usage.output_tokens", completion.completion_tokens)
            return completion

    def _stream(self, messages: list[dict], model: str, limit: int, tools: list[dict] | None,
                on_text: Callable[[str], None]) -> Completion:
        extra: dict[str, Any] = {"tools": tools, "tool_choice": "auto"} if tools else {}
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        answered, usage = model, None
        try:
            with self._client.chat.completions.create(
                model=model, messages=messages, temperature=self._temperature, max_tokens=limit, stream=True,
                stream_options={"include_usage": True}, **extra,
            ) as chunks:
                for chunk in chunks:
                    answered = chunk.model or answered
                    if chunk.usage is not None:
                        usage = chunk.usage
                    for choice in chunk.choices or []:
                        delta = choice.delta
                        for call in (delta.tool_calls or []) if delta else []:
                            into = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                            into["id"] = call.id or into["id"]
                            if call.function is not None:
                                into["name"] += call.function.name or ""
                                into["arguments"] += call.function.arguments or ""
                        if delta and delta.content:
                            text.append(delta.content)
                            on_text(delta.content)
        except (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError,
                openai.InternalServerError) as exc:
            raise LLMUnavailable(f"{type(exc).__name__}") from None
        except openai.APIStatusError as exc:
            raise LLMUnavailable(f"the model server refused the request ({exc.status_code})") from None
        return Completion(text="".join(text).strip(), model=answered,
                          prompt_tokens=getattr(usage, "prompt_tokens", None),
                          completion_tokens=getattr(usage, "completion_tokens", None),
                          tool_calls=tuple(ToolCall(name=c["name"], arguments=c["arguments"] or "{}", id=c["id"])
                                           for _i, c in sorted(calls.items()) if c["name"]))

    def check(self, models: tuple[str, ...] = ()) -> str:
        """``chatops doctor``: the server answers with this key and offers the model (and ``models``):
        listed by ``GET /models``, or, where it lists none or not these (Azure deployments), answering
        a one-token request."""
        where = str(self._client.base_url).rstrip("/")
        wanted = [self.model, *[m for m in models if m and m != self.model]]
        try:
            listed = {m.id for m in self._client.models.list()}
        except openai.NotFoundError:
            listed = set()
        except openai.AuthenticationError:
            raise CheckFailed(f"the model server at {where} refused the API key (401)",
                              "set OPENAI_API_KEY to a valid key for that server") from None
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise CheckFailed(f"cannot reach the model server at {where} ({type(exc).__name__})",
                              "check OPENAI_BASE_URL and the network path to it") from None
        except openai.APIStatusError as exc:
            raise CheckFailed(f"the model server at {where} answered {exc.status_code} to GET /models",
                              "check OPENAI_BASE_URL") from None
        said = []
        for model in wanted:
            if model in listed:
                said.append(f"{model} listed")
                continue
            try:
                self._client.chat.completions.create(model=model, max_tokens=1,
                                                     messages=[{"role": "user", "content": "ping"}])
            except openai.NotFoundError:
                offered = ", ".join(sorted(listed)[:8]) or "none listed"
                raise CheckFailed(f"the model server at {where} does not offer {model} (it offers: {offered})",
                                  "set CHATOPS_LLM_MODEL (and CHATOPS_LLM_MODEL_SMALL) to a model it offers") from None
            except openai.APIError as exc:
                raise CheckFailed(f"the model server at {where} failed a one-token request to {model} "
                                  f"({type(exc).__name__})", "check the server's logs") from None
            said.append(f"{model} answered")
        return f"{', '.join(said)} at {where}"

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
            ToolCall(name=c.function.name, arguments=c.function.arguments or "{}", id=c.id or "")
            for c in ((choice.message.tool_calls or []) if choice else [])
            if getattr(c, "function", None) is not None
        )
        usage = resp.usage
        return Completion(text=text.strip(), model=resp.model or model,
                          prompt_tokens=getattr(usage, "prompt_tokens", None),
                          completion_tokens=getattr(usage, "completion_tokens", None),
                          tool_calls=calls)
