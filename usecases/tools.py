"""Live tools: what is offered to whom, pinned definitions, and one call made for a person.

A configured tool's function is offered to the model for a question only when all of these hold:

- the asker may use the tool (its ``groups``; never someone unknown or of another organisation);
- the operator allowed the function (``allow``) and approved its definition (``chatops tools
  approve``: a hash of name, description, input schema and annotations);
- the definition the server gives now hashes the same as the approved one (a changed description
  or schema disables the function until it is approved again: log line, metric, ``tools status``);
- it is read-only: a function annotated destructive, or not annotated read-only, is never a read
  tool (writes are proposals that a person approves).

Every call is recorded (person, tool, arguments, duration, outcome, result size) and counted.
The bounded loop that asks the model and runs a round of calls is ``usecases/tool_loop.py``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from jsonschema import Draft202012Validator

from chatops import metrics
from chatops.access import Audience, Principal
from chatops.checks import CheckWarning
from chatops.store.tools import ToolRecords
from chatops.tools import ToolPolicy, ToolSpec, function_name
from connectors.tools.base import (Caller, ConnectionNeeded, ResultItem, ToolDefinition, ToolFailed, ToolKind,
                                   ToolOutput, ToolTimedOut)

log = logging.getLogger(__name__)

LISTING_TTL = 60.0      # seconds a server's listing of its functions is reused (CHATOPS_TOOL_LISTING_TTL)


class ToolRefused(Exception):
    """This person may not make this call (their groups, an unapproved or changed function)."""


@dataclass(frozen=True)
class ConfiguredTool:
    spec: ToolSpec
    policy: ToolPolicy
    kind: ToolKind
    per_person: bool = False        # a person's own credential (OAuth): listed with it, or from the pins

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def label(self) -> str:
        return self.spec.label

    def allows(self, function: str) -> bool:
        return self.spec.allow is None or function in self.spec.allow


@dataclass(frozen=True)
class Offer:
    """One function offered to the model: under ``name`` (``<tool>__<function>``)."""

    tool: ConfiguredTool
    definition: ToolDefinition

    @property
    def name(self) -> str:
        return function_name(self.tool.name, self.definition.name)

    def as_openai_tool(self) -> dict[str, Any]:
        schema = self.definition.input_schema or {"type": "object", "properties": {}}
        return {"type": "function", "function": {
            "name": self.name,
            "description": f"[Live data, read-only: {self.tool.label}] {self.definition.description}"[:1024],
            "parameters": schema}}


@dataclass(frozen=True)
class FunctionStatus:
    """What ``chatops tools status`` says about one function."""

    tool: str
    function: str
    state: str          # offered | not_approved | changed | not_read_only | missing | unreachable | not_allowed
    detail: str = ""


@dataclass
class CallResult:
    """One call made: its outcome, what it returned (filtered for the audience), how long it took."""

    tool: ConfiguredTool
    function: str
    arguments: dict[str, Any]
    outcome: str                     # ok | error | timeout | refused | not_connected | skipped
    text: str = ""                   # for the model (items kept, cut to the size limit)
    url: str | None = None
    duration_ms: float = 0.0
    detail: str = ""                 # why it failed, for people
    items_kept: int = 0
    items_dropped: int = 0
    shareable: bool = True           # every reader of the answer may see it
    call_id: int | None = None       # its audit row
    at: float = field(default_factory=time.time)

    @property
    def call_text(self) -> str:
        return self.tool.kind.describe_call(self.function, self.arguments)


_INSTRUCTION = re.compile(r"\b(ignore (all |any |the )?(previous|prior|above)|system prompt|you must|always (call|use)|"
                          r"do not tell|don't tell|instead of|before (answering|responding)|secret|password|token|"
                          r"send (it|them|this|the)|exfiltrat)", re.IGNORECASE)
_LINK = re.compile(r"https?://|www\.", re.IGNORECASE)


def review_warnings(definition: ToolDefinition) -> list[str]:
    """What an operator should read twice before approving: instructions aimed at the model, links,
    and characters a person cannot see, in the description or anywhere in the schema."""
    text = definition.description + " " + str(definition.input_schema)
    warnings = []
    if _INSTRUCTION.search(text):
        warnings.append(f"reads like an instruction to the model: {_INSTRUCTION.search(text).group(0)!r}"  # type: ignore[union-attr]
                        )
    if _LINK.search(text):
        warnings.append("contains a link")
    hidden = sorted({f"U+{ord(ch):04X}" for ch in text
                     if unicodedata.category(ch) in ("Cf", "Co", "Cn") or 0xE0000 <= ord(ch) <= 0xE007F})
    if hidden:
        warnings.append(f"contains invisible characters ({', '.join(hidden[:6])})")
    refusal = definition.not_read_only()
    if refusal:
        warnings.append(f"will not be offered as a read tool: {refusal}")
    return warnings


class Toolbox:
    """The configured tools, their pins, and calls made through them."""

    def __init__(self, tools: Iterable[ConfiguredTool], records: ToolRecords | None, *,
                 timeout: float = 10.0, max_chars: int = 6000, listing_ttl: float = LISTING_TTL,
                 clock: Callable[[], float] = time.monotonic):
        self.tools = {t.name: t for t in tools}
        self.records = records
        self.timeout = timeout
        self.max_chars = max_chars
        self._ttl = listing_ttl
        self._clock = clock
        self._listings: dict[str, tuple[float, dict[str, ToolDefinition]]] = {}
        self._lock = threading.Lock()
        self._drift_logged: set[tuple[str, str, str]] = set()

    def __bool__(self) -> bool:
        return bool(self.tools)

    # -- what a person may use ------------------------------------------------------------

    def usable_by(self, person: Principal) -> list[ConfiguredTool]:
        return [t for t in self.tools.values() if t.policy.may_use(person)]

    def offers(self, person: Principal, caller: Caller | None) -> list[Offer]:
        """The functions offered to the model for this person's question."""
        pins = self._pins()
        out: list[Offer] = []
        for tool in self.usable_by(person):
            live = self._live(tool, caller if tool.per_person else None)
            for function, (fingerprint, pinned) in sorted(pins.get(tool.name, {}).items()):
                if not tool.allows(function):
                    continue
                if live is None:
                    # listed only with a person's credential, which this person has not given yet:
                    # offer the approved definition; the call checks it against the server first
                    if tool.per_person and pinned.not_read_only() is None:
                        out.append(Offer(tool, pinned))
                    continue
                current = live.get(function)
                if current is None or current.not_read_only() is not None:
                    continue
                if current.fingerprint() != fingerprint:
                    self._drifted(tool.name, function, fingerprint)
                    continue
                out.append(Offer(tool, current))
        return out

    # -- operators: review, approve, status -------------------------------------------------

    def review(self, name: str, caller: Caller | None = None) -> list[tuple[ToolDefinition, list[str]]]:
        """The tool's allowed functions as the server describes them now, each with its warnings."""
        tool = self._tool(name)
        listing = self._list(tool, caller, fresh=True)
        return [(d, review_warnings(d)) for f, d in sorted(listing.items()) if tool.allows(f)]

    def approve(self, name: str, approved_by: str | None, caller: Caller | None = None) -> list[ToolDefinition]:
        """Pin the allowed functions' current definitions (what ``review`` showed)."""
        if self.records is None:
            raise ToolFailed("no database to record approvals in")
        tool = self._tool(name)
        definitions = [d for d, _w in self.review(name, caller)]
        missing = sorted(set(tool.spec.allow or ()) - {d.name for d in definitions})
        if missing:
            raise ToolFailed(f"the server has no function named {', '.join(missing)} (check allow: of tool {name!r})")
        self.records.pin(name, {d.name: (d.fingerprint(), d.as_json()) for d in definitions}, approved_by)
        with self._lock:
            self._drift_logged = {k for k in self._drift_logged if k[0] != name}
        return definitions

    def status(self, caller: Caller | None = None) -> list[FunctionStatus]:
        pins = self._pins()
        out: list[FunctionStatus] = []
        for tool in self.tools.values():
            try:
                live: dict[str, ToolDefinition] | None = (
                    None if tool.per_person and caller is None      # listed only with a person's account
                    else self._list(tool, caller if tool.per_person else None, fresh=True))
            except ConnectionNeeded:
                live = None
            except ToolFailed as exc:
                out.append(FunctionStatus(tool.name, "*", "unreachable", str(exc)))
                continue
            names = set(pins.get(tool.name, {})) | set(live or {}) | set(tool.spec.allow or ())
            for function in sorted(names):
                if not tool.allows(function):
                    continue
                pinned = pins.get(tool.name, {}).get(function)
                current = None if live is None else live.get(function)
                if pinned is None:
                    out.append(FunctionStatus(tool.name, function, "not_approved",
                                              f"run: chatops tools review {tool.name}, then approve"))
                elif live is not None and current is None:
                    out.append(FunctionStatus(tool.name, function, "missing", "the server no longer lists it"))
                elif current is not None and current.fingerprint() != pinned[0]:
                    out.append(FunctionStatus(tool.name, function, "changed",
                                              "its definition changed since it was approved; review and approve again"))
                elif (current or pinned[1]).not_read_only():
                    out.append(FunctionStatus(tool.name, function, "not_read_only",
                                              str((current or pinned[1]).not_read_only())))
                else:
                    out.append(FunctionStatus(tool.name, function, "offered",
                                              "" if current is not None else "checked at each call (per-person)"))
        return out

    def check(self, name: str) -> str:
        """``chatops doctor`` for one tool: the kind's own check (its server answers), then whether
        its functions are offered: not approved yet or changed since approval is a warning."""
        tool = self._tool(name)
        found = tool.kind.check()          # CheckFailed from the kind
        states = [f for f in self.status() if f.tool == name]
        changed = [f.function for f in states if f.state in ("changed", "missing")]
        waiting = [f.function for f in states if f.state == "not_approved"]
        if changed:
            raise CheckWarning(f"{found}; changed since approval, so not offered: {', '.join(changed)}",
                               f"chatops tools review {name}, then chatops tools approve {name}")
        if waiting:
            raise CheckWarning(f"{found}; not approved yet, so not offered: {', '.join(waiting)}",
                               f"chatops tools review {name}, then chatops tools approve {name}")
        offered = [f.function for f in states if f.state == "offered"]
        return f"{found}; offered: {', '.join(offered) or 'none'}"

    # -- calls ------------------------------------------------------------------------------

    def call(self, offer: Offer, arguments: dict[str, Any], caller: Caller, audience: Audience, *,
             timeout: float | None = None, correlation_id: str | None = None,
             claim: Callable[[], bool] | None = None) -> CallResult:
        """One call for ``caller``, its result filtered for ``audience``, recorded and counted.
        ``claim``: asked before recording; False means the caller gave up on this call (timed out)
        and recorded it already."""
        tool, definition = offer.tool, offer.definition
        result = CallResult(tool, definition.name, arguments, "ok")
        started = time.perf_counter()
        try:
            schema = definition.input_schema or {}
            problems = sorted(e.message for e in Draft202012Validator(schema).iter_errors(arguments))
            # Only declared parameters are ever sent, whatever the schema allows: an argument the
            # definition does not name is a way to carry what the model read to the tool's server.
            undeclared = sorted(set(arguments) - set(schema.get("properties") or {}))
            if undeclared:
                problems.append(f"undeclared argument(s): {', '.join(undeclared)}")
            if problems:
                raise ToolFailed("invalid arguments: " + "; ".join(problems)[:300])
            if tool.per_person:
                self._check_live(tool, definition, caller)
            output = tool.kind.call(definition.name, arguments, caller, timeout=timeout or self.timeout)
            self._fill(result, output, audience, caller)
        except ConnectionNeeded:
            result.outcome, result.detail = "not_connected", f"{caller.email} has not connected {tool.label}"
        except ToolTimedOut as exc:
            result.outcome, result.detail = "timeout", str(exc)
        except ToolFailed as exc:
            result.outcome, result.detail = "error", str(exc)
        except Exception as exc:  # noqa: BLE001 - a kind's bug is that call's failure, not the answer's
            log.exception("tool call failed unexpectedly", extra={"tool": tool.name, "function": definition.name})
            result.outcome, result.detail = "error", type(exc).__name__
        result.duration_ms = (time.perf_counter() - started) * 1000
        if claim is None or claim():
            self.record(result, caller, correlation_id)
        else:
            log.info("a tool call finished after its timeout; its result was not used",
                     extra={"tool": tool.name, "function": definition.name, "outcome": result.outcome,
                            "duration_ms": round(result.duration_ms, 1)})
        return result

    def record(self, result: CallResult, caller: Caller, correlation_id: str | None) -> None:
        """The call's audit row, metric and log line (also for calls that never ran: timeouts, skips)."""
        metrics.TOOL_CALLS.labels(tool=result.tool.name, outcome=result.outcome).inc()
        metrics.TOOL_SECONDS.labels(tool=result.tool.name).observe(result.duration_ms / 1000)
        # a refusal is the rules at work (info); a failure is the operator's to look at (warning)
        (log.info if result.outcome in ("ok", "refused") else log.warning)(f"tool call {result.outcome}", extra={
            "tool": result.tool.name, "function": result.function, "outcome": result.outcome,
            "duration_ms": round(result.duration_ms, 1), "result_chars": len(result.text),
            "detail": result.detail or None})
        if self.records is None:
            return
        try:
            result.call_id = self.records.record_call(
                tool=result.tool.name, function=result.function, arguments=result.arguments, outcome=result.outcome,
                duration_ms=round(result.duration_ms, 2), result_chars=len(result.text), person_email=caller.email,
                person_slack_id=caller.slack_user_id, correlation_id=correlation_id, detail=result.detail or None)
        except Exception:  # noqa: BLE001 - the answer goes on; the audit gap must be loud
            log.exception("could not write the tool call to the audit trail")

    def call_as(self, name: str, function: str, arguments: dict[str, Any], person: Principal, *,
                correlation_id: str | None = None) -> CallResult:
        """``chatops tools call``: one call for this person, under the same rules as an answer's
        (their groups, the pins, read-only), its result filtered for them alone. A refusal is
        recorded too, and raised as ``ToolRefused``."""
        tool = self._tool(name)
        caller = caller_of(person) if person.email else Caller("unknown", "unknown")
        why = None
        if not tool.policy.may_use(person):
            why = f"{person.email or 'this person'} may not use the tool {name!r} (not in its groups)"
        elif not tool.allows(function):
            why = f"{function!r} is not in allow: of the tool {name!r}"
        offer = None
        if why is None:
            offer = next((o for o in self.offers(person, caller) if o.tool.name == name and o.definition.name == function),
                         None)
            if offer is None:
                state = next((f for f in self.status(caller) if f.tool == name and f.function in (function, "*")), None)
                why = (f"{name} {function} is not offered: {state.state.replace('_', ' ')}"
                       f"{' (' + state.detail + ')' if state and state.detail else ''}" if state
                       else f"the tool {name!r} has no function {function!r}")
        if why is not None or offer is None:
            refused = CallResult(tool, function, arguments, "refused", detail=why or "refused")
            self.record(refused, caller, correlation_id)
            raise ToolRefused(refused.detail)
        return self.call(offer, arguments, caller, Audience.of(person), correlation_id=correlation_id)

    # -- internals --------------------------------------------------------------------------

    def _fill(self, result: CallResult, output: ToolOutput, audience: Audience, caller: Caller) -> None:
        result.url = output.url
        if output.items:
            kept = [i for i in output.items if audience.may_use(i.acl, i.source)]
            result.items_kept, result.items_dropped = len(kept), len(output.items) - len(kept)
            text = _items_text(kept, result.items_dropped)
            # each item was filtered for this audience: whoever reads the answer may see them
            result.shareable = True
        else:
            text = output.text
            alone = (not audience.public_only and len(audience.principals) == 1
                     and audience.principals[0].email == caller.email)
            result.shareable = alone or result.tool.policy.shareable_with(audience)
        if output.is_error:
            result.outcome, result.detail = "error", text[:200]
        if len(text) > self.max_chars:
            text = text[: self.max_chars] + f"\n… [cut: {len(text) - self.max_chars} more characters]"
        result.text = text

    def _check_live(self, tool: ConfiguredTool, definition: ToolDefinition, caller: Caller) -> None:
        """A per-person tool is listed with the person's own credential just before it is called:
        the function must still be what the operator approved."""
        current = self._list(tool, caller).get(definition.name)    # ConnectionNeeded: not connected yet
        if current is None or current.fingerprint() != definition.fingerprint():
            self._drifted(tool.name, definition.name, definition.fingerprint())
            raise ToolFailed("its definition changed since an operator approved it")

    def _live(self, tool: ConfiguredTool, caller: Caller | None) -> dict[str, ToolDefinition] | None:
        """The server's functions now (cached a few minutes), or None when they cannot be listed."""
        try:
            return self._list(tool, caller)
        except ConnectionNeeded:
            return None
        except ToolFailed as exc:
            log.warning("could not list a tool's functions; it is not offered",
                        extra={"tool": tool.name, "error": str(exc)})
            return {}

    def _list(self, tool: ConfiguredTool, caller: Caller | None, *, fresh: bool = False) -> dict[str, ToolDefinition]:
        key = tool.name
        now = self._clock()
        with self._lock:
            cached = self._listings.get(key)
        if cached is not None and not fresh and now - cached[0] < self._ttl:
            return cached[1]
        listing = {d.name: d for d in tool.kind.definitions(caller)}
        with self._lock:
            self._listings[key] = (now, listing)
        return listing

    def _pins(self) -> dict[str, dict[str, tuple[str, ToolDefinition]]]:
        if self.records is None:
            return {}
        out: dict[str, dict[str, tuple[str, ToolDefinition]]] = {}
        for pin in self.records.pins():
            out.setdefault(pin.tool, {})[pin.function] = (pin.fingerprint, ToolDefinition.from_json(pin.definition))
        return out

    def _drifted(self, tool: str, function: str, fingerprint: str) -> None:
        metrics.TOOL_DEFINITION_CHANGES.labels(tool=tool).inc()
        key = (tool, function, fingerprint)
        with self._lock:
            first = key not in self._drift_logged
            self._drift_logged.add(key)
        if first:
            log.error("a tool's definition changed since it was approved; it is not offered until approved again",
                      extra={"tool": tool, "function": function,
                             "fix": f"chatops tools review {tool}, then chatops tools approve {tool}"})

    def _tool(self, name: str) -> ConfiguredTool:
        tool = self.tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self.tools)) or "none configured"
            raise ToolFailed(f"no tool named {name!r} (configured: {known})")
        return tool


def _items_text(items: list[ResultItem], dropped: int) -> str:
    if not items:
        return "No results that the readers of this answer may see."
    # how many were dropped is not said: that alone tells readers that such records exist
    return "\n".join(i.text for i in items)


def caller_of(person: Principal) -> Caller:
    """The person a call is made for, by their stable id (the directory's object id where known)."""
    if person.email is None:
        raise ValueError("tools are never used for an unknown person")
    person_id = person.object_id or f"email:{person.email}"
    return Caller(person_id=person_id, email=person.email, slack_user_id=person.slack_user_id)
