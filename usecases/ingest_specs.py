"""The source an ingestion task names by its spec (``chatops ingest --via-workers``).

A task's payload carries the source as a spec, plain values a queue can hold
(:mod:`connectors.sources.registry`); each task opens it again here, with the deployment's group
names (how ACL files name groups) and its parse limits. The workers reach sources only through
this use case, never through the connector registry.
"""

from __future__ import annotations

from typing import Any

from chatops.groups import GroupNames
from connectors.sources.base import DocumentSource
from connectors.sources.registry import open_source


def open_spec(spec: dict[str, Any], groups: GroupNames | None = None, settings: Any = None) -> DocumentSource:
    """The source ``spec`` names, to plan or to write one batch of (``SourceSpecError`` for a spec
    no registered kind accepts)."""
    return open_source(spec, groups, settings)
