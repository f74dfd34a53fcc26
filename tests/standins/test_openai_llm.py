"""OpenAILLM with the real openai SDK against the loopback chat completions server."""

from __future__ import annotations

import time

import pytest

from connectors.llm.base import LLMUnavailable
from connectors.llm.openai_llm import OpenAILLM

MESSAGES = [{"role": "system", "content": "Answer from the sources."},
            {"role": "user", "content": "what is the answer?"}]


def llm(fake, **kw) -> OpenAILLM:
    kw.setdefault("timeout", 5.0)
    kw.setdefault("max_retries", 0)
    return OpenAILLM(model="fake-model-1", api_key="test", base_url=fake.base_url, **kw)


def test_returns_the_scripted_text_and_token_usage(fake_openai):
    c = llm(fake_openai).complete(MESSAGES, max_tokens=123)
    assert c.text == "The answer is 42."  # stripped
    assert c.model == "fake-model-1"
    assert c.prompt_tokens == 4 + 4  # the fake counts words
    assert c.completion_tokens == 4


def test_request_carries_model_messages_and_limits(fake_openai):
    llm(fake_openai, temperature=0.3).complete(MESSAGES, max_tokens=123)
    [body] = fake_openai.requests
    assert body["messages"] == MESSAGES
    assert body["model"] == "fake-model-1"
    assert body["max_tokens"] == 123
    assert body["temperature"] == 0.3


def test_reply_can_depend_on_the_request(fake_openai):
    fake_openai.reply = lambda body: f"you said: {body['messages'][-1]['content']}"
    assert llm(fake_openai).complete(MESSAGES).text == "you said: what is the answer?"


def test_message_without_content_gives_empty_text(fake_openai):
    fake_openai.reply = lambda body: {"content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]}
    c = llm(fake_openai).complete(MESSAGES)
    assert c.text == ""
    assert c.completion_tokens == 0


def test_server_error_is_unavailable(fake_openai):
    fake_openai.mode = "error"
    with pytest.raises(LLMUnavailable, match="InternalServerError"):
        llm(fake_openai).complete(MESSAGES)
    assert len(fake_openai.requests) == 1  # max_retries=0: asked once


def test_max_retries_is_passed_to_the_sdk(fake_openai):
    fake_openai.mode = "error"
    with pytest.raises(LLMUnavailable):
        llm(fake_openai, max_retries=1).complete(MESSAGES)
    assert len(fake_openai.requests) == 2


def test_hanging_server_times_out_as_unavailable(fake_openai):
    fake_openai.mode = "hang"
    start = time.monotonic()
    with pytest.raises(LLMUnavailable, match="Timeout"):
        llm(fake_openai, timeout=0.5).complete(MESSAGES)
    assert time.monotonic() - start < 3


def test_unreachable_server_is_unavailable(fake_openai):
    fake_openai.stop()
    with pytest.raises(LLMUnavailable, match="APIConnectionError"):
        llm(fake_openai).complete(MESSAGES)
