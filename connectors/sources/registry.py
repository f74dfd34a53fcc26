"""Document sources by kind, and a source as plain JSON so a task can name it.

A source spec is ``{"kind": ..., <the kind's fields>}``: what ``sources:`` entries of the
``CHATOPS_CONFIG`` file hold (with a ``name``), what ``chatops ingest PATH`` builds, and what
ingest tasks carry (paths are absolute and must mean the same folder on every machine that
runs the tasks). Each kind validates its fields with a pydantic model; a mistake is a
``ConfigError`` naming the source and the field, at start-up.

Adding a source kind: its folder under ``connectors/sources/`` (a class with a ``Config`` model
and a ``from_config(config, context)`` opener) and one line in ``SOURCES``. Environment settings
a kind reads (SharePoint: the Entra app's) are a settings model named in its line; those every
kind reads (parse limits, throttling) are the registry's own, ``SETTINGS``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from pydantic import BaseModel, ValidationError

from chatops.errors import ConfigError
from chatops.groups import GroupNames
from chatops.settings import PluginSettings
from connectors.microsoft.settings import EntraSettings
from connectors.sources.base import DocumentSource, SyncSource
from connectors.sources.beir import BeirSource
from connectors.sources.confluence.connector import ConfluenceSource
from connectors.sources.filesystem.connector import FilesystemSource
from connectors.sources.jira.connector import JiraSource
from connectors.sources.settings import SourceSettings
from connectors.sources.sharepoint.connector import SharePointSource

SETTINGS: tuple[type[PluginSettings], ...] = (SourceSettings,)   # the registry's own: every kind's limits


class SourceSpecError(ConfigError, ValueError):
    """A spec names no known kind of source, or its fields are wrong."""


@dataclass(frozen=True)
class SourceContext:
    """What opening a source may need besides its own fields."""

    name: str | None = None                 # the configured name (None: an ad-hoc source)
    groups: GroupNames | None = None        # how group names in its permissions resolve
    settings: Any = None                    # chatops.settings.Settings (``of()``: the kind's own and SourceSettings)
    http: Any = None                        # a requests.Session (tests route it to stand-ins)
    environ: Mapping[str, str] | None = None   # where secrets named by env name are read (os.environ)


@dataclass(frozen=True)
class SourceKind:
    name: str
    config: type[BaseModel]
    open: Callable[[BaseModel, SourceContext], DocumentSource | SyncSource]
    source_id: Callable[[str, BaseModel], str]   # (name, config) -> the ``source`` of its chunks
    syncs: bool = True                      # meets the sync interface (``chatops sources sync``)
    # what the settings (or the environment) lack for this source, if anything: (settings, config)
    needs: Callable[[Any, BaseModel], str | None] = lambda settings, config: None
    settings: type[PluginSettings] | None = None     # environment settings of its own (SharePoint: the Entra app)
    notifications: bool = False             # takes Graph change notifications: has ``watch(notify_url, client_state)``


SOURCES: dict[str, SourceKind] = {k.name: k for k in (
    SourceKind("filesystem", FilesystemSource.Config, FilesystemSource.from_config, FilesystemSource.id_for),
    SourceKind("sharepoint", SharePointSource.Config, SharePointSource.from_config, SharePointSource.id_for,
               needs=SharePointSource.missing_settings, settings=EntraSettings, notifications=True),
    SourceKind("confluence", ConfluenceSource.Config, ConfluenceSource.from_config, ConfluenceSource.id_for,
               needs=ConfluenceSource.missing_settings),
    SourceKind("jira", JiraSource.Config, JiraSource.from_config, JiraSource.id_for,
               needs=JiraSource.missing_settings),
    SourceKind("beir", BeirSource.Config, BeirSource.from_config, BeirSource.id_for, syncs=False),
)}


def filesystem_spec(root: Path, base_url: str | None = None) -> dict:
    return {"kind": "filesystem", "path": str(Path(root).resolve()), "base_url": base_url}


def beir_spec(folder: Path, limit: int | None = None) -> dict:
    """A BEIR folder with public documents (benchmarks)."""
    return {"kind": "beir", "path": str(Path(folder).resolve()), "limit": limit}


def _parse(spec: dict, label: str) -> tuple[SourceKind, BaseModel]:
    if not isinstance(spec, dict):
        raise SourceSpecError(f"{label}: must be a mapping")
    kind = SOURCES.get(spec.get("kind", ""))
    if kind is None:
        raise SourceSpecError(f"{label}: kind: unknown source kind {spec.get('kind')!r} "
                              f"(known: {', '.join(SOURCES)})")
    fields = {k: v for k, v in spec.items() if k not in ("kind", "name")}
    try:
        return kind, kind.config.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        message = str(err.get("msg", "")).removeprefix("Value error, ")
        raise SourceSpecError(f"{label}: {where}: {message}" if where else f"{label}: {message}") from None


def open_source(spec: dict, groups: GroupNames | None = None, settings: Any = None) -> DocumentSource:
    """The source a spec names, to read every document at once (``chatops ingest``); ``groups``
    resolves the group names its permissions use, ``settings`` give its parse limits."""
    kind, config = _parse(spec, "source spec")
    return kind.open(config, SourceContext(groups=groups, settings=settings))


def open_sync_source(name: str, spec: dict, context: SourceContext) -> SyncSource:
    """A configured source, to sync (``chatops sources sync``, the scheduler)."""
    kind, config = _parse(spec, f"source '{name}'")
    if not kind.syncs:
        raise SourceSpecError(f"source '{name}': kind: {kind.name} sources cannot be synced "
                              f"(kinds that can: {', '.join(k for k, v in SOURCES.items() if v.syncs)})")
    return kind.open(config, replace(context, name=name))


def source_id_of(name: str, spec: dict) -> str:
    """The index ``source`` id a configured source writes its chunks under (without opening it)."""
    kind, config = _parse(spec, f"source '{name}'")
    return kind.source_id(name, config)


def takes_notifications(spec: dict) -> bool:
    """Whether a source's kind is told of changes by Graph change notifications (SharePoint)."""
    kind = SOURCES.get(spec.get("kind", ""))
    return kind is not None and kind.notifications


def configured_sources(entries: list[dict], settings: Any = None) -> dict[str, dict]:
    """The ``sources:`` of the CHATOPS_CONFIG file, checked (with ``settings``: also that the
    environment has what each kind needs, such as the Entra app for SharePoint): {name: spec}."""
    out: dict[str, dict] = {}
    for i, entry in enumerate(entries, 1):
        name = entry.get("name") if isinstance(entry, dict) else None
        label = f"source '{name}'" if name else f"source {i}"
        if not isinstance(name, str) or not name.strip():
            raise SourceSpecError(f"{label}: name: a unique name is required")
        if name in out:
            raise SourceSpecError(f"{label}: name: defined twice")
        kind, config = _parse(entry, label)
        missing = kind.needs(settings, config) if settings is not None else None
        if missing:
            raise SourceSpecError(f"{label}: {missing}")
        out[name] = {k: v for k, v in entry.items() if k != "name"}
    return out
