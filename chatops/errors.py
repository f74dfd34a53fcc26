"""Errors every layer may raise and the application layer turns into one line for people."""

from typing import Any


def first_problem(errors: list[Any]) -> str:
    """``field.path: what is wrong`` of the first of pydantic's ``ValidationError.errors()``: how a
    configuration entry's mistake is named (``action 'x': approvers.groups: Input should be …``)."""
    first = errors[0] if errors else {}
    field = ".".join(str(p) for p in first.get("loc", ())) or "entry"
    return f"{field}: {first.get('msg')}"


class ConfigError(Exception):
    """The configuration is wrong; the message says what and how to fix it."""


class TransientError(Exception):
    """Something outside failed in a way that trying again later may fix (Slack rate-limited us,
    a service answered 5xx). Task runners retry these with back-off."""

    service = "a service"        # who kept failing, as the person who asked is told


# Raised by connectors and caught above them (bot/, console/, the use cases): they live here so
# the Slack and console layers depend on the use cases and the core only.

class IdentityUnavailable(Exception):
    """Who someone is could not be established: the directory (or Slack) could not be reached or
    refused to answer. Callers fail closed."""


class SignInFailed(Exception):
    """A console sign-in did not complete (a stale or forged callback, a refused code, a bad token)."""


class GroupsUnavailable(Exception):
    """The groups of a person signing in could not be established: the console refuses entry."""


class SourceUnavailable(Exception):
    """The source could not be read now (throttled past the bound, down, refused the app).
    The sync stops, records this, and resumes from its cursor next time."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient
