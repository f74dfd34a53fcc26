"""A document source as plain JSON, so a task can name it: ``{"kind": ..., ...}``.

A worker rebuilds the source from its spec; paths are absolute and must mean the same
folder on every machine that runs the tasks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from chatops.groups import GroupNames
from connectors.sources.base import DocumentSource


class SourceSpecError(ValueError):
    """A spec names no known kind of source, or lacks what that kind needs."""


def filesystem_spec(root: Path, base_url: str | None = None) -> dict:
    return {"kind": "filesystem", "path": str(Path(root).resolve()), "base_url": base_url}


def beir_spec(folder: Path, limit: int | None = None) -> dict:
    """A BEIR folder with public documents (benchmarks)."""
    return {"kind": "beir", "path": str(Path(folder).resolve()), "limit": limit}


def _filesystem(spec: dict, groups: GroupNames | None) -> DocumentSource:
    from connectors.sources.filesystem.connector import FilesystemSource

    return FilesystemSource(Path(spec["path"]), spec.get("base_url"), groups)


def _beir(spec: dict, groups: GroupNames | None) -> DocumentSource:
    from connectors.sources.beir import BeirSource

    return BeirSource(Path(spec["path"]), limit=spec.get("limit"))


OPENERS: dict[str, Callable[[dict, GroupNames | None], DocumentSource]] = {
    "filesystem": _filesystem, "beir": _beir}


def open_source(spec: dict, groups: GroupNames | None = None) -> DocumentSource:
    """The source a spec names; ``groups`` resolves the group names its permissions use."""
    opener = OPENERS.get(spec.get("kind", ""))
    if opener is None:
        raise SourceSpecError(f"unknown source kind {spec.get('kind')!r} (known: {', '.join(OPENERS)})")
    if not spec.get("path"):
        raise SourceSpecError(f"a {spec['kind']} source needs a path")
    return opener(spec, groups)
