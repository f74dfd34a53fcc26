"""Generations of the index: one collection per embedder, one of them active (blue/green).

A generation is a whole collection built with one embedder; its name carries the embedder
(``chatops__openai-text-embedding-3-small-512``). Which one answers is recorded durably and
switched atomically:

* embedded engines (``edge``, ``local``): the index folder holds ``active.json`` (replaced with
  ``os.replace``) and each generation in its own folder under ``generations/``. The folder's own
  files, as chatops wrote them before generations, are the first generation (named after the
  collection, e.g. ``chatops``) and stay where they are;
* a Qdrant server: the alias ``<collection>__active`` points at the active collection (one
  ``update_collection_aliases`` call switches it); without the alias the collection named
  ``CHATOPS_COLLECTION`` is the active one (the layout before generations).

Each generation but the first keeps a small state record (``generation.json``: its embedder,
``building`` with points done of total, ``complete``, ``checked``, when). Nothing here deletes a
generation unless asked (``remove``), and never the active one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qdrant_client import models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from chatops.errors import ConfigError
from connectors.index.base import Built, IndexUnavailable, read_built

POINTER = "active.json"
GENERATIONS_DIR = "generations"
STATE_FILE = "generation.json"
ALIAS_SUFFIX = "__active"


class GenerationError(ConfigError):
    """A generation asked for does not exist, or may not be changed so (one line, what to do)."""


def generation_name(collection: str, provider: str, model: str | None, dim: int) -> str:
    """``<collection>__<provider>-<model, last path part, lower case>-<dim>``."""
    tail = (model or "model").rstrip("/").rsplit("/", 1)[-1].lower()
    slug = re.sub(r"[^a-z0-9]+", "-", tail).strip("-") or "model"
    return f"{collection}__{provider}-{slug}-{dim}"


@dataclass
class GenerationState:
    """A generation's record. ``state``: building, complete (every point written), checked
    (compared with the active one and found the same), failed (the check refused it)."""

    name: str
    provider: str
    model: str | None
    dim: int
    state: str = "building"
    done: int = 0
    total: int = 0
    started_at: float = field(default_factory=time.time)
    built_at: float | None = None
    checked_at: float | None = None
    detail: str = ""

    @classmethod
    def from_json(cls, raw: dict) -> "GenerationState":
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        return cls(**known)


def _write_atomically(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _read_json(path: Path) -> dict | None:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


class EmbeddedGenerations:
    """Generations of an embedded index folder (see the module)."""

    def __init__(self, root: Path, collection: str):
        self.root = Path(root)
        self.collection = collection
        self.legacy = collection    # the folder's own files, the first generation

    # where each one lives
    def location(self, name: str) -> Path:
        return self.root if name == self.legacy else self.root / GENERATIONS_DIR / name

    def _legacy_exists(self) -> bool:
        return any((self.root / p).exists() for p in ("shard", "collection", "embedder.json", "meta.json"))

    def names(self) -> list[str]:
        found = [self.legacy] if self._legacy_exists() else []
        gens = self.root / GENERATIONS_DIR
        if gens.is_dir():
            found += sorted(p.name for p in gens.iterdir() if p.is_dir())
        return found

    def active(self) -> str:
        """The active generation's name (the folder's own files when none was switched to)."""
        raw = _read_json(self.root / POINTER)
        return str(raw["generation"]) if raw and raw.get("generation") else self.legacy

    def stamp(self) -> object:
        """Changes when the active generation changes (a stat, no read): for cheap polling."""
        try:
            st = os.stat(self.root / POINTER)
            return (st.st_mtime_ns, st.st_ino, st.st_size)
        except OSError:
            return None

    def switch(self, name: str) -> None:
        if name not in self.names():
            raise GenerationError(f"no generation {name!r} in {self.root} (see `chatops index status`)")
        _write_atomically(self.root / POINTER, {"generation": name, "switched_at": time.time()})

    def built(self, name: str) -> Built | None:
        """What built it: ``embedder.json`` (Qdrant Edge), else its state record (qdrant-client's local
        mode keeps the record inside its files, which a running worker holds)."""
        built = read_built(self.location(name))
        state = None if built is not None else self.state(name)
        return built or (Built(state.model, state.dim, state.provider) if state else None)

    def state(self, name: str) -> GenerationState | None:
        raw = _read_json(self.location(name) / STATE_FILE) if name != self.legacy else None
        return GenerationState.from_json(raw) if raw else None

    def save_state(self, state: GenerationState) -> None:
        if state.name == self.legacy:
            return
        _write_atomically(self.location(state.name) / STATE_FILE, asdict(state))

    def prepare(self, name: str) -> Path:
        path = self.location(name)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def remove(self, name: str) -> None:
        if name == self.active():
            raise GenerationError(f"{name} is the active generation: switch to another first")
        if name not in self.names():
            raise GenerationError(f"no generation {name!r} in {self.root} (see `chatops index status`)")
        if name == self.legacy:
            for entry in ("shard", "collection", "meta.json", "embedder.json", ".lock", "edge.lock"):
                target = self.root / entry
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
            return
        shutil.rmtree(self.location(name))


class ServerGenerations:
    """Generations of a Qdrant server: collections, the active one behind an alias (see the module).
    Their state records are kept in ``state_dir`` (the process's data folder)."""

    def __init__(self, client, collection: str, state_dir: Path):
        self.client = client
        self.collection = collection
        self.legacy = collection
        self.alias = f"{collection}{ALIAS_SUFFIX}"
        self.state_dir = Path(state_dir)

    def location(self, name: str) -> str:
        return name

    def names(self) -> list[str]:
        prefix = f"{self.collection}__"
        return sorted(c.name for c in self.client.get_collections().collections
                      if c.name == self.collection or (c.name.startswith(prefix) and c.name != self.alias))

    def active(self) -> str:
        try:
            aliases = self.client.get_aliases().aliases
        except (ResponseHandlingException, UnexpectedResponse) as exc:
            raise IndexUnavailable(f"the Qdrant server did not answer: {exc}") from exc
        for alias in aliases:
            if alias.alias_name == self.alias:
                return alias.collection_name
        return self.legacy

    def stamp(self) -> object:
        return self.active()

    def switch(self, name: str) -> None:
        if name not in self.names():
            raise GenerationError(f"no collection {name!r} on the Qdrant server (see `chatops index status`)")
        # one call: Qdrant applies the alias operations of a request atomically
        self.client.update_collection_aliases(change_aliases_operations=[
            models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=self.alias)),
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=name, alias_name=self.alias)),
        ] if any(a.alias_name == self.alias for a in self.client.get_aliases().aliases) else [
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=name, alias_name=self.alias)),
        ])

    def built(self, name: str) -> Built | None:
        if not self.client.collection_exists(name):
            return None
        config = self.client.get_collection(name).config
        metadata = config.metadata or {}
        if "chatops_dim" not in metadata:
            return None
        return Built(metadata.get("chatops_embedder"), int(metadata["chatops_dim"]), metadata.get("chatops_provider"))

    def state(self, name: str) -> GenerationState | None:
        raw = _read_json(self.state_dir / f"{name}.json") if name != self.legacy else None
        return GenerationState.from_json(raw) if raw else None

    def save_state(self, state: GenerationState) -> None:
        if state.name != self.legacy:
            _write_atomically(self.state_dir / f"{state.name}.json", asdict(state))

    def prepare(self, name: str) -> str:
        return name

    def remove(self, name: str) -> None:
        if name == self.active():
            raise GenerationError(f"{name} is the active generation: switch to another first")
        if name not in self.names():
            raise GenerationError(f"no collection {name!r} on the Qdrant server (see `chatops index status`)")
        self.client.delete_collection(name)
        try:
            (self.state_dir / f"{name}.json").unlink()
        except OSError:
            pass
