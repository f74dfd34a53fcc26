"""The fields every Atlassian Cloud source has: the service account, its token's variable, the
overlap of incremental syncs; each kind adds its own (``url``, spaces or projects)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class AtlassianSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The account the API token belongs to, and the *name* of the environment variable that
    # holds the token (never the token itself).
    email: str
    token_env: str
    # Incremental syncs ask for what was modified since the last sync minus this many minutes:
    # CQL and JQL dates have minute precision (in the site's or the account's time zone), and an
    # edit saved while the last sync ran must not be missed. Versions de-duplicate the overlap.
    overlap_minutes: int = Field(default=5, ge=1, le=1440)
    # Where hidden emails are found: the organization's directory (Atlassian's admin API), with an
    # organization API key whose *variable name* is given. Both or neither.
    org_id: str | None = None
    admin_key_env: str | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, email: str) -> str:
        if "@" not in email:
            raise ValueError(f"{email!r} is not the email of the account the API token belongs to")
        return email.strip()

    @field_validator("token_env", "admin_key_env")
    @classmethod
    def _env_name(cls, name: str | None) -> str | None:
        if name is not None and not _ENV_NAME.match(name):
            raise ValueError(f"{name!r} is not an environment variable name (the secret itself never goes here)")
        return name

    @model_validator(mode="after")
    def _directory(self) -> "AtlassianSource":
        if bool(self.org_id) != bool(self.admin_key_env):
            raise ValueError("give both org_id and admin_key_env (the organization's directory), or neither")
        return self
