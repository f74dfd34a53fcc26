"""A loopback webhook receiver: records every request (headers and raw body bytes).

``statuses`` scripts the answers, one per request, e.g. ``[503, 200]``; after
that every request gets ``default_status``. A step may also be ``"hang"``: no
answer for ``hang_seconds`` (longer than any sane client timeout in tests), or
a ``(status, headers)`` pair, e.g. ``(429, {"Retry-After": "7"})``, or a
``(status, headers, body)`` triple.
``verify(secret)`` recomputes the HMAC-SHA256 over the bytes that arrived.
"""

from __future__ import annotations

import hashlib
import hmac

from standins._loopback import LoopbackServer, Reply, Request


class FakeWebhook(LoopbackServer):
    path = "/hooks/chatops"

    def __init__(self, statuses=(), *, default_status: int = 200, hang_seconds: float = 30.0):
        super().__init__()
        self.statuses = list(statuses)
        self.default_status = default_status
        self.hang_seconds = hang_seconds
        self.requests: list[Request] = []

    @property
    def url(self) -> str:
        return self.origin + self.path

    def script(self, *steps) -> None:
        with self.lock:
            self.statuses.extend(steps)

    def handle(self, request: Request) -> Reply:
        if request.method != "POST":   # a receiver of POSTs: anything else runs nothing and is not recorded
            return Reply(405 if request.path == self.path else 404, {"error": "method not allowed"}, {"Allow": "POST"})
        with self.lock:
            self.requests.append(request)
            step = self.statuses.pop(0) if self.statuses else self.default_status
        if request.path != self.path:
            return Reply(404, {"error": "no such hook"})
        if step == "hang":
            self.stopping.wait(self.hang_seconds)
            return Reply(504, {"error": "too late"})
        status, headers, *body = step if isinstance(step, tuple) else (step, {})
        if body:
            return Reply(status, body[0], headers)
        if 200 <= status < 300:
            return Reply(status, {"accepted": True, "idempotency_key": request.headers.get("idempotency-key")},
                         headers)
        return Reply(status, {"error": f"scripted failure {status}"}, headers)

    def verify(self, secret: str, index: int = -1) -> bool:
        """Whether request ``index`` carries a valid ``X-Chatops-Signature`` for ``secret``."""
        request = self.requests[index]
        expected = "sha256=" + hmac.new(secret.encode("utf-8"), request.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(request.headers.get("x-chatops-signature", ""), expected)
