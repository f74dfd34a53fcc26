"""The fields every Atlassian Cloud source has: the service account, its token's variable, the
overlap of incremental syncs; each kind adds its own (``url``, spaces or projects)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
