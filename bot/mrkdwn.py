"""Markdown (as models write it) to Slack mrkdwn."""

from __future__ import annotations

import re

_CODE = re.compile(r"(```.*?```|`[^`\n]+`)", re.DOTALL)


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str, label: str) -> str:
    label = escape(label).replace("|", "¦")
    return f"<{url.replace('>', '%3E').replace('|', '%7C')}|{label}>"


def _convert_plain(text: str) -> str:
    out = []
    for line in text.split("\n"):
        quote = ""
        m = re.match(r"^(\s*>\s?)(.*)$", line)
        if m:  # keep block quotes as quotes
            quote, line = "> ", m.group(2)
        line = escape(line)
        heading = re.match(r"^#{1,6}\s+(.*)$", line)
        if heading:
            line = f"*{heading.group(1).strip()}*"
        line = re.sub(r"^(\s*)[-*+]\s+", r"\1• ", line)
        line = re.sub(r"\*\*(.+?)\*\*", r"*\1*", line)
        line = re.sub(r"__(.+?)__", r"_\1_", line)
        line = re.sub(r"~~(.+?)~~", r"~\1~", line)
        line = re.sub(r"\[([^\]]+)\]\((https?://[^)\s]+)\)",
                      lambda mm: f"<{mm.group(2)}|{mm.group(1)}>", line)
        out.append(quote + line)
    return "\n".join(out)


def to_mrkdwn(markdown: str) -> str:
    pieces = _CODE.split(markdown)
    result = []
    for i, piece in enumerate(pieces):
        if i % 2 == 1:  # code: escape only
            result.append(escape(piece))
        else:
            result.append(_convert_plain(piece))
    return "".join(result)
