"""A loopback OpenAI-compatible embeddings server for the real ``openai.OpenAI(base_url=...)`` and
``openai.AzureOpenAI(azure_endpoint=...)``.

``POST /v1/embeddings`` (and Azure's ``POST /openai/deployments/{deployment}/embeddings?api-version=``)
takes OpenAI's request: ``model``, ``input`` (a string or a list of them), ``encoding_format``
(``float``, the default, or ``base64``: little-endian float32, as the openai SDK asks for by
default), ``dimensions`` (text-embedding-3 models only, at most the model's own), ``user``; and
answers OpenAI's ``{"object": "list", "data": [{"object": "embedding", "index", "embedding"}],
"model", "usage": {"prompt_tokens", "total_tokens"}}``. Errors are OpenAI's ``{"error": {"message",
"type", "param", "code"}}``: 401 ``invalid_api_key``, 404 ``model_not_found``, 400 for a bad
request, 429 ``rate_limit_exceeded`` with ``Retry-After``, 500 ``server_error``.

Vectors are deterministic: a hashed bag of words (each lower-cased word adds a signed weight to
two coordinates), normalised, so texts sharing words are near and the same text always gives the
same vector. Usage counts whitespace-separated words.

Hooks: ``fail_next(count, status, retry_after)`` (the next requests fail so), ``wrong_dim`` (answer
vectors of that length whatever was asked), ``delay`` (seconds before each answer), ``max_inputs``
(more inputs in one request: 400, as OpenAI's 2,048). ``requests`` logs every request's body,
path and time; ``batch_sizes`` and ``max_in_flight`` say how the client sent them.

Azure: ``api_key`` is checked in the ``api-key`` header there, and ``bearer_check(authorization)``
decides on an Entra token (``Authorization: Bearer``); ``CognitiveServices`` makes a
``standins.fake_entra.FakeEntra`` issue tokens for ``https://cognitiveservices.azure.com/.default``.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
import threading
import time
from typing import Callable

from standins._loopback import LoopbackServer, Reply, Request

MODELS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
_WORD = re.compile(r"\w+", re.UNICODE)
_AZURE = re.compile(r"^/openai/deployments/([^/]+)/embeddings$")


def vector(text: str, dim: int) -> list[float]:
    """The stand-in's embedding of ``text``: a normalised hashed bag of words."""
    v = [0.0] * dim
    for word in _WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode("utf-8"), digest_size=16).digest()
        for k in (0, 8):
            slot = int.from_bytes(digest[k:k + 4], "little") % dim
            v[slot] += 1.0 if digest[k + 4] & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in v))
    if norm == 0:
        v[0], norm = 1.0, 1.0
    return [x / norm for x in v]


def _error(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class FakeEmbeddings(LoopbackServer):
    def __init__(self, models: dict[str, int] | None = None, *, api_key: str | None = None,
                 bearer_check: Callable[[str], bool] | None = None, default_dim: int = 384):
        super().__init__()
        # The models it serves and their own dimension (None: any name, at ``default_dim``).
        self.models = models
        self.default_dim = default_dim
        self.api_key = api_key
        self.bearer_check = bearer_check
        self.requests: list[dict] = []
        self.wrong_dim: int | None = None
        self.delay = 0.0
        self.max_inputs = 2048
        self.in_flight = 0
        self.max_in_flight = 0
        self._failures: list[tuple[int, float | None]] = []

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def fail_next(self, count: int = 1, status: int = 429, retry_after: float | None = None) -> None:
        """The next ``count`` embedding requests answer ``status`` (429: with ``Retry-After``)."""
        with self.lock:
            self._failures.extend([(status, retry_after)] * count)

    @property
    def batch_sizes(self) -> list[int]:
        """Inputs per request that was answered, in arrival order."""
        with self.lock:
            return [len(r["input"]) for r in self.requests if r.get("status") == 200]

    def handle(self, request: Request) -> Reply:
        azure = _AZURE.match(request.path)
        if request.method != "POST" or not (azure or request.path == "/v1/embeddings"):
            return Reply(404, _error(f"Invalid URL ({request.method} {request.path})", "invalid_request_error"))
        refused = self._auth(request, azure is not None)
        if refused is not None:
            return refused
        if azure and not request.query.get("api-version"):
            return Reply(404, _error("Resource not found", "invalid_request_error", "404"))
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return self._embed(request, azure.group(1) if azure else None)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _auth(self, request: Request, azure: bool) -> Reply | None:
        authorization = request.headers.get("authorization", "")
        if azure and self.bearer_check is not None and authorization.startswith("Bearer "):
            ok = self.bearer_check(authorization)
        elif azure:
            ok = self.api_key is None or request.headers.get("api-key") == self.api_key
        else:
            ok = self.api_key is None or authorization == f"Bearer {self.api_key}"
        if ok:
            return None
        return Reply(401, _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"))

    def _embed(self, request: Request, deployment: str | None) -> Reply:
        try:
            body = request.json()
        except ValueError:
            return Reply(400, _error("We could not parse the JSON body of your request.", "invalid_request_error"))
        body = body if isinstance(body, dict) else {}
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else inputs
        record = {"path": request.path, "model": deployment or body.get("model"), "at": time.time(),
                  "encoding_format": body.get("encoding_format"), "dimensions": body.get("dimensions"),
                  "input": texts if isinstance(texts, list) else [], "status": 200}
        with self.lock:
            self.requests.append(record)
            failure = self._failures.pop(0) if self._failures else None
        if self.delay:
            self.stopping.wait(self.delay)

        def refuse(status: int, payload: dict, headers: dict | None = None) -> Reply:
            record["status"] = status
            return Reply(status, payload, headers or {})

        if failure is not None:
            status, retry_after = failure
            if status == 429:
                return refuse(429, _error("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
                              {"Retry-After": str(retry_after)} if retry_after is not None else {})
            return refuse(status, _error("The server had an error while processing your request.", "server_error"))
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return refuse(400, _error("'input' must be a string or a non-empty array of strings", "invalid_request_error",
                                      param="input"))
        if len(texts) > self.max_inputs:
            return refuse(400, _error(f"Too many inputs. The max number of inputs is {self.max_inputs}.",
                                      "invalid_request_error", param="input"))
        if any(not t for t in texts):
            return refuse(400, _error("'$.input' is invalid: empty strings are not embedded", "invalid_request_error",
                                      param="input"))
        model = record["model"]
        if self.models is not None and model not in self.models:
            return refuse(404, _error(f"The model `{model}` does not exist or you do not have access to it.",
                                      "invalid_request_error", "model_not_found"))
        dim = (self.models or {}).get(str(model), self.default_dim)
        asked = body.get("dimensions")
        if asked is not None:
            if not str(model).startswith("text-embedding-3"):
                return refuse(400, _error("This model does not support specifying dimensions.",
                                          "invalid_request_error", param="dimensions"))
            if not isinstance(asked, int) or not 1 <= asked <= dim:
                return refuse(400, _error(f"Invalid 'dimensions': must be between 1 and {dim}.",
                                          "invalid_request_error", param="dimensions"))
            dim = asked
        dim = self.wrong_dim or dim
        fmt = body.get("encoding_format") or "float"
        if fmt not in ("float", "base64"):
            return refuse(400, _error(f"Invalid value for 'encoding_format': {fmt}.", "invalid_request_error",
                                      param="encoding_format"))
        data = []
        for i, text in enumerate(texts):
            v = vector(text, dim)
            data.append({"object": "embedding", "index": i,
                         "embedding": v if fmt == "float" else
                         base64.b64encode(struct.pack(f"<{dim}f", *v)).decode("ascii")})
        tokens = sum(len(t.split()) for t in texts)
        return Reply(200, {"object": "list", "data": data, "model": model,
                           "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


class CognitiveServices:
    """Azure AI services as a resource of a ``FakeEntra`` (``entra.extend(CognitiveServices())``): its
    token endpoint then issues app tokens for ``https://cognitiveservices.azure.com/.default``, whose
    audience ``accepts(authorization)`` checks (a ``FakeEmbeddings.bearer_check``)."""

    AUDIENCE = "https://cognitiveservices.azure.com"
    hosts = {"cognitiveservices.azure.com"}

    def __init__(self) -> None:
        self.entra = None     # set by FakeEntra.extend
        self.checked = 0
        self._lock = threading.Lock()

    def accepts(self, authorization: str) -> bool:
        with self._lock:
            self.checked += 1
        info = self.entra.token_info(authorization) if self.entra is not None else None
        return bool(info and info[0] == self.AUDIENCE)

    def handle_graph(self, request: Request, parts: list[str]) -> Reply | None:
        return None

    def handle_host(self, host: str, request: Request, path: str) -> Reply:
        return Reply(404, {"error": {"code": "404", "message": "Resource not found"}})
