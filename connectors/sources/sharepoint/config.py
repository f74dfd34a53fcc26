"""A ``sources:`` entry of kind ``sharepoint``."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class SharePointConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Sites by URL (https://contoso.sharepoint.com/sites/engineering): every document library of each.
    sites: list[str] = Field(default_factory=list)
    # Only these libraries (drive ids) of those sites; unset: all of them.
    drives: list[str] | None = None
    # These people's OneDrive (by user principal name or email).
    onedrive_users: list[str] = Field(default_factory=list)
    # Sharing links for "people in your organisation" (and the Everyone claims): true makes such
    # an item visible to everyone in the tenant; false (the default) grants nothing by them.
    organization_links_public: bool = False
    # Files larger than this are listed as skipped, not downloaded.
    max_file_mb: float = Field(default=50, gt=0)

    @field_validator("sites")
    @classmethod
    def _sites(cls, sites: list[str]) -> list[str]:
        out = []
        for url in sites:
            parts = urlsplit(url.strip())
            if parts.scheme != "https" or not parts.hostname or not parts.path.strip("/"):
                raise ValueError(f"{url!r} is not a site URL such as https://contoso.sharepoint.com/sites/engineering")
            out.append(f"https://{parts.hostname}/{parts.path.strip('/')}")
        return out

    @field_validator("onedrive_users")
    @classmethod
    def _users(cls, users: list[str]) -> list[str]:
        for user in users:
            if "@" not in user:
                raise ValueError(f"{user!r} is not a user principal name (alice@contoso.com)")
        return [u.strip().lower() for u in users]

    @model_validator(mode="after")
    def _something(self) -> "SharePointConfig":
        if not self.sites and not self.onedrive_users:
            raise ValueError("name at least one site (sites:) or OneDrive user (onedrive_users:)")
        return self
