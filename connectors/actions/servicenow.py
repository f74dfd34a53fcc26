"""Open a ServiceNow incident (Table API, ``POST /api/now/table/incident``).

Basic auth with an integration user (password from the environment variable
named by ``password_env``). The Table API has no idempotency key, so a repeat
would open a second incident: ``idempotent = False``.

Arguments: ``short_description`` (required), ``description`` (optional),
``urgency`` and ``impact`` (optional, "1" high .. "3" low). With
``set_caller: true`` the requester's email is sent as ``caller_id``; the
instance must resolve that to a ``sys_user`` (ServiceNow looks reference values
up by sys_id, then display value), otherwise leave it off.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import requests
from pydantic import BaseModel, ConfigDict, Field, field_validator

from chatops.checks import CheckFailed
from connectors.actions._common import (Scrubber, SecretHttpConnector, bad_arguments, body_text, check_base_url, checked_get,
                                        json_body,
                                        status_failure, transport_failure)
from connectors.actions.base import ExecutionContext, ExecutionResult

TARGET = "ServiceNow"
_LEVELS = ("1", "2", "3")


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    instance_url: str                 # https://acme.service-now.com
    username: str = Field(min_length=1)
    password_env: str = Field(min_length=1)
    set_caller: bool = False
    timeout: float | None = Field(default=None, gt=0)

    @field_validator("instance_url")
    @classmethod
    def _instance_url(cls, value: str) -> str:
        return check_base_url(value)


class ServiceNowConnector(SecretHttpConnector):
    kind: ClassVar[str] = "servicenow"
    idempotent: bool = False
    config_model: ClassVar[type] = Config
    secret_field: ClassVar[str] = "password_env"

    def build_record(self, arguments: dict, ctx: ExecutionContext) -> dict | str:
        """The incident record to create, or what is wrong with the arguments."""
        short = arguments.get("short_description")
        if not isinstance(short, str) or not short.strip():
            return "short_description is required"
        record: dict[str, Any] = {"short_description": short.strip()}
        description = arguments.get("description")
        if description is not None:
            if not isinstance(description, str):
                return "description must be text"
            record["description"] = description
        for name in ("urgency", "impact"):
            value = arguments.get(name)
            if value is None:
                continue
            value = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
            if value not in _LEVELS:
                return f"{name} must be \"1\", \"2\" or \"3\""
            record[name] = value
        if self.config.set_caller and ctx.requested_by:
            record["caller_id"] = ctx.requested_by
        return record

    def check(self) -> str:
        """``chatops doctor``: the account signs in to the instance's Table API (one incident read)."""
        password = self._deps.secret(self.config.password_env) or ""
        resp = checked_get(self._deps, TARGET,
                           f"{self.config.instance_url}/api/now/table/incident?sysparm_limit=1&sysparm_fields=sys_id",
                           auth=(self.config.username, password), timeout=self._timeout, scrub=Scrubber([password]))
        if resp.status_code != 200:
            raise CheckFailed(f"ServiceNow answered {resp.status_code} to the incident table", "check instance_url")
        return f"{self.config.username} signs in to {urlsplit(self.config.instance_url).hostname}"

    def execute(self, arguments: dict, ctx: ExecutionContext) -> ExecutionResult:
        record = self.build_record(arguments, ctx)
        if isinstance(record, str):
            return bad_arguments(record)
        password = self._deps.secret(self.config.password_env)
        if not password:
            return ExecutionResult(ok=False, transient=False,
                                   summary=f"Not run: the ServiceNow password ({self.config.password_env}) is not set",
                                   detail={"error": "secret_missing", "secret_env": self.config.password_env})
        scrub = Scrubber([password])
        try:
            resp = self._deps.http.post(
                f"{self.config.instance_url}/api/now/table/incident",
                json=record,
                auth=(self.config.username, password),
                headers={"Accept": "application/json", "Content-Type": "application/json"},
                timeout=self._timeout, allow_redirects=False)
        except requests.RequestException as exc:
            return transport_failure(exc, TARGET, self._timeout, outcome_unknown=True)
        if 200 <= resp.status_code < 300:
            data = json_body(resp)
            result = data.get("result") if isinstance(data, dict) else None
            result = result if isinstance(result, dict) else {}
            number, sys_id = result.get("number"), result.get("sys_id")
            if not number or not sys_id:
                return ExecutionResult(ok=True, summary="Opened a ServiceNow incident (ServiceNow did not say which)",
                                       detail={"status": resp.status_code})
            return ExecutionResult(
                ok=True, summary=f"Created {number}", external_id=str(number),
                url=f"{self.config.instance_url}/nav_to.do?uri=incident.do?sys_id={quote(str(sys_id), safe='')}",
                detail={"status": resp.status_code, "number": str(number), "sys_id": str(sys_id)})
        return status_failure(resp, TARGET, "the incident", _servicenow_reason(resp), scrub)


def _servicenow_reason(resp: requests.Response) -> str:
    """ServiceNow's ``{"error": {"message", "detail"}, "status": "failure"}`` as one line."""
    if 300 <= resp.status_code < 400:
        return "redirects are not followed"
    data = json_body(resp)
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        parts = [str(err[k]) for k in ("message", "detail") if err.get(k)]
        if parts:
            return ": ".join(parts)
    return body_text(resp)
