"""How the demo prints: wrapped lines, banners and sections, paths as the user would type them."""

from __future__ import annotations

import re
import shutil
import sys
import textwrap
from pathlib import Path

from connectors.identity.base import UnknownUser

_BULLET = re.compile(r"([-*+]|\d+[.)])\s+")


class Printer:
    def __init__(self):
        self.width = max(60, min(100, shutil.get_terminal_size((100, 24)).columns))

    def line(self, text: str = "", indent: str = "") -> None:
        if not text.strip():
            print(indent.rstrip() if text == "" else indent + text.strip())
            return
        quote = ""
        body = text
        if body.startswith(">"):
            quote, body = "> ", body[1:].lstrip()
        lead = len(body) - len(body.lstrip())
        prefix = indent + quote + " " * lead
        if body.lstrip().startswith("|"):  # a Markdown table row: wrapping would break it
            print(prefix + body.strip())
            return
        bullet = _BULLET.match(body.lstrip())
        hang = " " * len(bullet.group(0)) if bullet else ""
        print(textwrap.fill(body.strip(), width=self.width, initial_indent=prefix,
                            subsequent_indent=prefix + hang,
                            break_long_words=False, break_on_hyphens=False))

    def block(self, text: str, indent: str = "") -> None:
        for raw in text.splitlines():
            self.line(raw, indent)

    def banner(self, title: str) -> None:
        print()
        print("=" * self.width)
        print(title)
        print("=" * self.width)

    def section(self, title: str) -> None:
        print()
        bar = f"── {title} "
        print(bar + "─" * max(3, self.width - len(bar)))


def shown(path: Path) -> str:
    """A path relative to the current folder when it is below it, absolute otherwise."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def command_name() -> str:
    found = shutil.which("chatops")
    argv0 = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if found and argv0 and Path(found).resolve() == argv0:
        return "chatops"
    if argv0 and argv0.name == "chatops" and argv0.exists():
        return shown(argv0)
    return "chatops"


def who(directory, email: str) -> str:
    try:
        p = directory.by_email(email)
    except UnknownUser:
        return f"{email} (not in the directory)"
    groups = f"groups: {', '.join(sorted(p.groups))}" if p.groups else "no groups"
    return f"{p.display_name or p.email} <{p.email}>, {groups}"
