"""Plumbing the action connectors share: config validation, secrets, HTTP outcomes.

Outcome rules (every connector): network errors, timeouts, 429 and 5xx are
``transient``; any other non-2xx is a plain failure carrying the status and a
short reason. Reasons come from the target's answer, cut short and scrubbed of
every secret the connector knows, so nothing secret reaches a summary, the
audit ``detail`` or a log line.
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar, Iterable, TypeVar
from urllib.parse import urlsplit

import requests
import urllib3
from pydantic import BaseModel, ValidationError

from chatops.checks import CheckFailed, CheckWarning
from connectors.actions.base import Approvers, ConnectorConfigError, ConnectorDeps, ExecutionResult

log = logging.getLogger("connectors.actions")

M = TypeVar("M", bound=BaseModel)

MAX_REASON = 300


# -- configuration -----------------------------------------------------------

def parse_config(model: type[M], settings: Any) -> M:
    """``settings`` validated by ``model``; the first problem as a ConnectorConfigError."""
    if not isinstance(settings, dict):
        raise ConnectorConfigError("settings", f"must be a mapping, not {type(settings).__name__}")
    try:
        return model.model_validate(settings)
    except ValidationError as exc:
        errors = exc.errors()
        err = errors[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "settings"
        kind = err.get("type")
        if kind == "missing":
            message = "field required"
        elif kind == "extra_forbidden":
            message = f"unknown key (known: {', '.join(model.model_fields)})"
        else:
            message = str(err.get("msg", "invalid"))
            if message.startswith("Value error, "):
                message = message[len("Value error, "):]
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        raise ConnectorConfigError(where, message) from None


def check_http_url(value: str) -> str:
    """For pydantic validators: an absolute http(s) URL without a trailing slash."""
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/") if parts.path in ("", "/") else value


def check_base_url(value: str) -> str:
    """For pydantic validators: an http(s) base URL (no query or fragment), trailing slash removed."""
    value = check_http_url(value)
    parts = urlsplit(value)
    if parts.query or parts.fragment:
        raise ValueError("must be a base URL without a query or fragment")
    return value.rstrip("/")


def require_secret(deps: ConnectorDeps, field: str, env_name: str) -> str:
    """The secret named ``env_name``; ConnectorConfigError(field) if it is not set."""
    value = deps.secret(env_name)
    if not value:
        raise ConnectorConfigError(field, f"environment variable {env_name} is not set")
    return value


def timeout_for(config_timeout: float | None, deps: ConnectorDeps) -> float:
    return config_timeout if config_timeout is not None else deps.timeout


# -- outcomes ----------------------------------------------------------------

class Scrubber:
    """Removes known secret values from text shown to people or stored."""

    def __init__(self, secrets: Iterable[str | None] = ()):
        self._secrets = [s for s in secrets if s and len(s) >= 4]

    def __call__(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        return text


def bad_arguments(message: str) -> ExecutionResult:
    return ExecutionResult(ok=False, transient=False, summary=f"Not run: {message}",
                           detail={"error": "bad_arguments", "reason": message})


def transport_failure(exc: requests.RequestException, target: str, timeout: float, *,
                      outcome_unknown: bool = False) -> ExecutionResult:
    """A request that got no answer (transient).

    ``outcome_unknown``: the target does not de-duplicate, so say when the request may
    have been carried out anyway (it was sent, but the answer never came).
    """
    name = type(exc).__name__
    if isinstance(exc, requests.Timeout):
        summary = f"{target} did not answer within {timeout:g}s"
    else:
        summary = f"{target} could not be reached ({name})"
    if outcome_unknown and not _never_sent(exc):
        summary += "; it may or may not have been done"
    log.warning("action request failed", extra={"target": target, "error": name})
    return ExecutionResult(ok=False, transient=True, summary=summary,
                           detail={"error": name, "target": target})


def _never_sent(exc: requests.RequestException) -> bool:
    """No connection was made (refused, DNS, connect timeout): the request never left."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.Timeout):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, urllib3.exceptions.NewConnectionError)
    return False


def status_failure(resp: requests.Response, target: str, what: str, reason: str | None,
                   scrub: Scrubber) -> ExecutionResult:
    """A non-2xx answer: transient for 429/5xx, a plain failure otherwise."""
    status = resp.status_code
    transient = status == 429 or status >= 500
    reason = scrub(_shorten(reason or resp.reason or ""))
    if transient:
        summary = f"{target} is unavailable (HTTP {status})"
    else:
        summary = f"{target} refused {what} (HTTP {status})"
    if reason:
        summary += f": {reason}"
    detail: dict[str, Any] = {"status": status, "target": target}
    if reason:
        detail["reason"] = reason
    if status == 429 and resp.headers.get("Retry-After"):
        detail["retry_after"] = scrub(resp.headers["Retry-After"][:40])
    log.warning("action target answered an error",
                extra={"target": target, "status": status, "transient": transient})
    return ExecutionResult(ok=False, transient=transient, summary=summary, detail=detail)


def body_text(resp: requests.Response) -> str:
    """A short, single-line text of a response body (for reasons)."""
    try:
        text = resp.text
    except Exception:  # noqa: BLE001 - undecodable bodies are simply not shown
        return ""
    return " ".join(text.split())[:MAX_REASON]


def json_body(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except (ValueError, json.JSONDecodeError):
        return None


def _shorten(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_REASON else text[:MAX_REASON - 1] + "…"


class SecretHttpConnector:
    """What the HTTP connectors share: a validated config, one secret checked at start-up (not
    at approval time), a timeout, and no default approvers (the requester alone)."""

    config_model: ClassVar[type]     # the connector's Config
    secret_field: ClassVar[str]      # the Config field that names the secret's env variable

    def __init__(self, config, deps: ConnectorDeps):
        self.config = config
        self._deps = deps
        require_secret(deps, self.secret_field, getattr(config, self.secret_field))
        self._timeout = timeout_for(config.timeout, deps)

    @classmethod
    def from_settings(cls, settings: dict, deps: ConnectorDeps):
        return cls(parse_config(cls.config_model, settings), deps)

    def default_approvers(self, arguments: dict) -> Approvers | None:
        return None


# -- chatops doctor ------------------------------------------------------------

def checked_get(deps: ConnectorDeps, target: str, url: str, *, auth=None, timeout: float,
                method: str = "GET", scrub: "Scrubber | None" = None) -> requests.Response:
    """One cheap request for ``check()``: the response, or CheckFailed saying the target cannot
    be reached or refused the credentials."""
    try:
        resp = deps.http.request(method, url, auth=auth, headers={"Accept": "application/json"}, timeout=timeout,
                                 allow_redirects=False)
    except requests.RequestException as exc:
        raise CheckFailed(f"cannot reach {target} at {urlsplit(url).netloc} ({type(exc).__name__})",
                          "check the URL and the network path to it") from None
    if resp.status_code == 401:
        raise CheckFailed(f"{target} refused the credentials (401)", "check the account and its secret")
    if resp.status_code == 403:
        reason = body_text(resp, scrub or Scrubber([]))
        raise CheckWarning(f"{target} answered 403 to {method} {urlsplit(url).path}: {reason}",
                           "give the account the permission the action needs")
    return resp
