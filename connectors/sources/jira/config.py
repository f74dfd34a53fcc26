"""A ``sources:`` entry of kind ``jira``."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import field_validator, model_validator

from connectors.sources.atlassian.config import AtlassianSource

_KEY = re.compile(r"^[A-Z][A-Z0-9_]+$")


class JiraConfig(AtlassianSource):
    # The site: https://contoso.atlassian.net
    url: str
    # Project keys, or a JQL filter (one of them).
    projects: list[str] | None = None
    jql: str | None = None
    token_env: str = "JIRA_API_TOKEN"
    # "Any logged-in user" and application-access grants (everyone with Jira) make issues visible
    # to everyone in the company only when this is true; by default they grant nothing.
    anyone_public: bool = False

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        parts = urlsplit(url.strip())
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"{url!r} is not a Jira site URL such as https://contoso.atlassian.net")
        return f"https://{parts.netloc}{parts.path.rstrip('/')}"

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
