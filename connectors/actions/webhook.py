"""A signed JSON webhook: the generic "call our own automation" action.

POSTs ``{"action", "arguments", "proposal_id", "requested_by", "approved_by"}``
to ``url`` with

* ``X-Chatops-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>``
  (key: the secret in the environment variable named by ``secret_env``), and
* ``Idempotency-Key: <proposal id>``, so the receiver can drop repeats; that is
  why a retry after a timeout or 5xx is safe (``idempotent = True``).

Any 2xx is success. Redirects are not followed (the signature and body would
go somewhere nobody configured).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import ClassVar
from urllib.parse import urlsplit

import requests
from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.actions._common import (Scrubber, SecretHttpConnector, body_text, check_http_url, checked_get, status_failure,
                                        transport_failure)
from connectors.actions.base import ConnectorDeps, ExecutionContext, ExecutionResult

SIGNATURE_HEADER = "X-Chatops-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_RESERVED = {"content-type", "content-length", "host", "transfer-encoding",
             SIGNATURE_HEADER.lower(), IDEMPOTENCY_HEADER.lower()}


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    secret_env: str = Field(min_length=1)
    timeout: float | None = Field(default=None, gt=0)
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_http_url(value)

    @field_validator("headers")
    @classmethod
    def _no_reserved_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name.strip().lower() in _RESERVED:
                raise ValueError(f"{name} is set by the connector and cannot be configured")
        return value


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class WebhookConnector(SecretHttpConnector):
    kind: ClassVar[str] = "webhook"
    idempotent: bool = True
    config_model: ClassVar[type] = Config
    secret_field: ClassVar[str] = "secret_env"

    def __init__(self, config: Config, deps: ConnectorDeps):
        super().__init__(config, deps)
        self._host = urlsplit(config.url).hostname or "the webhook"

    def check(self) -> str:
        """``chatops doctor``: the receiver answers HTTP (a HEAD, which runs nothing; any status will do)."""
        resp = checked_get(self._deps, self._host, self.config.url, method="HEAD", timeout=self._timeout)
        return f"{self._host} answers ({resp.status_code} to HEAD)"

    def execute(self, arguments: dict, ctx: ExecutionContext) -> ExecutionResult:
        secret = self._deps.secret(self.config.secret_env)
        if not secret:  # unset since start-up
            return ExecutionResult(ok=False, transient=False,
                                   summary=f"Not run: the signing secret ({self.config.secret_env}) is not set",
                                   detail={"error": "secret_missing", "secret_env": self.config.secret_env})
        scrub = Scrubber([secret])
        payload = {"action": ctx.action, "arguments": arguments, "proposal_id": ctx.proposal_id,
                   "requested_by": ctx.requested_by, "approved_by": ctx.approved_by}
        try:
            body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            return ExecutionResult(ok=False, transient=False,
                                   summary="Not run: the arguments cannot be sent as JSON",
                                   detail={"error": "bad_arguments", "reason": type(exc).__name__})
        headers = {**self.config.headers,
                   "Content-Type": "application/json",
                   SIGNATURE_HEADER: sign(secret, body),
                   IDEMPOTENCY_HEADER: ctx.proposal_id}
        try:
            resp = self._deps.http.post(self.config.url, data=body, headers=headers,
                                        timeout=self._timeout, allow_redirects=False)
        except requests.RequestException as exc:
            return transport_failure(exc, self._host, self._timeout)
        if 200 <= resp.status_code < 300:
            return ExecutionResult(
                ok=True, summary=f"{ctx.action} accepted by {self._host} (HTTP {resp.status_code})",
                detail={"status": resp.status_code, "target": self._host})
        reason = "redirects are not followed" if 300 <= resp.status_code < 400 else body_text(resp)
        return status_failure(resp, self._host, ctx.action, reason, scrub)
