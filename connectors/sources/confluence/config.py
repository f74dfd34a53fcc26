"""A ``sources:`` entry of kind ``confluence``."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfluenceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The site's Confluence: https://contoso.atlassian.net/wiki
    url: str
    # Space keys; unset: every space the account can read.
    spaces: list[str] | None = None
    # The account the API token belongs to, and the *name* of the environment variable that
    # holds the token (never the token itself).
    email: str
    token_env: str = "CONFLUENCE_API_TOKEN"
    # Anonymous read access to a space makes its unrestricted pages visible to everyone only when
    # this is true; by default it grants nothing.
    anonymous_public: bool = False
    # Attachments in supported formats are indexed as their own documents, with their page's
    # permissions; larger files are listed as skipped.
    attachments: bool = True
    max_file_mb: float = Field(default=50, gt=0)
    # Incremental syncs ask CQL for pages modified since the last sync minus this many minutes:
    # CQL times have minute precision (in the site's time zone), and an edit saved while the last
    # sync ran must not be missed. Versions de-duplicate what the overlap lists twice.
    overlap_minutes: int = Field(default=5, ge=1, le=1440)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        parts = urlsplit(url.strip())
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"{url!r} is not a Confluence URL such as https://contoso.atlassian.net/wiki")
        path = parts.path.rstrip("/")
        if not path.endswith("/wiki"):
            path += "/wiki"
        return f"https://{parts.netloc}{path}"

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

    @field_validator("spaces")
    @classmethod
    def _spaces(cls, keys: list[str] | None) -> list[str] | None:
        if keys is None:
            return None
        out = [k.strip() for k in keys if k and k.strip()]
        if not out:
            raise ValueError("name at least one space key, or leave spaces out for every space")
        return out
