"""A ``sources:`` entry of kind ``confluence``."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator

from connectors.sources.atlassian.config import AtlassianSource


class ConfluenceConfig(AtlassianSource):
    # The site's Confluence: https://contoso.atlassian.net/wiki
    url: str
    # Space keys; unset: every space the account can read.
    spaces: list[str] | None = None
    token_env: str = "CONFLUENCE_API_TOKEN"
    # Anonymous read access to a space makes its unrestricted pages visible to everyone only when
    # this is true; by default it grants nothing.
    anonymous_public: bool = False
    # Attachments in supported formats are indexed as their own documents, with their page's
    # permissions; larger files are listed as skipped.
    attachments: bool = True
    max_file_mb: float = Field(default=50, gt=0)

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

    @field_validator("spaces")
    @classmethod
    def _spaces(cls, keys: list[str] | None) -> list[str] | None:
        if keys is None:
            return None
        out = [k.strip() for k in keys if k and k.strip()]
        if not out:
            raise ValueError("name at least one space key, or leave spaces out for every space")
        return out
