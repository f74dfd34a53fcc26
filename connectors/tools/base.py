"""The tool kind interface: read-only live data the model may ask for.

A kind is built once per ``tools:`` entry (``from_config(spec, deps)``; its settings are the
entry's keys beyond the shared ones, checked by the kind, errors naming the key) and then
lists its functions and calls one for a person. It never decides who may call it: the use case
(``usecases/tools.py``) has already checked the person against the tool's ``groups``, the
definition against the operator's pin, and the arguments against the definition's schema.

Errors: ``ToolFailed`` (the call did not give a result; ``transient`` when trying later may
help; ``ToolTimedOut`` when the timeout ran out), ``ConnectionNeeded`` (a per-person credential is missing or was refused: the person must
connect the tool first). A timeout is the use case's: a kind only honours the ``timeout`` given.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Protocol

import requests

from chatops.access import Acl
from chatops.errors import ConfigError
from chatops.tools import ToolSpec


class ToolConfigError(ConfigError):
    """A tool's kind settings are wrong. ``field`` names the offending key."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ToolFailed(Exception):
    """The call gave no result: the message says why, in a few words for people."""

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient


class ToolTimedOut(ToolFailed):
    """The tool did not answer within the call's timeout."""

    def __init__(self, message: str):
        super().__init__(message, transient=True)


class ConnectionNeeded(Exception):
    """The person has no usable credential for this tool (never connected, revoked, refresh
    refused): they must connect it first."""

    def __init__(self, tool: str, message: str = "not connected"):
        super().__init__(message)
        self.tool = tool


@dataclass(frozen=True)
class ToolDefinition:
    """One function of a tool as its server describes it (MCP's ``Tool``: name, description,
    input schema, annotations)."""

    name: str
    description: str
    input_schema: dict[str, Any]
    annotations: dict[str, Any] | None = None

    def fingerprint(self) -> str:
        """What ``chatops tools approve`` pins: a hash of name, description, schema and annotations."""
        canonical = json.dumps({"name": self.name, "description": self.description,
                                "input_schema": self.input_schema, "annotations": self.annotations},
                               sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def not_read_only(self) -> str | None:
        """Why this function may not be used as a read tool, or None. MCP's annotations are hints
        a server gives: a function must say it is read-only and must not say it is destructive."""
        notes = self.annotations or {}
        if notes.get("destructiveHint") is True:
            return "annotated as destructive"
        if notes.get("readOnlyHint") is not True:
            return "not annotated as read-only (readOnlyHint)"
        return None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "input_schema": self.input_schema,
                "annotations": self.annotations}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ToolDefinition":
        return cls(str(data["name"]), str(data.get("description") or ""), dict(data.get("input_schema") or {}),
                   data.get("annotations"))


@dataclass(frozen=True)
class Caller:
    """The person a call is made for: their stable id (the directory's object id where it has one),
    email and Slack id. A per-person credential is looked up by ``person_id`` only."""

    person_id: str
    email: str
    slack_user_id: str | None = None


@dataclass(frozen=True)
class ResultItem:
    """One record of a result that carries its own permissions (a Jira issue): the use case keeps
    only the items the answer's audience may see (``acl`` read as a synced document's, of
    ``source``, the index source id)."""

    text: str
    acl: Acl
    source: str
    title: str = ""
    url: str | None = None


@dataclass(frozen=True)
class ToolOutput:
    """What a call returned: ``text`` for the model, or ``items`` (each filtered by permission; the
    text is then made of the items kept), and a link to the live view where there is one."""

    text: str = ""
    items: tuple[ResultItem, ...] = ()
    url: str | None = None
    is_error: bool = False      # the tool answered, with an error (MCP's isError): shown as such


# Reads a secret by environment variable name (supplied by the settings object).
SecretLookup = Callable[[str], "str | None"]


class TokenSource(Protocol):
    """A person's credential for a tool with per-person authorization (``usecases/tool_auth.py``)."""

    def access_token(self, tool: str, caller: Caller) -> str:
        """A valid access token (refreshed when needed). Raises ``ConnectionNeeded``."""
        ...


@dataclass
class ToolDeps:
    """What a kind may use: an HTTP session, secrets by name, the source opener (a kind that reads
    through a configured source's account), and per-person tokens."""

    http: requests.Session
    secret: SecretLookup
    open_source: Callable[[str], Any] | None = None      # a source's name -> its opened connector
    source_id: Callable[[str], str] | None = None        # a source's name -> its index source id
    tokens: TokenSource | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class ToolKind(Protocol):
    kind: ClassVar[str]
    name: str                         # the configured tool's name

    def definitions(self, caller: Caller | None) -> list[ToolDefinition]:
        """The functions the tool has now, as its server describes them. ``caller``: whose
        credential to list with (a per-person tool); None: the service credential. Raises
        ``ToolFailed`` / ``ConnectionNeeded``."""
        ...

    def call(self, function: str, arguments: dict[str, Any], caller: Caller, *, timeout: float) -> ToolOutput:
        """One call for ``caller``. Raises ``ToolFailed`` / ``ConnectionNeeded``."""
        ...

    def describe_call(self, function: str, arguments: dict[str, Any]) -> str:
        """How a citation names the call: ``get_oncall(service=billing)``."""
        ...

    def check(self) -> str:
        """``chatops doctor``: one cheap call; a few words, or ``CheckFailed``."""
        ...


def describe_call(function: str, arguments: dict[str, Any], limit: int = 80) -> str:
    """``function(key=value, ...)``, cut at ``limit`` characters: the usual way to name a call."""
    args = ", ".join(f"{k}={v if isinstance(v, (str, int, float, bool)) else json.dumps(v)}"
                     for k, v in arguments.items())
    text = f"{function}({args})"
    return text if len(text) <= limit else text[: limit - 2] + "…)"


def build_spec(spec: ToolSpec) -> dict[str, Any]:
    """The kind's own settings of a spec (for kinds' ``Config`` models)."""
    return spec.kind_settings
