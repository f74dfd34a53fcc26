"""A loopback OpenAI-compatible chat completions server for the real ``openai.OpenAI(base_url=...)``.

``reply`` is the assistant's text, or a callable given the request JSON that
returns the text, or a dict used as the whole ``message`` (e.g. scripted
``tool_calls``). ``mode``: "ok", "error" (HTTP 500 every time) or "hang" (no
answer for ``hang_seconds``, longer than any sane client timeout in tests).
Token usage is counted in whitespace-separated words, which is enough to test
that it is passed through.
"""

from __future__ import annotations

import itertools
import time
from typing import Callable

from standins._loopback import LoopbackServer, Reply, Request


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


def _words(content) -> int:
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
        return sum(_words(part.get("text")) for part in content if isinstance(part, dict))
    return len(content.split()) if isinstance(content, str) else 0
