"""Add a person to a Microsoft Entra ID group: the classic access request.

Only groups listed in the catalogue's ``groups`` (a name people and the model
see -> the group's object id) can be granted. Through Microsoft Graph with an
app-only token (the app needs ``GroupMember.ReadWrite.All`` and
``User.Read.All``):

* ``GET /users/{email}`` (or by ``mail`` for guests) -> the user's id,
* ``POST /groups/{group-id}/members/$ref`` -> 204. Graph's 400 "One or more
  added object references already exist" means the person already is a member,
  which counts as done; so a repeat is harmless (``idempotent = True``).

When the catalogue names no approvers, the group's owners
(``GET /groups/{group-id}/owners``) approve; if they cannot be read, nobody
can (fail closed).

Tests may put a ``sleep`` callable in ``ConnectorDeps.extra`` to skip back-off waits.
"""

from __future__ import annotations

import logging
import time
from typing import ClassVar, Self
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chatops.checks import CheckFailed
from connectors.actions._common import Scrubber, bad_arguments, check_base_url, parse_config, require_secret
from connectors.actions.base import Approvers, ConnectorDeps, ExecutionContext, ExecutionResult
from connectors.microsoft.app_roles import GROUP_MEMBERSHIP, check_graph_roles
from connectors.microsoft.graph import GraphClient, GraphError, GraphNotFound

log = logging.getLogger(__name__)

TARGET = "Entra"
_ALREADY_MEMBER = "already exist"  # "One or more added object references already exist for ..."


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    client_secret_env: str = Field(min_length=1)
    authority_host: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com/v1.0"
    instance_discovery: bool = True   # False for an authority host msal does not know
    groups: dict[str, str] = Field(min_length=1)  # name shown to people -> Entra group object id
    timeout: float | None = Field(default=None, gt=0)

    @field_validator("authority_host", "graph_url")
    @classmethod
    def _urls(cls, value: str) -> str:
        return check_base_url(value)

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: dict[str, str]) -> dict[str, str]:
        folded: set[str] = set()
        for name, group_id in value.items():
            if not name.strip() or not group_id.strip():
                raise ValueError("group names and ids must not be empty")
            if name.strip().casefold() in folded:
                raise ValueError(f"group name {name!r} is listed twice (names are case-insensitive)")
            folded.add(name.strip().casefold())
        return {name.strip(): group_id.strip() for name, group_id in value.items()}


class EntraGroupConnector:
    kind: ClassVar[str] = "entra_group"
    idempotent: bool = True

    def __init__(self, config: Config, deps: ConnectorDeps):
        self.config = config
        secret = require_secret(deps, "client_secret_env", config.client_secret_env)
        self._scrub = Scrubber([secret])
        self._graph = GraphClient(
            config.tenant_id, config.client_id, secret,
            authority_host=config.authority_host, graph_url=config.graph_url, http_client=deps.http,
            instance_discovery=config.instance_discovery,
            max_attempts=3, timeout=config.timeout if config.timeout is not None else deps.timeout,
            sleep=deps.extra.get("sleep", time.sleep),
        )

    @classmethod
    def from_settings(cls, settings: dict, deps: ConnectorDeps) -> Self:
        return cls(parse_config(Config, settings), deps)

    # -- approvers ----------------------------------------------------------

    def default_approvers(self, arguments: dict) -> Approvers | None:
        """The group's owners (their emails); ``Approvers()`` (nobody) if they cannot be read."""
        found = self._group(arguments.get("group"))
        if found is None:
            log.warning("no default approvers: unknown group", extra={"group": str(arguments.get("group"))[:100]})
            return Approvers()
        name, group_id = found
        try:
            owners = self._graph.get_all(f"/groups/{quote(group_id, safe='')}/owners?$select=mail,userPrincipalName")
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, nobody may approve
            log.warning("group owners could not be read; nobody may approve",
                        extra={"group": name, "error": self._scrub(str(exc) or type(exc).__name__)})
            return Approvers()
        emails: list[str] = []
        for owner in owners:
            email = _owner_email(owner)
            if email and email not in emails:
                emails.append(email)
        if not emails:
            log.warning("group has no owner with an email; nobody may approve", extra={"group": name})
        return Approvers(users=tuple(emails))

    # -- chatops doctor -----------------------------------------------------

    def check(self) -> str:
        """The app's token may change group membership, and each configured group exists."""
        roles = check_graph_roles(self._graph, list(GROUP_MEMBERSHIP))
        for name, group_id in self.config.groups.items():
            try:
                self._graph.get(f"/groups/{quote(group_id, safe='')}?$select=id")
            except GraphNotFound:
                raise CheckFailed(f"group {name} ({group_id}) does not exist in the tenant",
                                  "fix its object id under groups:") from None
            except GraphError as exc:
                raise CheckFailed(f"group {name} could not be read: {self._scrub(str(exc))}",
                                  "see the app's permissions") from None
        return f"{roles.split(';')[0]}; {len(self.config.groups)} group(s) found"

    # -- execute ------------------------------------------------------------

    def execute(self, arguments: dict, ctx: ExecutionContext) -> ExecutionResult:
        email = arguments.get("user")
        if not isinstance(email, str) or "@" not in email.strip():
            return bad_arguments("user must be an email address")
        email = email.strip()
        found = self._group(arguments.get("group"))
        if found is None:
            return bad_arguments(f"group must be one of: {', '.join(self.config.groups)}")
        name, group_id = found
        detail = {"group": name, "group_id": group_id, "user": email}
        try:
            user = self._graph.find_user(email, select="id,mail,userPrincipalName")
        except GraphError as exc:
            return self._failure(exc, f"Could not look up {email} in Entra", detail)
        if not user or not user.get("id"):
            return ExecutionResult(ok=False, transient=False, summary=f"Entra has no user {email}",
                                   detail={**detail, "error": "unknown_user"})
        detail["user_id"] = str(user["id"])
        ref = {"@odata.id": f"{self._graph.base_url}/directoryObjects/{quote(str(user['id']), safe='')}"}
        try:
            self._graph.post(f"/groups/{quote(group_id, safe='')}/members/$ref", ref)
        except GraphNotFound as exc:
            return self._failure(exc, f"Could not add {email} to {name}: the group or user no longer exists",
                                 detail)
        except GraphError as exc:
            if exc.status == 400 and _ALREADY_MEMBER in (exc.graph_message or "").lower():
                return ExecutionResult(ok=True, summary=f"{email} is already a member of {name}",
                                       detail={**detail, "already_member": True})
            return self._failure(exc, f"Could not add {email} to {name}", detail)
        return ExecutionResult(ok=True, summary=f"Added {email} to {name}",
                               detail={**detail, "already_member": False})

    # -- internals ----------------------------------------------------------

    def _group(self, name) -> tuple[str, str] | None:
        """(configured name, group id) for a name, matched exactly or case-insensitively."""
        if not isinstance(name, str):
            return None
        name = name.strip()
        if name in self.config.groups:
            return name, self.config.groups[name]
        for configured, group_id in self.config.groups.items():
            if configured.casefold() == name.casefold():
                return configured, group_id
        return None

    def _failure(self, exc: GraphError, what: str, detail: dict) -> ExecutionResult:
        reason = self._scrub(str(exc))
        if exc.graph_message:
            reason += f": {self._scrub(exc.graph_message)}"
        log.warning("entra group action failed", extra={"status": exc.status, "transient": exc.transient,
                                                        "group": detail.get("group")})
        extra = {k: v for k, v in (("status", exc.status), ("code", exc.code)) if v is not None}
        return ExecutionResult(ok=False, transient=exc.transient, summary=f"{what} ({reason})",
                               detail={**detail, **extra, "reason": reason})


def _owner_email(owner: dict) -> str | None:
    """An owner's email: ``mail``, else a UPN that looks like one (not a guest's #EXT# UPN)."""
    mail = owner.get("mail")
    if isinstance(mail, str) and "@" in mail:
        return mail.strip().lower()
    upn = owner.get("userPrincipalName")
    if isinstance(upn, str) and "@" in upn and "#EXT#" not in upn.upper():
        return upn.strip().lower()
    return None
