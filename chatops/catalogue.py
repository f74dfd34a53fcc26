"""The action catalogue: what the model may propose, who may approve, how it runs.

Read from the ``actions:`` list of the CHATOPS_CONFIG file. Every problem is a
``ConfigError`` at start-up that names the action and the field, e.g.
``action 'restart_service': approvers.groups: Input should be a valid list``.
Group names in ``approvers.groups`` and ``requesters`` resolve through the
``groups:`` alias table (chatops/groups.py) once, at load: from then on the
catalogue holds group ids, as people's principals do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, Field, ValidationError, field_validator

from chatops.access import Principal
from chatops.errors import ConfigError, first_problem
from chatops.groups import GroupNames

_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]{0,63}$")  # also a valid OpenAI function name


class ApproverSpec(BaseModel):
    model_config = {"extra": "forbid"}
    groups: list[str] = Field(default_factory=list)
    users: list[str] = Field(default_factory=list)


class ActionSpec(BaseModel):
    """One catalogue entry. Keys not listed here are the connector's settings."""

    model_config = {"extra": "allow"}

    name: str
    description: str
    kind: str
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    approvers: ApproverSpec | None = None
    requesters: list[str] | None = None
    allow_self_approval: bool | None = None
    expires_after: int = Field(default=86400, gt=0)
    idempotent: bool | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.fullmatch(v):
            raise ValueError("must start with a letter and use only letters, digits, '_' or '-' (max 64)")
        return v

    @field_validator("parameters")
    @classmethod
    def _schema(cls, v: dict[str, Any]) -> dict[str, Any]:
        try:
            Draft202012Validator.check_schema(v)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        if v.get("type") != "object":
            raise ValueError("must be a JSON Schema of type 'object'")
        return v

    @property
    def connector_settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


@dataclass(frozen=True)
class ApproverPolicy:
    """Who may approve one proposal, fixed when the proposal is made."""

    groups: tuple[str, ...] = ()
    users: tuple[str, ...] = ()          # emails
    requester_alone: bool = False
    allow_self_approval: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"groups": list(self.groups), "users": list(self.users),
                "requester_alone": self.requester_alone}

    @classmethod
    def from_json(cls, data: dict[str, Any], allow_self_approval: bool) -> "ApproverPolicy":
        return cls(tuple(data.get("groups") or ()), tuple(data.get("users") or ()),
                   bool(data.get("requester_alone")), allow_self_approval)

    def describe(self, label: Callable[[str], str] = str) -> str:
        """``label``: a readable name for a group id (its alias)."""
        if self.requester_alone:
            return "the requester"
        parts = [f"group {label(g)}" for g in self.groups] + list(self.users)
        return ", ".join(parts) if parts else "nobody (no approvers could be determined)"


class Catalogue:
    def __init__(self, specs: list[ActionSpec], connectors: dict[str, Any], groups: GroupNames | None = None):
        self.specs = {s.name: s for s in specs}
        self.connectors = connectors
        self.groups = groups or GroupNames()

    @classmethod
    def empty(cls, groups: GroupNames | None = None) -> "Catalogue":
        return cls([], {}, groups)

    def describe(self, policy: ApproverPolicy) -> str:
        """Who may approve, with groups by their aliases."""
        return policy.describe(self.groups.label)

    @classmethod
    def load(cls, raw_actions: list[dict[str, Any]], build: Callable[[str, dict[str, Any]], Any],
             groups: GroupNames | None = None) -> "Catalogue":
        """The catalogue from its YAML entries. ``build(kind, settings)`` makes an action's
        connector (``connectors.actions.registry``) and raises ConfigError naming a bad key."""
        names = groups or GroupNames()
        specs, connectors = [], {}
        for i, raw in enumerate(raw_actions, 1):
            label = f"action '{raw.get('name')}'" if isinstance(raw, dict) and raw.get("name") else f"action {i}"
            if not isinstance(raw, dict):
                raise ConfigError(f"{label}: must be a mapping")
            try:
                spec = ActionSpec.model_validate(raw)
            except ValidationError as exc:
                raise ConfigError(f"{label}: {first_problem(exc.errors())}") from None
            if spec.name in connectors:
                raise ConfigError(f"{label}: name: defined twice")
            spec = _with_group_ids(spec, names, label)
            try:
                connectors[spec.name] = build(spec.kind, spec.connector_settings)
            except ConfigError as exc:
                raise ConfigError(f"{label}: {exc}") from None
            specs.append(spec)
        return cls(specs, connectors, names)

    # -- what a person may request -------------------------------------------------

    def may_request(self, spec: ActionSpec, person: Principal) -> bool:
        if spec.requesters is None:
            return person.email is not None
        return bool(set(spec.requesters) & person.groups)

    def requestable(self, person: Principal) -> list[ActionSpec]:
        return [s for s in self.specs.values() if self.may_request(s, person)]

    def tools(self, person: Principal) -> list[dict[str, Any]]:
        """OpenAI function-calling tool definitions for what this person may request."""
        return [{"type": "function", "function": {
            "name": s.name, "description": s.description, "parameters": s.parameters}}
            for s in self.requestable(person)]

    # -- validation and approvers --------------------------------------------------

    def argument_errors(self, name: str, arguments: Any) -> list[str]:
        spec = self.specs.get(name)
        if spec is None:
            return [f"there is no action called {name!r}"]
        if not isinstance(arguments, dict):
            return ["the arguments must be an object"]
        validator = Draft202012Validator(spec.parameters)
        errors = []
        for err in sorted(validator.iter_errors(arguments), key=lambda e: list(e.path)):
            where = ".".join(str(p) for p in err.path)
            errors.append(f"{where}: {err.message}" if where else err.message)
        return errors

    def policy(self, name: str, arguments: dict[str, Any]) -> ApproverPolicy:
        spec = self.specs[name]
        if spec.approvers is not None:
            groups, users, alone = tuple(spec.approvers.groups), tuple(u.lower() for u in spec.approvers.users), False
        else:
            default = self.connectors[name].default_approvers(arguments)
            if default is None:
                groups, users, alone = (), (), True
            else:
                groups, users, alone = tuple(default.groups), tuple(u.lower() for u in default.users), False
        allow_self = spec.allow_self_approval if spec.allow_self_approval is not None else alone
        return ApproverPolicy(groups, users, alone, allow_self)

    def idempotent(self, name: str) -> bool:
        spec = self.specs[name]
        return spec.idempotent if spec.idempotent is not None else bool(self.connectors[name].idempotent)


def _with_group_ids(spec: ActionSpec, names: GroupNames, label: str) -> ActionSpec:
    """The spec with its ``requesters`` and ``approvers.groups`` as group ids."""
    update: dict[str, Any] = {}
    if spec.requesters is not None:
        update["requesters"] = list(names.resolve_all(spec.requesters, f"{label}: requesters"))
    if spec.approvers is not None and spec.approvers.groups:
        groups = list(names.resolve_all(spec.approvers.groups, f"{label}: approvers.groups"))
        update["approvers"] = spec.approvers.model_copy(update={"groups": groups})
    return spec.model_copy(update=update) if update else spec
