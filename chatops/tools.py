"""Read-only tools the model may call for live data: ``tools:`` in ``CHATOPS_CONFIG``.

Each entry names a tool *kind* (a plugin in ``connectors/tools/``) and the kind's own settings;
the keys every kind shares are checked here:

- ``name``: how operators and citations name it (letters, digits, ``-``; the model sees its
  functions as ``<name>__<function>``);
- ``groups``: who may use it (aliases of ``groups:`` or object ids); absent: every known person.
  People of another organisation (Slack Connect) and unknown people never use a tool;
- ``results``: who may see what it returns: ``public`` (anyone allowed to use the tool) or
  ``asker`` (the asker alone: a channel answer that used it goes to the asker privately).
  Default ``asker``.
- ``allow``: the only functions of the tool offered to the model (a kind with fixed functions
  may leave it out).

Every problem is a ``ConfigError`` at start-up naming the tool and the field, e.g.
``tool 'pagerduty': results: Input should be 'public' or 'asker'``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal

from pydantic import BaseModel, ValidationError, field_validator

from chatops.access import Audience, Principal
from chatops.errors import ConfigError, first_problem
from chatops.groups import GroupNames

_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{0,30}$")   # no "_": "__" separates tool and function
SEPARATOR = "__"

Results = Literal["public", "asker"]


class ToolSpec(BaseModel):
    """One ``tools:`` entry. Keys not listed here are the kind's own settings."""

    model_config = {"extra": "allow"}

    name: str
    kind: str
    groups: list[str] | None = None
    results: Results = "asker"
    allow: list[str] | None = None
    title: str | None = None          # how answers cite it ("PagerDuty"); default: the name

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.fullmatch(v):
            raise ValueError("must start with a letter and use only letters, digits and '-' (max 31)")
        return v

    @field_validator("allow")
    @classmethod
    def _allow(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError("must list at least one function (leave it out to offer every one the kind has)")
        return v

    @property
    def kind_settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def label(self) -> str:
        return self.title or self.name


@dataclass(frozen=True)
class ToolPolicy:
    """Who may use one configured tool, and who may see what it returns (group ids, resolved)."""

    name: str
    groups: frozenset[str] | None     # None: every known person
    results: Results

    def may_use(self, person: Principal) -> bool:
        if person.email is None:              # unknown or of another organisation: never
            return False
        return self.groups is None or bool(self.groups & person.groups)

    def shareable_with(self, audience: Audience) -> bool:
        """May every reader of an answer see this tool's results? ``asker`` results: never shared
        (the asker's own answer is made privately); ``public``: every reader may use the tool."""
        if self.results != "public" or audience.public_only or not audience.principals:
            return False
        return all(self.may_use(p) for p in audience.principals)


def load_specs(raw: Iterable[dict[str, Any]], groups: GroupNames,
               known_kinds: Callable[[], Iterable[str]] | None = None) -> list[tuple[ToolSpec, ToolPolicy]]:
    """The ``tools:`` list checked: each entry's shared keys, unique names, group names resolved."""
    out: list[tuple[ToolSpec, ToolPolicy]] = []
    seen: set[str] = set()
    kinds = sorted(known_kinds()) if known_kinds else None
    for i, entry in enumerate(raw):
        label = entry.get("name") if isinstance(entry, dict) else None
        where = f"tool {label!r}" if isinstance(label, str) and label else f"tools[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: must be a mapping with at least name and kind")
        try:
            spec = ToolSpec.model_validate(entry)
        except ValidationError as exc:
            raise ConfigError(f"{where}: {first_problem(exc.errors())}") from None
        if spec.name in seen:
            raise ConfigError(f"{where}: name: another tool has this name")
        seen.add(spec.name)
        if kinds is not None and spec.kind not in kinds:
            raise ConfigError(f"{where}: kind: unknown tool kind {spec.kind!r} (known: {', '.join(kinds)})")
        ids = None if spec.groups is None else frozenset(groups.resolve_all(spec.groups, f"{where}: groups"))
        out.append((spec, ToolPolicy(spec.name, ids, spec.results)))
    return out


def function_name(tool: str, function: str) -> str:
    """What the model calls: ``<tool>__<function>`` (OpenAI's function names: 64 characters)."""
    return f"{tool}{SEPARATOR}{function}"[:64]


def split_function_name(name: str) -> tuple[str, str] | None:
    """``(tool, function)`` of a name the model called, or None when it names no tool."""
    tool, sep, function = name.partition(SEPARATOR)
    return (tool, function) if sep and tool and function else None
