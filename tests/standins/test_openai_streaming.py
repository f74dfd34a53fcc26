"""OpenAILLM.stream with the real openai SDK against the loopback server's server-sent events."""

from __future__ import annotations

import json
import time

import pytest
import requests

from connectors.llm.base import LLMUnavailable, StreamingLLM
from connectors.llm.openai_llm import OpenAILLM
from usecases.streaming import StreamStopped

MESSAGES = [{"role": "user", "content": "what is the answer?"}]


def llm(fake) -> OpenAILLM:
    return OpenAILLM(model="fake-model-1", api_key="test", base_url=fake.base_url, timeout=5.0, max_retries=0)


def test_the_stand_in_streams_as_openai_does(fake_openai):
    fake_openai.reply = "The answer is 42."
    resp = requests.post(f"{fake_openai.base_url}/chat/completions", stream=True, timeout=5, json={
        "model": "m", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}})
    assert resp.headers["content-type"].startswith("text/event-stream")
    lines = [line for line in resp.iter_lines(decode_unicode=True) if line]
    assert all(line.startswith("data: ") for line in lines) and lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "The answer is 42."
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4
    # without include_usage: no usage chunk
    resp = requests.post(f"{fake_openai.base_url}/chat/completions", timeout=5,
                         json={"model": "m", "messages": MESSAGES, "stream": True})
    assert all(json.loads(line[6:]).get("choices") for line in resp.text.splitlines()
               if line.startswith("data: {"))


def test_stream_gives_the_text_as_it_comes_and_the_usage_at_the_end(fake_openai):
    fake_openai.reply = "The answer is 42, as the runbook says."
    fake_openai.first_token_delay, fake_openai.token_delay = 0.2, 0.05
    model = llm(fake_openai)
    assert isinstance(model, StreamingLLM)
    seen: list[tuple[float, str]] = []
    start = time.perf_counter()
    completion = model.stream(MESSAGES, lambda d: seen.append((time.perf_counter() - start, d)))
    assert "".join(d for _, d in seen) == "The answer is 42, as the runbook says."
    assert len(seen) == 8 and seen[0][0] >= 0.2 and seen[-1][0] - seen[0][0] >= 0.3   # piece by piece
    assert completion.text == "The answer is 42, as the runbook says."
    assert (completion.prompt_tokens, completion.completion_tokens) == (4, 8)
    body = fake_openai.requests[-1]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_stream_collects_tool_calls(fake_openai):
    fake_openai.reply = {"content": "", "tool_calls": [{"id": "call_1", "type": "function", "function": {
        "name": "restart_service", "arguments": '{"service": "billing"}'}}]}
    completion = llm(fake_openai).stream(MESSAGES, lambda d: None, tools=[{"type": "function", "function": {
        "name": "restart_service", "parameters": {"type": "object"}}}])
    [call] = completion.tool_calls
    assert (call.name, call.arguments, call.id) == ("restart_service", '{"service": "billing"}', "call_1")


def test_a_stop_from_the_reader_ends_the_stream(fake_openai):
    fake_openai.reply = " ".join(f"word{i}" for i in range(200))
    fake_openai.token_delay = 0.01
    seen: list[str] = []

    def reader(delta: str) -> None:
        seen.append(delta)
        if len(seen) == 3:
            raise StreamStopped()
    with pytest.raises(StreamStopped):
        llm(fake_openai).stream(MESSAGES, reader)
    deadline = time.monotonic() + 3
    while fake_openai.streams_cut < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake_openai.streams_cut == 1 and len(seen) == 3


def test_a_failing_server_is_unavailable(fake_openai):
    fake_openai.mode = "error"
    with pytest.raises(LLMUnavailable):
        llm(fake_openai).stream(MESSAGES, lambda d: None)
