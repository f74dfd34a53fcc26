"""Create a Jira Cloud issue (REST API v3, ``POST /rest/api/3/issue``).

Basic auth with the account's email and an API token (from the environment
variable named by ``token_env``). The description is sent as an Atlassian
Document Format document, which v3 requires. Jira has no idempotency key, so
a repeat would create a second issue: ``idempotent = False``.

Arguments: ``summary`` (required), ``description`` (optional text),
``labels`` (optional list of strings; Jira refuses labels with spaces).
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

import requests
from pydantic import BaseModel, ConfigDict, Field, field_validator

from chatops.checks import CheckFailed
from connectors.actions._common import (Scrubber, SecretHttpConnector, bad_arguments, body_text, check_base_url, checked_get,
                                        json_body,
                                        status_failure, transport_failure)
from connectors.actions.base import ExecutionContext, ExecutionResult
from connectors.atlassian.adf import adf_document

TARGET = "Jira"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str                     # https://acme.atlassian.net
    email: str = Field(min_length=3)  # the account the API token belongs to
    token_env: str = Field(min_length=1)
    project_key: str = Field(min_length=1)
    issue_type: str = Field(default="Task", min_length=1)
    timeout: float | None = Field(default=None, gt=0)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return check_base_url(value)


class JiraConnector(SecretHttpConnector):
    kind: ClassVar[str] = "jira"
    idempotent: bool = False
    config_model: ClassVar[type] = Config
    secret_field: ClassVar[str] = "token_env"

    def build_fields(self, arguments: dict) -> dict | str:
        """The issue's ``fields``, or what is wrong with the arguments."""
        summary = arguments.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            return "summary is required"
        description = arguments.get("description")
        if description is not None and not isinstance(description, str):
            return "description must be text"
        labels = arguments.get("labels")
        if labels is not None and (not isinstance(labels, list) or not all(isinstance(x, str) for x in labels)):
            return "labels must be a list of strings"
        fields: dict[str, Any] = {
            "project": {"key": self.config.project_key},
            "summary": summary.strip(),
            "issuetype": {"name": self.config.issue_type},
        }
        if description and description.strip():
            fields["description"] = adf_document(description)
        if labels:
            fields["labels"] = list(labels)
        return fields

    def check(self) -> str:
        """``chatops doctor``: the account signs in, and the project issues are created in exists for it."""
        token = self._deps.secret(self.config.token_env) or ""
        auth, base = (self.config.email, token), self.config.base_url
        me = checked_get(self._deps, TARGET, f"{base}/rest/api/3/myself", auth=auth, timeout=self._timeout,
                         scrub=Scrubber([token]))
        if me.status_code != 200:
            raise CheckFailed(f"Jira answered {me.status_code} to /myself", "check base_url")
        project = checked_get(self._deps, TARGET, f"{base}/rest/api/3/project/{quote(self.config.project_key)}",
                              auth=auth, timeout=self._timeout, scrub=Scrubber([token]))
        if project.status_code == 404:
            raise CheckFailed(f"no project {self.config.project_key} on {base} (or {self.config.email} cannot browse it)",
                              "fix project_key, or give the account Browse and Create issues in it")
        if project.status_code != 200:
            raise CheckFailed(f"Jira answered {project.status_code} to /project/{self.config.project_key}",
                              "check base_url")
        return f"{self.config.email} signs in; project {self.config.project_key} found"

    def execute(self, arguments: dict, ctx: ExecutionContext) -> ExecutionResult:
        fields = self.build_fields(arguments)
        if isinstance(fields, str):
            return bad_arguments(fields)
        token = self._deps.secret(self.config.token_env)
        if not token:
            return ExecutionResult(ok=False, transient=False,
                                   summary=f"Not run: the Jira API token ({self.config.token_env}) is not set",
                                   detail={"error": "secret_missing", "secret_env": self.config.token_env})
        scrub = Scrubber([token])
        try:
            resp = self._deps.http.post(
                f"{self.config.base_url}/rest/api/3/issue",
                json={"fields": fields},
                auth=(self.config.email, token),
                headers={"Accept": "application/json"},
                timeout=self._timeout, allow_redirects=False)
        except requests.RequestException as exc:
            return transport_failure(exc, TARGET, self._timeout, outcome_unknown=True)
        if 200 <= resp.status_code < 300:
            data = json_body(resp) or {}
            key = data.get("key") if isinstance(data, dict) else None
            if not key:
                return ExecutionResult(ok=True, summary="Created a Jira issue (Jira did not say which)",
                                       detail={"status": resp.status_code})
            return ExecutionResult(ok=True, summary=f"Created {key}", external_id=str(key),
                                   url=f"{self.config.base_url}/browse/{key}",
                                   detail={"status": resp.status_code, "key": str(key),
                                           "id": str(data.get("id", ""))})
        return status_failure(resp, TARGET, "the issue", _jira_reason(resp), scrub)


def _jira_reason(resp: requests.Response) -> str:
    """Jira's ``{"errorMessages": [...], "errors": {field: message}}`` as one line."""
    if 300 <= resp.status_code < 400:
        return "redirects are not followed"
    data = json_body(resp)
    if isinstance(data, dict) and ("errorMessages" in data or "errors" in data):
        parts = [str(m) for m in data.get("errorMessages") or []]
        errors = data.get("errors") or {}
        if isinstance(errors, dict):
            parts += [f"{k}: {v}" for k, v in errors.items()]
        if parts:
            return "; ".join(parts)
    return body_text(resp)
