"""``chatops``: one entry point for operators, scripts and the processes.

One module per command group, each registering its commands on ``main`` (``root.py``, with
what they share); a command parses its options, calls one use case through the composition
root and prints the outcome. The composition root is imported when a command builds it, so
``chatops --help`` stays fast (``root.py`` says why).
"""

from __future__ import annotations

from chatops_app.cli import (admin, ask, demo, doctor, evaluation, index, ingest, proposals,  # noqa: F401
                             report, serve, sources, tools)
from chatops_app.cli.root import main

__all__ = ["main"]
