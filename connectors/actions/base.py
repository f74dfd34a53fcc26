"""The action connector interface.

A connector is built once from an action's settings in the catalogue (its
``Config`` model validates them; unknown keys are errors) and then executes
approved proposals. It never decides whether to act: by the time ``execute``
runs, a person allowed to approve has approved, exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar, Protocol

import requests

from chatops.errors import ConfigError


class ConnectorConfigError(ConfigError):
    """An action's connector settings are wrong. ``field`` names the offending key."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ExecutionContext:
    proposal_id: str
    action: str
    requested_by: str          # email of the person who asked
    approved_by: str           # email of the person who approved


@dataclass(frozen=True)
class ExecutionResult:
    ok: bool
    summary: str               # one line for people: "Created OPS-123"
    transient: bool = False    # worth retrying (timeouts, 429, 5xx) if the action is idempotent
    url: str | None = None     # a link to what was created, if any
    external_id: str | None = None
    detail: dict = field(default_factory=dict)  # recorded in the audit trail; never secrets


@dataclass(frozen=True)
class Approvers:
    groups: tuple[str, ...] = ()
    users: tuple[str, ...] = ()   # emails


# Reads a secret by environment variable name (supplied by the settings object).
SecretLookup = Callable[[str], "str | None"]


class ActionConnector(Protocol):
    kind: ClassVar[str]
    idempotent: bool            # a repeat with the same proposal id has no further effect

    def execute(self, arguments: dict, ctx: ExecutionContext) -> ExecutionResult: ...

    def default_approvers(self, arguments: dict) -> Approvers | None:
        """Approvers when the catalogue names none (None: the requester alone)."""
        ...


@dataclass
class ConnectorDeps:
    """What a connector may use: an HTTP session, secrets by name, a timeout."""

    http: requests.Session
    secret: SecretLookup
    timeout: float = 15.0
    extra: dict = field(default_factory=dict)  # e.g. an Entra Graph client
