"""Atlassian Document Format, the JSON of Jira descriptions and comments, both ways.

Read (the Jira source): as plain text: paragraphs, headings, lists as ``- `` lines, code blocks
fenced, tables as `` | `` rows, mentions, emoji and links by their text; media adds nothing.
Written (the jira action): plain text as a document of paragraphs and hard breaks."""

from __future__ import annotations

from typing import Any


def adf_text(node: Any) -> str:
    """The readable text of an ADF document (or node); a plain string is returned as it is."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node
    out: list[str] = []
    _walk(node, out, depth=0)
    text = "".join(out)
    lines = [line.rstrip() for line in text.split("\n")]
    return "\n".join(lines).strip("\n").replace("\n\n\n", "\n\n")


def adf_document(text: str) -> dict:
    """Plain text as an Atlassian Document Format doc: one paragraph per blank-line-separated
    block, single line breaks as ``hardBreak`` (ADF text nodes may not be empty)."""
    content = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = block.strip("\n").split("\n")
        if not any(line.strip() for line in lines):
            continue
        nodes: list[dict] = []
        for i, line in enumerate(lines):
            if i:
                nodes.append({"type": "hardBreak"})
            if line:
                nodes.append({"type": "text", "text": line})
        content.append({"type": "paragraph", "content": nodes})
    return {"type": "doc", "version": 1, "content": content}


def _walk(node: Any, out: list[str], depth: int) -> None:
    if isinstance(node, list):
        for child in node:
            _walk(child, out, depth)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    attrs = node.get("attrs") or {}
    content = node.get("content") or []
    if kind == "text":
        out.append(str(node.get("text") or ""))
    elif kind == "hardBreak":
        out.append("\n")
    elif kind in ("mention", "emoji", "status", "date"):
        out.append(str(attrs.get("text") or attrs.get("shortName") or ""))
    elif kind in ("inlineCard", "blockCard", "embedCard"):
        out.append(str(attrs.get("url") or ""))
    elif kind in ("paragraph", "heading"):
        _walk(content, out, depth)
        out.append("\n" if depth else "\n\n")      # inside a list item: one line
    elif kind in ("bulletList", "orderedList"):
        for n, item in enumerate(content, 1):
            out.append("  " * depth + ("- " if kind == "bulletList" else f"{n}. "))
            _walk((item or {}).get("content") or [], out, depth + 1)
            if out and not out[-1].endswith("\n"):
                out.append("\n")
        out.append("\n")
    elif kind == "codeBlock":
        code = "".join(str(c.get("text") or "") for c in content if isinstance(c, dict))
        out.append("```\n" + code.strip("\n") + "\n```\n\n")
    elif kind == "table":
        for row in content:
            cells = []
            for cell in (row or {}).get("content") or []:
                part: list[str] = []
                _walk((cell or {}).get("content") or [], part, depth)
                cells.append(" ".join("".join(part).split()))
            out.append(" | ".join(cells) + "\n")
        out.append("\n")
    elif kind in ("media", "mediaSingle", "mediaGroup", "mediaInline", "rule"):
        return
    else:   # doc, blockquote, panel, expand, listItem, layout..., and whatever comes next
        _walk(content, out, depth)
