"""Markdown (as models write it) to Slack mrkdwn.

Links go through a :class:`bot.links.LinkPolicy`: a Markdown link or a bare URL
becomes a live Slack link only when the policy allows its URL (the answer's
cited sources, allow-listed hosts); any other is rendered inert, as its
defanged host in plain text, and images are dropped. Raw Slack control
sequences a model writes (``<!channel>``, ``<@U123>``, ``<https://x|y>``) are
escaped, so they show as text.
"""

from __future__ import annotations

import re

from bot.links import LinkPolicy, defang_host

_CODE = re.compile(r"(```.*?```|`[^`\n]+`)", re.DOTALL)
_IMAGE = re.compile(r"!\[[^\]\n]*\]\([^)\n]*\)")
_MD_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)(?:\s+\"[^\"\n]*\")?\)")
_BARE_URL = re.compile(r"(?i)\b(?:https?://|ftp://|www\.)[^\s<>|\"'`\]\[()]+")
# A host and a path without a scheme ("attacker.example/collect?d=..."): Slack links those in
# plain text too (answer sections are verbatim, so only the fallback text needs this).
_HOST_PATH = re.compile(r"(?i)\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}(?::\d+)?/[^\s<>|\"'`]*")
_TRAILING = ".,;:!?"
_TOKEN = re.compile("\x00(\\d+)\x00")
NO_LINKS = LinkPolicy()


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str, label: str) -> str:
    label = escape(label).replace("|", "¦")
    return f"<{url.replace('>', '%3E').replace('|', '%7C')}|{label}>"


def removed(url: str) -> str:
    """What an inert URL shows: its host, defanged, so Slack neither links nor unfurls it."""
    return f"[link removed: {escape(defang_host(url))}]"


def _split_url(match: str) -> tuple[str, str]:
    """A bare URL and the sentence punctuation that followed it."""
    url = match.rstrip(_TRAILING)
    return url, match[len(url):]


def _tokenise_links(line: str, policy: LinkPolicy) -> tuple[str, list[str]]:
    """Replace links and URLs by placeholders holding their finished mrkdwn."""
    tokens: list[str] = []

    def keep(rendered: str) -> str:
        tokens.append(rendered)
        return f"\x00{len(tokens) - 1}\x00"

    def md_link(m: re.Match) -> str:
        label, url = m.group(1), m.group(2)
        if policy.allows(url):
            return keep(link(url, label))
        label = _BARE_URL.sub(lambda u: removed(_split_url(u.group(0))[0]), escape(label))
        return keep(f"{label} {removed(url)}")

    def bare(m: re.Match) -> str:
        url, tail = _split_url(m.group(0))
        if policy.allows(url):
            return keep(f"<{url.replace('>', '%3E').replace('|', '%7C')}>") + escape(tail)
        return keep(removed(url)) + escape(tail)

    line = _IMAGE.sub("", line)          # images: dropped (an image is a request to a host)
    line = _MD_LINK.sub(md_link, line)
    line = _BARE_URL.sub(bare, line)
    return line, tokens


def _convert_plain(text: str, policy: LinkPolicy) -> str:
    out = []
    for line in text.split("\n"):
        quote = ""
        m = re.match(r"^(\s*>\s?)(.*)$", line)
        if m:  # keep block quotes as quotes
            quote, line = "> ", m.group(2)
        line, tokens = _tokenise_links(line, policy)
        line = escape(line)
        heading = re.match(r"^#{1,6}\s+(.*)$", line)
        if heading:
            line = f"*{heading.group(1).strip()}*"
        line = re.sub(r"^(\s*)[-*+]\s+", r"\1• ", line)
        line = re.sub(r"\*\*(.+?)\*\*", r"*\1*", line)
        line = re.sub(r"__(.+?)__", r"_\1_", line)
        line = re.sub(r"~~(.+?)~~", r"~\1~", line)
        line = _TOKEN.sub(lambda t: tokens[int(t.group(1))], line)
        out.append(quote + line)
    return "\n".join(out)


def to_mrkdwn(markdown: str, links: LinkPolicy = NO_LINKS) -> str:
    pieces = _CODE.split(markdown.replace("\x00", ""))
    result = []
    for i, piece in enumerate(pieces):
        if i % 2 == 1:  # code: escape only (Slack links nothing inside code)
            result.append(escape(piece))
        else:
            result.append(_convert_plain(piece, links))
    return "".join(result)


def inert_text(text: str) -> str:
    """Text that came from a document (a title) with every URL in it shown inert, escaped."""
    text = _BARE_URL.sub(lambda u: removed(_split_url(u.group(0))[0]), escape(text))
    return _HOST_PATH.sub(lambda u: removed("//" + _split_url(u.group(0))[0]), text)


def plain_text(markdown: str, links: LinkPolicy = NO_LINKS) -> str:
    """The same text for a notification (a message's fallback ``text``): links reduced to their
    labels, images dropped, any URL the policy does not allow shown inert. Not yet escaped."""
    def md_link(m: re.Match) -> str:
        return m.group(1) if links.allows(m.group(2)) else f"{m.group(1)} [link removed: {defang_host(m.group(2))}]"

    def bare(m: re.Match) -> str:
        url, tail = _split_url(m.group(0))
        return (url if links.allows(url) else f"[link removed: {defang_host(url)}]") + tail

    def host_path(m: re.Match) -> str:
        url, tail = _split_url(m.group(0))
        return f"[link removed: {defang_host('//' + url)}]{tail}"

    text = _IMAGE.sub("", markdown)
    text = _MD_LINK.sub(md_link, text)
    text = _BARE_URL.sub(bare, text)
    return _HOST_PATH.sub(host_path, text)
