"""Checking a deployment against the live services (``chatops doctor``): what one check found.

A check is a function that looks at one part (a token, a service, a source) with one cheap call
and returns what it found, in a few words; or raises :class:`CheckFailed` (something is wrong:
what, and what to do), :class:`CheckWarning` (works, but not as it should) or
:class:`NotConfigured` (the part is not set up here, which is not a fault). Plugins (sources,
action connectors, the language model, identity providers) offer such checks of themselves;
``usecases/doctor.py`` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["ok", "warn", "fail", "skip"]


class CheckFailed(Exception):
    """What is wrong (the message) and what to do (``fix``)."""

    def __init__(self, message: str, fix: str = ""):
        super().__init__(message)
        self.fix = fix


class CheckWarning(CheckFailed):
    """It works, but not as it should."""


class NotConfigured(Exception):
    """The part is not set up in this deployment (the message says what would set it up)."""


@dataclass(frozen=True)
class Result:
    name: str
    status: Status
    detail: str
    fix: str = ""
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"check": self.name, "status": self.status, "detail": self.detail, "fix": self.fix,
                "seconds": round(self.seconds, 3)}
