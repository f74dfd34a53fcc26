"""The worker's side: each task kind's handler (a Slack feature's, bot/features.py, or the
workers' own), ingestion and the sources' sync chains, the lease table, liveness, the gauges a
scrape reads, and the warm-up before the first question."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.features import FEATURES, handlers_of
from bot.questions.task import QUESTION
from chatops import metrics
from chatops_app.container.core import once
from chatops_app.tasks import TASKS
from usecases.gauges import refresh_worker_gauges
from workers.celery_app import Runtime, redelivery_window
from workers.health import Health, consumer_stale_after
from workers.inflight import InFlight
from workers.ingest_jobs import IngestJobs
from workers.ingest_tasks import IngestHandler, IngestTasks
from workers.source_tasks import SourceChains, SourceSyncHandler
from workers.tasks import INDEX_REBUILD, INGEST_BATCH, INGEST_PLAN, SOURCE_SYNC

if TYPE_CHECKING:
    from chatops_app.container import Container


class WorkerParts:
    def handler(self: Container, kind: str):
        """The handler of one task kind (workers.celery_app.Handler), built once: a Slack feature's
        (bot/features.py, from this container's services) or the workers' own."""
        name = f"handler:{kind}"
        built = self._built.get(name)
        if built is None:
            with self._lock:
                built = self._built.get(name)
                if built is None:
                    built = self._built[name] = self._new_handler(kind)
        return built

    def _new_handler(self: Container, kind: str):
        slack = handlers_of(FEATURES)
        if kind in slack:
            return slack[kind](self)
        return {INGEST_PLAN.kind: lambda: IngestHandler(self.ingest_tasks, INGEST_PLAN.kind),
                INGEST_BATCH.kind: lambda: IngestHandler(self.ingest_tasks, INGEST_BATCH.kind),
                SOURCE_SYNC.kind: lambda: self.source_sync_handler,
                INDEX_REBUILD.kind: self._rebuild_handler}[kind]()

    def _rebuild_handler(self: Container):
        from chatops_app.index_rebuild import RebuildHandler   # the embedding providers, the index

        return RebuildHandler(self.settings, self.index, self._http_client, dispatch=self.dispatch,
                              budget=max(60.0, self.settings.ingest_time_limit - 120.0))

    @once
    def ingest_jobs(self: Container) -> IngestJobs:
        return IngestJobs(self.redis, self.settings.key_prefix)

    @once
    def ingest_tasks(self: Container) -> IngestTasks:
        return IngestTasks(self.index, self.embedder, self.ingest_jobs, self.dispatch, groups=self.settings.group_names,
                           settings=self.settings)

    @once
    def sources_scheduler(self: Container) -> SourceChains:
        """Source syncs on the workers: started, or asked to run again (workers.source_tasks)."""
        return SourceChains(self.redis, self.settings.key_prefix, self.dispatch)

    @once
    def source_sync_handler(self: Container) -> SourceSyncHandler:
        return SourceSyncHandler(sync_for=self.sync, chains=self.sources_scheduler, budget=self.sync_budget,
                                 watch=self.watch_sources)

    @once
    def inflight(self: Container) -> InFlight:
        s = self.settings
        return InFlight(self.redis, s.key_prefix, task_key=TASKS.key, lease_ttl=s.task_lease_ttl,
                        done_ttl=redelivery_window(s))

    @once
    def health(self: Container) -> Health:
        s = self.settings
        return Health(self.redis, s.key_prefix, stale_after=consumer_stale_after(s.worker_stale_after))

    def runtime(self: Container) -> Runtime:
        return Runtime(tasks=TASKS, handler=self.handler, inflight=lambda: self.inflight, health=lambda: self.health)

    def refresh_worker_metrics(self: Container) -> None:
        """Gauges read when a worker is scraped: queue depth, the index's size, the sources' freshness."""
        refresh_worker_gauges(queue_depths=self.refresh_web_metrics, index_embedded=self.engine.embedded,
                              index_opened="index" in self._built, index_count=lambda: self.index.count(),
                              freshness=self.withheld if self.sources else None)

    def warm_up(self: Container) -> None:
        """Load the model and open the index before the first question, not during it."""
        self.embedder  # noqa: B018
        metrics.INDEX_POINTS.set(self.index.count())
        self.handler(QUESTION.kind)    # and everything a question needs
