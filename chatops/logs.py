"""Structured logs with one correlation id per question, and no secrets.

``correlation_id`` is a context variable: the web process sets it from the
Slack event, the task carries it to the worker, and every line logged while
handling that question carries it. A redaction filter masks anything shaped
like a Slack, OpenAI or bearer token, whatever code produced the line.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import time
import uuid
from typing import IO, Iterator

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)

_SECRET_PATTERNS = [
    re.compile(r"(?<![A-Za-z0-9])xox[abposer]-[A-Za-z0-9-]+"),
    re.compile(r"(?<![A-Za-z0-9])xapp-[A-Za-z0-9-]+"),
    re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{8,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)(client_secret=)[^&\s]+"),
    re.compile(r"(?i)(\"?(?:access_token|client_secret|api_key)\"?\s*[:=]\s*\"?)[^\"&,\s]+"),
]


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + "[REDACTED]", text)
        else:
            text = pattern.sub("[REDACTED]", text)
    return text


def new_correlation_id() -> str:
    """32 hex digits, the shape of a trace id (which is the correlation id when tracing is on)."""
    return uuid.uuid4().hex


@contextlib.contextmanager
def correlated(cid: str | None) -> Iterator[str]:
    """Run a block with ``cid`` (or a fresh id) as the correlation id."""
    value = cid or new_correlation_id()
    token = correlation_id.set(value)
    try:
        yield value
    finally:
        correlation_id.reset(token)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation_id.get()
        return True


_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "correlation_id"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        cid = getattr(record, "correlation_id", None)
        if cid:
            payload["correlation_id"] = cid
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(payload, default=str))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        cid = getattr(record, "correlation_id", None)
        base = f"{record.levelname.lower():7s} {record.name}: {record.getMessage()}"
        if cid:
            base += f" [cid={cid}]"
        if record.exc_info:
            base += "\n" + self.formatException(record.exc_info)
        return redact(base)


def setup(level: str = "INFO", fmt: str = "json", stream: IO[str] | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_chatops", False):
            root.removeHandler(existing)
    handler._chatops = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Third-party clients log request URLs and headers at DEBUG; keep them quiet.
    for noisy in ("httpx", "httpcore", "urllib3", "msal", "slack_sdk", "slack_bolt"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))
