"""Prometheus as a tool: named PromQL instant queries the operator wrote, with declared parameters.

A ``tools:`` entry of kind ``prometheus``::

    - name: health
      kind: prometheus
      url: https://prometheus.internal          # https, or http to a loopback host
      queries:                                   # one function per name (letters, digits, _)
        error_rate: 'sum(rate(http_requests_total{service="$service",code=~"5.."}[5m]))'
      params:                                    # every $param a query uses, declared
        service: {enum: [billing, checkout], description: "the service"}
        window: {pattern: '[0-9]+[mh]'}
      auth: {bearer_env: PROMETHEUS_TOKEN}       # optional: a bearer token, by variable name
      timeout: 10                                # seconds, at most (the call's own is shorter)

The model picks a query by name and fills its parameters; it never writes PromQL. A value is
checked against its declaration (``enum``, or ``pattern`` matched in full) before anything is
sent, and whatever it is it cannot leave the place it sits in: a parameter inside a PromQL string
literal takes no quote, backtick, backslash or control character (and is escaped anyway); one
outside a string takes only letters, digits, ``_``, ``.`` and ``:`` (a number, a duration, a
name). A ``$param`` inside a backtick (raw) string, which has no escapes, is refused at start-up.

A call is one instant query (``POST /api/v1/query`` with ``query``, ``time`` = now and
``timeout``); the output is one line per series (``{service="billing"} = 0.0123``) and the
evaluation time in UTC, or "no data"; its link is the expression in Prometheus' graph page.
Prometheus' errors (``bad_data``, ``execution``, …) fail the call with their type and message;
5xx, timeouts and network errors fail it as transient.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import requests
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from chatops.checks import CheckFailed
from chatops.tools import ToolSpec
from connectors.tools.base import (Caller, ToolConfigError, ToolDefinition, ToolDeps, ToolFailed, ToolOutput,
                                   ToolTimedOut, describe_call)

QUERY_PATH = "/api/v1/query"
BUILDINFO_PATH = "/api/v1/status/buildinfo"
MAX_VALUE = 256                 # characters of one parameter value
MAX_SERIES = 50                 # lines of output
MAX_SAMPLES = 10                # samples shown per series of a range vector
READ_ONLY = {"readOnlyHint": True, "destructiveHint": False}

_QUERY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,30}$")
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,30}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_BARE_VALUE = re.compile(r"^[A-Za-z0-9_.:]+$")     # outside a string: a number, a duration, a name
_UNSAFE_IN_STRING = re.compile(r"[\"'`\\\x00-\x1f\x7f]")
# A pattern that matches any of these lets a value out of its string: refused at start-up.
_PROBES = ('"', "'", "`", "\\", 'a"', '"a', "a'", "'a", "a\\", "\\a", '0"', '"}', "a`", '")', "\n")
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class _Param(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enum: list[str] | None = None
    pattern: str | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> "_Param":
        if (self.enum is None) == (self.pattern is None):
            raise ValueError("give either enum: [...] or pattern: '...', not both and not neither")
        if self.enum is not None and not self.enum:
            raise ValueError("enum: list at least one value")
        return self


class _Auth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bearer_env: str


class PrometheusConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str
    queries: dict[str, str]
    params: dict[str, _Param] = Field(default_factory=dict)
    auth: _Auth | None = None
    timeout: float = Field(default=10.0, gt=0, le=300)


@dataclass(frozen=True)
class _Slot:
    """Where a ``$param`` sits in a query: its span, and the quote of the string it is in (None:
    outside any string)."""

    start: int
    end: int
    param: str
    quote: str | None


@dataclass(frozen=True)
class _Query:
    name: str
    text: str
    slots: tuple[_Slot, ...]

    @property
    def params(self) -> list[str]:
        return list(dict.fromkeys(s.param for s in self.slots))


def _slots(text: str) -> list[_Slot]:
    """Every ``$param`` / ``${param}`` of a PromQL query with the string literal it sits in."""
    out: list[_Slot] = []
    quote_char: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote_char is not None:
            if ch == "\\" and quote_char != "`":
                i += 2
                continue
            if ch == quote_char:
                quote_char = None
                i += 1
                continue
        elif ch in "\"'`":
            quote_char = ch
            i += 1
            continue
        elif ch == "#":                                # a comment: to the end of the line
            nl = text.find("\n", i)
            i = len(text) if nl < 0 else nl + 1
            continue
        if ch == "$":
            m = _PLACEHOLDER.match(text, i)
            if m:
                out.append(_Slot(m.start(), m.end(), m.group(1) or m.group(2), quote_char))
                i = m.end()
                continue
        i += 1
    return out


def _escape(value: str, quote_char: str) -> str:
    """A value as the inside of a PromQL string quoted with ``quote_char`` (Go's escapes)."""
    out = value.replace("\\", "\\\\").replace(quote_char, "\\" + quote_char)
    return out.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def _config_error(exc: ValidationError) -> ToolConfigError:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "settings"
    kind = err.get("type")
    if kind == "extra_forbidden":
        return ToolConfigError(where, "unknown key")
    if kind == "missing":
        return ToolConfigError(where, "required")
    message = str(err.get("msg", "invalid"))
    return ToolConfigError(where, message.removeprefix("Value error, "))


def _check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if not parts.hostname or parts.scheme not in ("http", "https") or parts.query or parts.fragment:
        raise ToolConfigError("url", f"{url!r} is not a Prometheus base URL such as https://prometheus.internal")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise ToolConfigError("url", "must be https (http only to a loopback host)")
    if parts.username or parts.password:
        raise ToolConfigError("url", "must not carry credentials (use auth: {bearer_env: NAME})")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


class PrometheusTool:
    kind: ClassVar[str] = "prometheus"

    def __init__(self, name: str, config: PrometheusConfig, queries: dict[str, _Query], deps: ToolDeps):
        self.name = name
        self.config = config
        self.url = config.url
        self.queries = queries
        self._deps = deps

    @classmethod
    def from_config(cls, spec: ToolSpec, deps: ToolDeps) -> "PrometheusTool":
        try:
            config = PrometheusConfig.model_validate(spec.kind_settings)
        except ValidationError as exc:
            raise _config_error(exc) from None
        config.url = _check_url(config.url)
        if not config.queries:
            raise ToolConfigError("queries", "name at least one query")
        for pname, param in config.params.items():
            if not _PARAM_NAME.match(pname):
                raise ToolConfigError(f"params.{pname}", "a parameter's name is letters, digits and _ (max 31)")
            for value in param.enum or []:
                if not value or len(value) > MAX_VALUE or _UNSAFE_IN_STRING.search(value):
                    raise ToolConfigError(f"params.{pname}.enum", f"{value!r}: values must be 1 to {MAX_VALUE} "
                                          "characters without quotes, backticks, backslashes or control characters")
            if param.pattern is not None:
                try:
                    compiled = re.compile(param.pattern)
                except re.error as exc:
                    raise ToolConfigError(f"params.{pname}.pattern", f"not a regular expression: {exc}") from None
                leak = next((p for p in _PROBES if compiled.fullmatch(p)), None)
                if leak is not None:
                    raise ToolConfigError(f"params.{pname}.pattern", f"matches {leak!r}: a pattern must exclude "
                                          "quotes, backticks, backslashes and control characters")
        queries: dict[str, _Query] = {}
        for qname, text in config.queries.items():
            if not _QUERY_NAME.match(qname):
                raise ToolConfigError(f"queries.{qname}", "a query's name is a function name: a letter, then "
                                      "letters, digits and _ (max 31)")
            if not text.strip():
                raise ToolConfigError(f"queries.{qname}", "empty query")
            slots = _slots(text)
            for slot in slots:
                if slot.param not in config.params:
                    raise ToolConfigError(f"queries.{qname}", f"uses ${slot.param}, which params: does not declare")
                if slot.quote == "`":
                    raise ToolConfigError(f"queries.{qname}", f"${slot.param} sits in a raw (backtick) string, "
                                          "which cannot be escaped: use double quotes")
            queries[qname] = _Query(qname, text, tuple(slots))
        unknown = [f for f in spec.allow or [] if f not in queries]
        if unknown:
            raise ToolConfigError("allow", f"no query named {', '.join(unknown)} (queries: {', '.join(queries)})")
        if config.auth is not None:
            if not _ENV_NAME.match(config.auth.bearer_env):
                raise ToolConfigError("auth.bearer_env", "the name of an environment variable (never the token)")
            if not deps.secret(config.auth.bearer_env):
                raise ToolConfigError("auth.bearer_env", f"the environment variable {config.auth.bearer_env} "
                                      "is not set")
        return cls(spec.name, config, queries, deps)

    # -- the functions -----------------------------------------------------------------------

    def definitions(self, caller: Caller | None) -> list[ToolDefinition]:
        return [self._definition(q) for q in self.queries.values()]

    def _definition(self, query: _Query) -> ToolDefinition:
        properties: dict[str, Any] = {}
        for pname in query.params:
            param = self.config.params[pname]
            prop: dict[str, Any] = {"type": "string"}
            if param.enum is not None:
                prop["enum"] = list(param.enum)
            else:
                prop["pattern"] = f"^(?:{param.pattern})$"
                prop["maxLength"] = MAX_VALUE
            if param.description:
                prop["description"] = param.description
            properties[pname] = prop
        schema = {"type": "object", "properties": properties, "required": query.params,
                  "additionalProperties": False}
        description = (f"Live value from Prometheus ({urlsplit(self.url).hostname}): {query.name}. "
                       f"PromQL: {query.text}. Returns one line per series and the evaluation time (UTC).")
        return ToolDefinition(query.name, description, schema, dict(READ_ONLY))

    def describe_call(self, function: str, arguments: dict[str, Any]) -> str:
        return describe_call(function, arguments)

    def promql(self, function: str, arguments: dict[str, Any]) -> str:
        """The query ``function`` names with ``arguments`` in place. Raises ``ToolFailed`` for
        an argument the declaration does not allow (nothing is sent then)."""
        query = self.queries.get(function)
        if query is None:
            raise ToolFailed(f"{self.name} has no query named {function!r}")
        extra = sorted(set(arguments) - set(query.params))
        if extra:
            raise ToolFailed(f"{function} takes no argument {', '.join(extra)}")
        values: dict[str, str] = {}
        for pname in query.params:
            value = arguments.get(pname)
            if not isinstance(value, str) or not value:
                raise ToolFailed(f"{function}: {pname} is required (a string)")
            param = self.config.params[pname]
            if param.enum is not None and value not in param.enum:
                raise ToolFailed(f"{function}: {pname} must be one of {', '.join(param.enum)}")
            if param.pattern is not None and (len(value) > MAX_VALUE or not re.fullmatch(param.pattern, value)):
                raise ToolFailed(f"{function}: {pname} does not match the pattern {param.pattern}")
            values[pname] = value
        out, at = [], 0
        for slot in query.slots:
            value = values[slot.param]
            if slot.quote is None:
                if not _BARE_VALUE.match(value):
                    raise ToolFailed(f"{function}: {slot.param} may hold only letters, digits, _, . and : here")
                text = value
            else:
                if _UNSAFE_IN_STRING.search(value):
                    raise ToolFailed(f"{function}: {slot.param} may not hold quotes, backslashes or control "
                                     "characters")
                text = _escape(value, slot.quote)
            out += [query.text[at:slot.start], text]
            at = slot.end
        out.append(query.text[at:])
        return "".join(out)

    def call(self, function: str, arguments: dict[str, Any], caller: Caller, *, timeout: float) -> ToolOutput:
        promql = self.promql(function, arguments)
        budget = max(0.1, min(float(timeout), self.config.timeout))
        at = time.time()
        try:
            resp = self._deps.http.post(
                self.url + QUERY_PATH,
                data={"query": promql, "time": f"{at:.3f}", "timeout": f"{round(budget * 0.9, 3):g}"},
                headers=self._headers(), timeout=budget, allow_redirects=False)
        except requests.Timeout:
            raise ToolTimedOut(f"Prometheus did not answer within {budget:g} s") from None
        except requests.RequestException as exc:
            raise ToolFailed(f"could not reach Prometheus ({type(exc).__name__})", transient=True) from None
        data = self._data(resp)
        link = f"{self.url}/graph?g0.expr={quote(promql, safe='')}"
        return ToolOutput(text=_render(data, at), url=link)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.config.auth is not None:
            token = self._deps.secret(self.config.auth.bearer_env)
            if not token:
                raise ToolFailed(f"the environment variable {self.config.auth.bearer_env} is not set")
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _data(self, resp: requests.Response) -> dict[str, Any]:
        """The ``data`` of a successful answer; ``ToolFailed`` with Prometheus' error otherwise."""
        status = resp.status_code
        if status in (401, 403):
            raise ToolFailed(f"Prometheus refused the credentials ({status})")
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("status") == "error":
            kind, error = str(body.get("errorType") or "error"), str(body.get("error") or "")[:500]
            raise ToolFailed(f"Prometheus {kind}: {error}",
                             transient=status >= 500 or kind in ("timeout", "unavailable"))
        if status >= 300 or not isinstance(body, dict) or body.get("status") != "success":
            raise ToolFailed(f"Prometheus answered {status}" + ("" if isinstance(body, dict) else " without JSON"),
                             transient=status >= 500 or status == 429)
        data = body.get("data")
        if not isinstance(data, dict):
            raise ToolFailed("Prometheus answered without data")
        warnings = body.get("warnings")
        if isinstance(warnings, list) and warnings:
            data = {**data, "_warnings": [str(w) for w in warnings]}
        return data

    def check(self) -> str:
        try:
            resp = self._deps.http.get(self.url + BUILDINFO_PATH, headers=self._headers(), timeout=10,
                                       allow_redirects=False)
        except (requests.RequestException, ToolFailed) as exc:
            raise CheckFailed(f"Prometheus at {self.url}: {exc}", "check url: and that Prometheus is up") from None
        if resp.status_code in (401, 403):
            raise CheckFailed(f"Prometheus at {self.url} refused the credentials ({resp.status_code})",
                              "check auth: bearer_env and the token it names")
        try:
            body = resp.json()
            version = body["data"]["version"]
        except (ValueError, KeyError, TypeError):
            raise CheckFailed(f"{self.url}{BUILDINFO_PATH} answered {resp.status_code} without a build info",
                              "check url: (Prometheus' base URL, without /api/v1)") from None
        return f"Prometheus {version} at {self.url}"


# -- rendering ----------------------------------------------------------------------------------

def _when(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _value(raw: Any) -> str:
    text = str(raw)
    try:
        number = float(text)
    except ValueError:
        return text
    if math.isnan(number) or math.isinf(number):
        return text
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return text if len(text) <= 10 else f"{number:.6g}"


def _labels(metric: Any) -> str:
    labels = dict(metric) if isinstance(metric, dict) else {}
    name = str(labels.pop("__name__", "") or "")
    inner = ", ".join(f'{k}="{_escape(str(v), chr(34))}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def _render(data: dict[str, Any], asked_at: float) -> str:
    kind, result = data.get("resultType"), data.get("result")
    lines: list[str] = []
    at = asked_at
    if kind in ("scalar", "string") and isinstance(result, list) and len(result) == 2:
        at = float(result[0])
        lines.append(f"{kind} = {_value(result[1]) if kind == 'scalar' else repr(str(result[1]))}")
    elif kind in ("vector", "matrix") and isinstance(result, list):
        for series in result[:MAX_SERIES]:
            if not isinstance(series, dict):
                continue
            if kind == "vector":
                stamp, raw = series.get("value") or (asked_at, "")
                at = float(stamp)
                lines.append(f"{_labels(series.get('metric'))} = {_value(raw)}")
            else:
                samples = list(series.get("values") or [])[-MAX_SAMPLES:]
                shown = ", ".join(f"{_value(v)} @ {datetime.fromtimestamp(float(t), timezone.utc):%H:%M:%S}"
                                  for t, v in samples)
                lines.append(f"{_labels(series.get('metric'))} = [{shown}]")
        if len(result) > MAX_SERIES:
            lines.append(f"… and {len(result) - MAX_SERIES} more series")
    else:
        raise ToolFailed(f"Prometheus answered a result of type {kind!r}")
    head = f"evaluated at {_when(at)}"
    body = "\n".join(lines) if lines else "no data (no series matched)"
    warnings = data.get("_warnings") or []
    tail = "".join(f"\nwarning: {w}" for w in warnings)
    return f"{head}\n{body}{tail}"
