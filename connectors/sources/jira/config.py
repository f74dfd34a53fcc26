"""A ``sources:`` entry of kind ``jira``."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KEY = re.compile(r"^[A-Z][A-Z0-9_]+$")


class JiraConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The site: https://contoso.atlassian.net
    url: str
    # Project keys, or a JQL filter (one of them).
    projects: list[str] | None = None
    jql: str | None = None
    email: str
    token_env: str = "JIRA_API_TOKEN"
    # "Any logged-in user" and application-access grants (everyone with Jira) make issues visible
    # to everyone in the company only when this is true; by default they grant nothing.
    anyone_public: bool = False
    # Incremental syncs ask JQL for issues updated since the last sync minus this many minutes
    # (JQL dates have minute precision, in the service account's time zone).
    overlap_minutes: int = Field(default=5, ge=1, le=1440)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        parts = urlsplit(url.strip())
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"{url!r} is not a Jira site URL such as https://contoso.atlassian.net")
        return f"https://{parts.netloc}{parts.path.rstrip('/')}"

    @field_validator("email")
    @classmethod
    def _email(cls, email: str) -> str:
        if "@" not in email:
            raise ValueError(f"{email!r} is not the email of the account the API token belongs to")
        return email.strip()

    @field_validator("token_env")
    @classmethod
    def _token_env(cls, name: str) -> str:
        if not _ENV_NAME.match(name):
            raise ValueError(f"{name!r} is not an environment variable name (the token itself never goes here)")
        return name

    @field_validator("projects")
    @classmethod
    def _projects(cls, keys: list[str] | None) -> list[str] | None:
        if keys is None:
            return None
        for key in keys:
            if not _KEY.match(key):
                raise ValueError(f"{key!r} is not a project key such as OPS")
        if not keys:
            raise ValueError("name at least one project key")
        return keys

    @model_validator(mode="after")
    def _one_of(self) -> "JiraConfig":
        if bool(self.projects) == bool(self.jql):
            raise ValueError("give either projects: [KEY, ...] or jql: '...', not both and not neither")
        return self
