"""A loopback OpenAI-compatible chat completions server for the real ``openai.OpenAI(base_url=...)``.

``reply`` is the assistant's text, or a callable given the request JSON that
returns the text, or a dict used as the whole ``message`` (e.g. scripted
``tool_calls``). ``mode``: "ok", "error" (HTTP 500 every time) or "hang" (no
answer for ``hang_seconds``, longer than any sane client timeout in tests).
Token usage is counted in whitespace-separated words, which is enough to test
that it is passed through.

A request with ``"stream": true`` is answered as OpenAI streams chat completions: server-sent
events (``data: {chat.completion.chunk}``), the first with the role, then the text in pieces
(``choices[0].delta.content``; tool calls as ``delta.tool_calls`` with their ``index``), one with
the ``finish_reason``, the usage in a last chunk with no choices when the request asked for it
(``stream_options.include_usage``), then ``data: [DONE]``. ``first_token_delay`` and
``token_delay`` (seconds) pace it; ``chunking`` splits the text into its pieces (default: a word
and the whitespace after it).
"""

from __future__ import annotations

import itertools
import json
import re
import time
from typing import Callable, Iterator

from standins._loopback import LoopbackServer, Reply, Request, Stream


class FakeOpenAI(LoopbackServer):
    def __init__(self, reply: str | Callable[[dict], str | dict] = "This is a scripted answer.", *,
                 hang_seconds: float = 30.0, models: list[str] | None = None, api_key: str | None = None):
        super().__init__()
        # The models it serves (None: any name is answered, "fake-model" listed) and the one API
        # key it accepts (None: any), answered as OpenAI does: 404 model_not_found, 401 invalid_api_key.
        self.models = models
        self.api_key = api_key
        self.reply = reply
        self.mode = "ok"
        self.hang_seconds = hang_seconds
        self.requests: list[dict] = []
        self._ids = itertools.count(1)
        self.first_token_delay = 0.0
        self.token_delay = 0.0
        self.chunking: Callable[[str], list[str]] = lambda text: re.findall(r"\s*\S+\s*|\s+", text)
        self.streams_cut = 0       # streams the client hung up on before the end
        self.first_token_at: list[float] = []   # time.time() each stream's first text piece was sent
        # True: a reply that is not streamed comes after the time the same reply takes to stream
        # (first_token_delay + token_delay per piece), as a real model's whole answer does.
        self.pace_whole = False

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def handle(self, request: Request) -> Reply:
        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Reply(401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                         "param": None, "code": "invalid_api_key"}})
        if request.method == "GET" and request.path == "/v1/models":
            return Reply(200, {"object": "list", "data": [{"id": name, "object": "model", "created": 1_700_000_000,
                                                           "owned_by": "standins"}
                                                          for name in (self.models or ["fake-model"])]})
        if request.method != "POST" or request.path != "/v1/chat/completions":
            return Reply(404, {"error": {"message": f"no route {request.path}", "type": "invalid_request_error"}})
        body = request.json()
        with self.lock:
            self.requests.append(body)
        if self.models is not None and body.get("model") not in self.models:
            return Reply(404, {"error": {"message": f"The model `{body.get('model')}` does not exist or you do not "
                                                   "have access to it.", "type": "invalid_request_error",
                                         "param": None, "code": "model_not_found"}})
        if self.mode == "hang":
            self.stopping.wait(self.hang_seconds)
        if self.mode == "error":
            return Reply(500, {"error": {"message": "the fake model is down", "type": "server_error"}})
        answer = self.reply(body) if callable(self.reply) else self.reply
        message = dict(answer) if isinstance(answer, dict) else {"role": "assistant", "content": answer}
        message.setdefault("role", "assistant")
        prompt_tokens = sum(_words(m.get("content")) for m in body.get("messages", []))
        completion_tokens = _words(message.get("content"))
        if not body.get("stream") and self.pace_whole:
            pieces = len(self.chunking(message.get("content") or ""))
            self.stopping.wait(self.first_token_delay + self.token_delay * pieces)
        if body.get("stream"):
            usage = ({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}
                     if (body.get("stream_options") or {}).get("include_usage") else None)
            return Reply(200, Stream(self._events(body, message, usage)),
                         headers={"Content-Type": "text/event-stream; charset=utf-8"})
        return Reply(200, {
            "id": f"chatcmpl-fake-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake-model"),
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })


    def _events(self, body: dict, message: dict, usage: dict | None) -> Iterator[bytes]:
        chunk_id, created, model = f"chatcmpl-fake-{next(self._ids)}", int(time.time()), body.get("model", "fake-model")

        def event(choices: list[dict], **more) -> bytes:
            data = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "system_fingerprint": None, "choices": choices, **more}
            return b"data: " + json.dumps(data).encode("utf-8") + b"\n\n"

        def delta(d: dict, finish: str | None = None) -> list[dict]:
            return [{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}]

        sent = False
        try:
            if self.first_token_delay:
                self.stopping.wait(self.first_token_delay)
            yield event(delta({"role": "assistant", "content": ""}))
            for n, piece in enumerate(self.chunking(message.get("content") or "")):
                if n == 0:
                    with self.lock:
                        self.first_token_at.append(time.time())
                yield event(delta({"content": piece}))
                if self.token_delay:
                    self.stopping.wait(self.token_delay)
            for i, call in enumerate(message.get("tool_calls") or []):
                function = call.get("function") or {}
                yield event(delta({"tool_calls": [{"index": i, "id": call.get("id", f"call_{i}"), "type": "function",
                                                   "function": {"name": function.get("name", ""),
                                                                "arguments": function.get("arguments", "")}}]}))
            yield event(delta({}, "tool_calls" if message.get("tool_calls") else "stop"))
            if usage is not None:
                yield event([], usage=usage)
            yield b"data: [DONE]\n\n"
            sent = True
        finally:
            if not sent:
                with self.lock:
                    self.streams_cut += 1


def _words(content) -> int:
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
        return sum(_words(part.get("text")) for part in content if isinstance(part, dict))
    return len(content.split()) if isinstance(content, str) else 0
