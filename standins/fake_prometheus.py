"""A loopback Prometheus HTTP API: instant queries and the build info.

* ``GET`` and ``POST`` (``application/x-www-form-urlencoded``; the form wins over the URL's query
  string, as Go's ``FormValue``) ``/api/v1/query`` with ``query``, optional ``time`` (unix seconds
  or RFC 3339; default now) and ``timeout`` (seconds, or a duration such as ``30s``, ``1m30s``).
  Success is Prometheus' envelope, ``{"status": "success", "data": {"resultType": "vector",
  "result": [{"metric": {...}, "value": [<unix float>, "<value>"]}]}}`` (``scalar``: ``"result":
  [<unix>, "<value>"]``; ``matrix``: ``"values"`` per series; ``string``), values written as Go's
  ``FormatFloat(v, 'f', -1)`` (``"0.0123"``, ``"NaN"``, ``"+Inf"``), with ``warnings`` when set.
* Errors as Prometheus answers them, ``{"status": "error", "errorType": ..., "error": ...}``:
  ``400 bad_data`` for a query that does not parse (unbalanced ``(){}[]``, an unterminated
  string, a character PromQL does not have such as an unsubstituted ``$var``, an empty query),
  a bad ``time`` or ``timeout``; ``mode`` scripts the others: ``"execution"`` (422),
  ``"timeout"`` (503), ``"unavailable"`` (503), ``"internal"`` (500), ``"hang"`` (no answer
  until the query's ``timeout`` or ``hang_seconds``, then 503 ``timeout``).
* ``GET /api/v1/status/buildinfo``; another method on an API path: 405; another path: 404
  (``404 page not found``, as Go's router).
* ``token``: a bearer token every request must carry (Prometheus behind an authenticating proxy):
  401 ``Unauthorized`` with ``WWW-Authenticate: Bearer`` otherwise.

Test hooks: ``set_result(query, result)`` for an exact query string (``vector(...)``,
``scalar(...)``, ``matrix(...)``, ``string(...)``), ``default`` for any other query that parses,
``received`` (every ``/api/v1/query`` request: method, parameters, authorization), ``mode``.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from standins._loopback import LoopbackServer, Reply, Request

QUERY_PATH = "/api/v1/query"
BUILDINFO_PATH = "/api/v1/status/buildinfo"
DEFAULT_TIMEOUT = 120.0        # Prometheus' query.timeout default (2m)
ERROR_STATUS = {"bad_data": 400, "execution": 422, "timeout": 503, "unavailable": 503, "internal": 500}
MODE_MESSAGES = {
    "execution": "expanding series: query processing would load too many samples into memory in query execution",
    "timeout": "query timed out in query execution",
    "unavailable": "TSDB not ready",
    "internal": "unexpected error in query engine",
}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
# What PromQL's lexer takes outside strings and comments.
_PROMQL_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:.,+-*/%^=!<>~@(){}[] \t\r\n")


@dataclass(frozen=True)
class Result:
    """What a query evaluates to: ``type`` is Prometheus' ``resultType``."""

    type: str
    data: Any


def vector(*series: tuple[dict[str, str], float]) -> Result:
    """An instant vector: (labels, value) per series (``__name__`` among the labels if it has one)."""
    return Result("vector", list(series))


def scalar(value: float) -> Result:
    return Result("scalar", value)


def matrix(*series: tuple[dict[str, str], list[float]], step: float = 15.0) -> Result:
    """A range vector: (labels, values) per series, the samples ``step`` seconds apart, the last at
    the evaluation time."""
    return Result("matrix", (list(series), step))


def string(value: str) -> Result:
    return Result("string", value)


@dataclass
class Received:
    """One ``/api/v1/query`` request as it arrived."""

    method: str
    query: str | None
    time: str | None
    timeout: str | None
    authorization: str | None
    params: dict[str, str] = field(default_factory=dict)


class PromQLError(ValueError):
    """A query Prometheus would not parse; the message is the one it answers."""


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it (Go's ``strconv.FormatFloat(v, 'f', -1, 64)``)."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return format(Decimal(repr(float(value))), "f")


def check_syntax(query: str) -> None:
    """Raise :class:`PromQLError` where Prometheus' lexer and parser would stop on bracketing,
    strings and characters (not a full PromQL grammar: operands and functions are not checked)."""
    if not query.strip():
        raise PromQLError("1:1: parse error: no expression found in input")
    stack: list[tuple[str, int]] = []
    closers = {")": "(", "}": "{", "]": "["}
    i = 0
    while i < len(query):
        ch = query[i]
        if ch in "\"'`":
            end = i + 1
            while end < len(query) and query[end] != ch:
                if query[end] == "\\" and ch != "`":
                    end += 1
                end += 1
            if end >= len(query):
                raise PromQLError(f"{_where(query, i)}: parse error: "
                                 f"{'unterminated raw string' if ch == '`' else 'unterminated quoted string'}")
            i = end + 1
            continue
        if ch == "#":                               # a comment, to the end of the line
            nl = query.find("\n", i)
            i = len(query) if nl < 0 else nl + 1
            continue
        if ch in "({[":
            stack.append((ch, i))
        elif ch in closers:
            if not stack or stack[-1][0] != closers[ch]:
                if ch == ")":
                    raise PromQLError(f"{_where(query, i)}: parse error: unexpected right parenthesis ')'")
                if ch == "]":
                    raise PromQLError(f"{_where(query, i)}: parse error: unexpected right bracket ']'")
                raise PromQLError(f"{_where(query, i)}: parse error: unexpected right brace '}}'")
            stack.pop()
        elif ch not in _PROMQL_CHARS:
            raise PromQLError(f"{_where(query, i)}: parse error: unexpected character: {ch!r}")
        i += 1
    if stack:
        opener, at = stack[-1]
        what = {"(": "unclosed left parenthesis", "{": "unexpected end of input inside braces",
                "[": "unclosed left bracket"}[opener]
        raise PromQLError(f"{_where(query, at if opener == '(' else len(query))}: parse error: {what}")


def _where(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"{line}:{column}"


def parse_time(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValueError(f'invalid parameter "time": cannot parse "{value}" to a valid timestamp') from None


def parse_duration(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        parts = _DURATION.findall(value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise ValueError(f'invalid parameter "timeout": cannot parse "{value}" to a valid duration') from None
        seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError(f'invalid parameter "timeout": cannot parse "{value}" to a valid duration')
    return seconds


def _error(error_type: str, message: str) -> Reply:
    return Reply(ERROR_STATUS[error_type], {"status": "error", "errorType": error_type, "error": message})


class FakePrometheus(LoopbackServer):
    def __init__(self, *, token: str | None = None, version: str = "2.53.1", hang_seconds: float = 30.0):
        super().__init__()
        self.token = token
        self.version = version
        self.hang_seconds = hang_seconds
        self.results: dict[str, Result] = {}
        self.default: Result = vector()
        self.warnings: list[str] = []
        self.mode: str | None = None
        self.received: list[Received] = []
        self.requests: list[Request] = []
        self.clock = time.time            # tests may pin the evaluation time
        self._results_lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.origin

    def set_result(self, query: str, result: Result) -> None:
        with self._results_lock:
            self.results[query] = result

    def queries(self) -> list[str | None]:
        """The ``query`` of every request received, in order."""
        with self.lock:
            return [r.query for r in self.received]

    def handle(self, request: Request) -> Reply:
        with self.lock:
            self.requests.append(request)
        params = dict(request.query)
        content_type = request.headers.get("content-type", "")
        if request.method == "POST" and content_type.split(";")[0].strip() == "application/x-www-form-urlencoded":
            params.update(dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True)))
        if request.path == QUERY_PATH:
            with self.lock:
                self.received.append(Received(request.method, params.get("query"), params.get("time"),
                                              params.get("timeout"), request.headers.get("authorization"),
                                              params))
        if self.token is not None and request.headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, "Unauthorized\n", {"WWW-Authenticate": 'Bearer realm="prometheus"'})
        if request.path == QUERY_PATH:
            if request.method not in ("GET", "POST"):
                return Reply(405, "Method Not Allowed\n")
            return self._query(params)
        if request.path == BUILDINFO_PATH:
            if request.method != "GET":
                return Reply(405, "Method Not Allowed\n")
            return Reply(200, {"status": "success", "data": {
                "version": self.version, "revision": "e5f2b2b2b5a5b8a8c1a0e0f1b7c6d5e4f3a2b1c0", "branch": "HEAD",
                "buildUser": "root@a1b2c3d4e5f6", "buildDate": "20240710-10:16:27", "goVersion": "go1.22.5"}})
        return Reply(404, "404 page not found\n")

    def _query(self, params: dict[str, str]) -> Reply:
        try:
            at = parse_time(params["time"]) if params.get("time") else self.clock()
            timeout = parse_duration(params["timeout"]) if params.get("timeout") else DEFAULT_TIMEOUT
        except ValueError as exc:
            return _error("bad_data", str(exc))
        query = params.get("query") or ""
        try:
            check_syntax(query)
        except PromQLError as exc:
            return _error("bad_data", f'invalid parameter "query": {exc}')
        if self.mode == "hang":
            self.stopping.wait(min(timeout, self.hang_seconds))
            return _error("timeout", MODE_MESSAGES["timeout"])
        if self.mode in MODE_MESSAGES:
            return _error(self.mode, MODE_MESSAGES[self.mode])
        with self._results_lock:
            result = self.results.get(query, self.default)
        stamp = round(at, 3)
        data: dict[str, Any] = {"resultType": result.type}
        if result.type == "vector":
            data["result"] = [{"metric": dict(labels), "value": [stamp, format_value(v)]} for labels, v in result.data]
        elif result.type == "scalar":
            data["result"] = [stamp, format_value(result.data)]
        elif result.type == "string":
            data["result"] = [stamp, str(result.data)]
        else:
            series, step = result.data
            data["result"] = [{"metric": dict(labels), "values": [
                [round(at - step * (len(values) - 1 - n), 3), format_value(v)] for n, v in enumerate(values)]}
                for labels, values in series]
        body: dict[str, Any] = {"status": "success", "data": data}
        if self.warnings:
            body["warnings"] = list(self.warnings)
        return Reply(200, body)
