"""The configured sources (``sources:`` of CHATOPS_CONFIG, through their registry): opened to
sync, their syncs and statuses, what is withheld while their permissions are stale, and Graph's
change notifications (the rules: ``usecases/subscriptions.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatops.errors import ConfigError
from chatops.store.sources import SourceStates
from chatops_app.container.core import once
from connectors.microsoft.settings import EntraSettings
from connectors.sources.registry import SourceContext, configured_sources, open_sync_source, source_id_of
from usecases.freshness import SourceStatus, Withheld, statuses
from usecases.subscriptions import notifications_ready, renew_subscriptions
from usecases.sync import Budget, Sync
from workers.tasks import SOURCE_SYNC

if TYPE_CHECKING:
    from chatops_app.container import Container


class SourceParts:
    @once
    def sources(self: Container) -> dict[str, dict]:
        """The ``sources:`` of CHATOPS_CONFIG, checked: {name: spec}."""
        return configured_sources(self.settings.file.sources, self.settings)

    @once
    def source_ids(self: Container) -> dict[str, tuple[str, str]]:
        """{name: (kind, index source id)} of the configured sources."""
        return {name: (spec["kind"], source_id_of(name, spec)) for name, spec in self.sources.items()}

    @once
    def source_states(self: Container) -> SourceStates:
        return SourceStates(self.store)

    def open_sync_source(self: Container, name: str):
        """A configured source, opened to sync (its connector talks to the source)."""
        if name not in self.sources:
            known = ", ".join(sorted(self.sources)) or "none configured"
            raise ConfigError(f"no source named {name!r} in CHATOPS_CONFIG (sources: {known})")
        context = SourceContext(groups=self.settings.group_names, settings=self.settings, http=self._http_client)
        return open_sync_source(name, self.sources[name], context)

    def sync(self: Container, name: str, *, progress: bool = False) -> Sync:
        """The sync of one configured source against this process's index and store (the source
        is opened once per process: a SharePoint source keeps its drives and its token)."""
        s = self.settings
        return Sync(self.opened_source(name), self.source_states, self.index, self.embedder,
                    kind=self.sources[name]["kind"], batch_chunks=s.ingest_batch_chunks, progress=progress)

    def opened_source(self: Container, name: str):
        """A configured source, opened once per process (a sync and a live tool share it)."""
        with self._lock:
            opened = self._built.setdefault("opened_sources", {})
            if name not in opened:
                opened[name] = self.open_sync_source(name)
            return opened[name]

    def sync_budget(self: Container) -> Budget:
        return Budget(items=self.settings.sync_window_items, seconds=self.settings.sync_window_seconds)

    def source_statuses(self: Container, now=None) -> list[SourceStatus]:
        return statuses(self.source_states, self.source_ids, max_acl_age=self.settings.max_acl_age, now=now)

    @once
    def withheld(self: Container) -> Withheld:
        return Withheld(self.source_states, self.source_ids, max_acl_age=self.settings.max_acl_age)

    @property
    def notify_secret(self: Container) -> str | None:
        """GRAPH_NOTIFY_SECRET, which signs the subscriptions' clientState (None: unset)."""
        secret = self.settings.of(EntraSettings).graph_notify_secret
        return secret.get_secret_value() if secret else None

    @property
    def notifications_configured(self: Container) -> bool:
        """Graph change notifications are set up (and a source can use them)."""
        return notifications_ready(self.settings.public_url, self.notify_secret, self.sources.values())

    def watch_sources(self: Container, name: str = "*") -> dict[str, dict]:
        """Create and renew the Graph subscriptions of one source ("*": every source that can)."""
        return renew_subscriptions(name, self.sources, self.open_sync_source, public_url=self.settings.public_url,
                                   secret=self.notify_secret)

    def request_sync(self: Container, source: str, mode: str) -> None:
        """Ask the workers for a sync of a source (or, mode "subscriptions", its subscriptions)."""
        self.dispatch(SOURCE_SYNC.kind, {"source": source, "mode": mode, "chain": None})
