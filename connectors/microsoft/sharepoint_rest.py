"""SharePoint's own REST API (``<site>/_api/…``), beside Graph: the resource its app-only tokens
are for (a site's origin; SharePoint takes them from a certificate only), the JSON it is asked for,
where a site's groups are, how it names its next page, and its error body. The requests go through
the Graph client's ``send`` with the site's scope, so the token never leaves that origin."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests

ACCEPT = "application/json;odata=nometadata"
NEXT_KEYS = ("odata.nextLink", "@odata.nextLink")


def site_scope(site_url: str) -> str:
    """The app-only scope of a site's REST API: SharePoint's own resource, the site's origin."""
    parts = urlsplit(site_url)
    return f"{parts.scheme}://{parts.netloc}/.default"


def sitegroups(site_url: str) -> str:
    """The site's groups (``/GetById(n)/users`` below it: one group's members)."""
    return site_url.rstrip("/") + "/_api/web/sitegroups"


def rest_error(resp: requests.Response) -> tuple[str | None, str | None]:
    """SharePoint REST's ``{"odata.error": {"code", "message": {"value"}}}`` (or ``error``); the
    body's first 200 characters when it is not JSON."""
    try:
        err = resp.json().get("odata.error") or resp.json().get("error") or {}
        code = err.get("code")
        message = (err.get("message") or {}).get("value") if isinstance(err.get("message"), dict) else err.get("message")
    except (ValueError, AttributeError):
        return None, (resp.text[:200] if resp.text else None)
    return code, message
