"""``chatops index rebuild``: where it runs, and following it.

An embedded index's files are opened by one process at a time. When no process holds them, or
the index is a Qdrant server, the command rebuilds here (``rebuild_here``): it reads the active
generation and writes the new one. When a worker holds the embedded index, the worker runs it
(task ``index_rebuild``, ``RebuildHandler``): it reads the active generation it already has open,
writes the new generation's own folder, and switches under its own write lock, so its syncs
cannot slip a change between the check and the switch; the command follows the new generation's
state record (``generation.json``) and prints progress lines.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timezone
from typing import Callable

from chatops.errors import ConfigError
from chatops.settings import Settings
from connectors.embeddings.base import EmbedderId, refusal, refuse_other_embedder
from connectors.embeddings.registry import PROVIDERS, build_embedder, configured, settings_for
from connectors.index.base import Built, IndexBusy
from connectors.index.generations import GenerationState, generation_name
from connectors.index.registry import engine_for, generations_for, open_generation
from connectors.index.settings import IndexSettings
from usecases.rebuild import Paused, RebuildReport, rebuild
from workers.tasks import INDEX_REBUILD


log = logging.getLogger(__name__)


class RebuildFailed(ConfigError):
    """The worker's rebuild stopped (its reason, and that running it again continues)."""


def _target(settings: Settings, provider: str, model: str | None, http=None):
    embedder = build_embedder(settings_for(settings, provider, model), http)
    ident = EmbedderId.of(embedder)
    return embedder, ident, generation_name(settings.of(IndexSettings).collection, ident.provider, ident.model,
                                            embedder.dim)


def _nothing_to_do(gens, active: str, built, ident: EmbedderId) -> str | None:
    if built is not None and refusal(built, ident) is None:
        return f"the active generation {active} is built with {ident.describe()} already: nothing to rebuild"
    return None


def rebuild_with(settings: Settings, active_index, active: str, embedder, ident: EmbedderId, name: str, *,
                 switch: bool, progress: Callable[[str], None], exclusive=None, after_switch=None,
                 budget: float | None = None) -> RebuildReport:
    """The new generation opened (made if new, refused if another embedder's), rebuilt from
    ``active_index``, checked, switched."""
    gens = generations_for(settings)
    gens.prepare(name)
    target = open_generation(settings, name, embedder.dim, embedder=ident.model, provider=ident.provider)
    try:
        target.ensure_collection()
        refuse_other_embedder(target.built_with(), ident)
        state = gens.state(name) or GenerationState(name, ident.provider, ident.model, embedder.dim)
        kw: dict = {"budget": budget}
        if exclusive is not None:
            kw["exclusive"] = exclusive
        if after_switch is not None:
            kw["after_switch"] = after_switch
        report = rebuild(active_index, target, embedder, gens, state, switch=switch, progress=progress, **kw)
    finally:
        target.close()
    report.previous = active
    return report


def rebuild_here(settings: Settings, provider: str, model: str | None, *, switch: bool,
                 progress: Callable[[str], None]) -> RebuildReport | str:
    """In this process; ``IndexBusy`` when a worker holds the embedded index."""
    gens = generations_for(settings)
    active = gens.active()
    built = gens.built(active)
    embedder, ident, name = _target(settings, provider, model)
    done = _nothing_to_do(gens, active, built, ident)
    if done:
        return done
    source = open_generation(settings, active, built.dim if built else embedder.dim)   # IndexBusy: a worker has it
    try:
        done = _nothing_to_do(gens, active, source.built_with(), ident)
        if done:
            return done
        return rebuild_with(settings, source, active, embedder, ident, name, switch=switch, progress=progress)
    finally:
        source.close()


def rebuild_via_worker(settings: Settings, provider: str, model: str | None, *, switch: bool,
                       progress: Callable[[str], None], timeout: float, dispatch: Callable[[str, dict], object],
                       poll: float = 0.5) -> str:
    """Queue the rebuild on the workers (one holds the index) with ``dispatch`` (the composition
    root's) and follow the generation's record."""
    gens = generations_for(settings)
    _, ident, name = _target(settings, provider, model)
    done = _nothing_to_do(gens, gens.active(), gens.built(gens.active()), ident)
    if done:
        return done
    asked = time.time()
    dispatch(INDEX_REBUILD.kind, {"cid": uuid.uuid4().hex, "provider": provider, "model": model,
                                  "switch": switch, "asked_at": asked})
    started, shown = time.monotonic(), None
    while True:
        state = gens.state(name)
        fresh = state is not None and state.started_at >= asked - 1
        if state is None or not fresh:
            if time.monotonic() - started > timeout:
                raise RebuildFailed(f"no worker took the rebuild within {timeout:g} s: is `chatops worker` running "
                                    f"with the same REDIS_URL and CHATOPS_QUEUE (queue {settings.ingest_queue})? "
                                    "The task stays queued")
            time.sleep(poll)
            continue
        if state.state == "failed":
            raise RebuildFailed(f"the rebuild of {name} stopped in the worker: {state.detail}; "
                                "`chatops index rebuild` again continues it")
        if state.detail.startswith("check refused"):
            raise RebuildFailed(f"the worker refused to switch to {name} ({state.detail[len('check refused: '):]}): "
                                "the index changed during the rebuild; run `chatops index rebuild` again (it continues)")
        if state.state == "checked" and (not switch or gens.active() == name):
            return (f"generation {name}: {state.total} chunks, checked"
                    + (", switched to it (by the worker)" if switch else ", not switched (--no-switch)"))
        line = f"  {state.state} {state.done}/{state.total} chunks"
        if line != shown:
            progress(line)
            shown = line
        time.sleep(poll)


class RebuildHandler:
    """The worker's side of ``index_rebuild``: rebuild from the generation this worker has open."""

    def __init__(self, settings: Settings, index, http=None, dispatch: Callable[[str, dict], None] | None = None,
                 budget: float | None = None):
        """``budget``: seconds of copying per task (below the ingest tasks' time limit); then the
        task queues its own continuation (``dispatch``), which skips what is written."""
        self.settings, self.index, self.http = settings, index, http
        self.dispatch, self.budget = dispatch, budget

    def handle(self, payload: dict) -> None:
        embedder, ident, name = _target(self.settings, payload["provider"], payload.get("model"), self.http)
        pair = self.index.current()
        if _nothing_to_do(None, pair.name, pair.index.built_with(), ident):
            return
        try:
            rebuild_with(self.settings, pair.index, pair.name, embedder, ident, name, switch=bool(payload["switch"]),
                         progress=lambda line: log.info(line), exclusive=self.index.writes_paused,
                         after_switch=self.index.reload, budget=self.budget)
        except Paused:
            if self.dispatch is None:
                raise
            self.dispatch(INDEX_REBUILD.kind, {**payload, "cid": uuid.uuid4().hex})   # continues from here
        except Exception as exc:
            self.failed(payload, f"{type(exc).__name__}: {exc}", name=name)
            raise

    def failed(self, payload: dict, reference: str, detail: str = "", name: str | None = None) -> None:
        gens = generations_for(self.settings)
        if name is None:
            try:
                _, _, name = _target(self.settings, payload["provider"], payload.get("model"), self.http)
            except Exception:   # noqa: BLE001 - nothing to record it in
                return
        state = gens.state(name)
        if state is not None and not state.detail.startswith("check refused"):
            state.state, state.detail = "failed", reference
            gens.save_state(state)


# -- status, switch, remove (chatops_app/cli/index.py) -----------------------------------------

def when(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds") if ts else None


def describe(built) -> dict | None:
    if built is None:
        return None
    ident = EmbedderId.recorded(built)
    return {"provider": ident.provider, "model": ident.model, "dim": ident.dim}


def _documents(idx) -> int:
    seen: set[tuple[str, str]] = set()
    offset = None
    while True:
        chunks, offset = idx.scroll_chunks(offset, 1000)
        seen.update((c.source, c.doc_id) for c in chunks)
        if offset is None:
            return len(seen)


def status_of(settings) -> dict:
    gens = generations_for(settings)
    active = gens.active()
    wanted = configured(settings)
    rows = []
    for name in gens.names() or [active]:
        built, state = gens.built(name), gens.state(name)
        row: dict = {"generation": name, "active": name == active, "embedder": describe(built),
                     "state": "active" if name == active else (state.state if state else "complete"),
                     "points": None, "documents": None, "held_by_another_process": False}
        if state:
            row.update(done=state.done, total=state.total, started_at=when(state.started_at),
                       built_at=when(state.built_at), checked_at=when(state.checked_at),
                       detail=state.detail or None)
        try:
            idx = open_generation(settings, name, built.dim if built else (wanted.dim or 1))
        except IndexBusy:
            row["held_by_another_process"] = True
        else:
            try:
                row["points"] = idx.count()
                row["documents"] = _documents(idx)
                if built is None:
                    row["embedder"] = describe(idx.built_with())
            finally:
                idx.close()
        rows.append(row)
    act = next((r for r in rows if r["active"]), None)
    emb = act["embedder"] if act else None
    mismatch = refusal(Built(emb["model"], emb["dim"], emb["provider"]) if emb else None, wanted)
    return {"engine": engine_for(settings).name, "active": active,
            "configured": {"provider": wanted.provider, "model": wanted.model, "dim": wanted.dim},
            "configured_matches_active": mismatch is None, "generations": rows}


def parse_embedder(value: str | None, settings):
    """``PROVIDER[:MODEL]``, or the configured embedder."""
    if not value:
        c = configured(settings)
        return c.provider, c.model
    provider, _, model = value.partition(":")
    if provider not in PROVIDERS:
        raise ConfigError(f"--embedder: unknown provider {provider!r} (known: {', '.join(PROVIDERS)})")
    return provider, model or None


def previous(report) -> str | None:
    return getattr(report, "previous", None)


def remove_when_free(settings, name: str | None, echo, wait: float | None = None) -> None:
    if not name:
        return
    gens = generations_for(settings)
    built = gens.built(name)
    deadline = time.monotonic() + (wait if wait is not None else settings.of(IndexSettings).index_switch_poll + 45)
    while True:   # the workers let the old generation go a little after the switch
        try:
            open_generation(settings, name, built.dim if built else 1).close()
            break
        except IndexBusy:
            if time.monotonic() > deadline:
                raise ConfigError(f"generation {name} is still open in another process (a worker keeps the previous "
                                  "generation 30 s after a switch, for questions in flight); try again in a minute")
            time.sleep(1)
    gens.remove(name)
    echo(f"removed generation {name}")
