"""The composition root: every service built from the settings, once, on first use.

The web process (``web_app``), the Socket Mode process (``bolt_app(socket_mode=True)``), the
worker (``worker_app``) and the CLI all start here; nothing else constructs a service. Each
extension point is looked up in its registry: identity providers
(``connectors.identity.registry``), index engines (``connectors.index.registry``), language
models (``connectors.llm.registry``), document sources (``connectors.sources.registry``) and
action connectors (``connectors.actions.registry``).

Services are built lazily and at most once per process, under one lock (a worker's threads
share the embedded index, which admits one opener, and the model).

The index, embedding, language-model and identity connectors are imported where they are
built, not at the top: the web process never builds them, and importing them would cost it
1.5 s and about 100 MB more per process (all imports: 2.45 s and 203 MB RSS; without those
four: 0.93 s and 105 MB, measured on this machine). These are the only function-level
imports of the project outside the CLI, whose commands import this module the same way
(``chatops --help`` 0.24 s instead of 3.3 s).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from typing import Any, Callable

import redis
import requests
from redis.backoff import NoBackoff
from redis.retry import Retry

from bot.app import build_app
from bot.channels import CachedChannelDirectory
from bot.gateway import SlackGateway, make_client
from bot.features import FEATURES, handlers_of
from bot.pacing import ChannelPacer
from bot.policies import ChannelPolicyLookup
from bot.questions.task import QUESTION
from bot.people import SlackPeople
from bot.graph_notify import graph_notify_route
from bot.settings import SlackSettings
from bot.web import create_web_app
from chatops import metrics, tracing
from chatops.catalogue import Catalogue
from chatops.errors import ConfigError
from chatops.progress import Progress
from chatops.settings import Settings
from chatops.state import State
from chatops.store import Store
from chatops.store.answers import Answers
from connectors.actions.base import ConnectorDeps
from connectors.actions.registry import connector_builder
from connectors.identity.cached import CachedProvider
from connectors.identity.entra_settings import EntraSettings
from connectors.identity.settings import IdentitySettings
from connectors.index.embedding_settings import EmbeddingSettings
from connectors.llm.settings import LLMSettings
from connectors.index.retriever import check_strategy
from connectors.identity.source_groups import WithSourceGroups
from connectors.identity.oidc import EntraSignIn
from console.app import ConsoleConfig, ConsoleDeps, console_alone, console_routes
from console.auth import Links, console_secret
from connectors.sources.registry import SourceContext, configured_sources, open_sync_source, source_id_of
from chatops.store.sources import SourceStates
from usecases import answer as answers
from usecases.answer_cache import AnswerCache
from usecases.answering import Answering
from usecases.ask import Pipeline
from usecases.budgets import BudgetGuard, RateLimit
from usecases.freshness import SourceStatus, Withheld, statuses
from usecases.notifications import client_state, notify_url
from usecases.proposals import ProposalService
from usecases.sync import Budget, Sync
from workers.celery_app import Runtime, create_celery, make_dispatch, redelivery_window
from workers.health import Health, queue_depths, web_status
from workers.inflight import InFlight
from workers.ingest_jobs import IngestJobs
from workers.ingest_tasks import IngestHandler, IngestTasks
from workers.source_tasks import SourceChains, SourceSyncHandler
from workers.tasks import INGEST_BATCH, INGEST_PLAN, SOURCE_SYNC
from chatops_app.tasks import TASKS

log = logging.getLogger(__name__)


def _once(build: Callable[["Container"], Any]) -> property:
    """A service built on first use, once, under the container's lock."""
    name = build.__name__

    @functools.wraps(build)
    def get(self: "Container"):
        built = self._built.get(name)
        if built is None:
            with self._lock:
                built = self._built.get(name)
                if built is None:
                    built = self._built[name] = build(self)
        return built
    return property(get)


class Container:
    def __init__(self, settings: Settings, *, http_client: requests.Session | None = None):
        self.settings = settings
        self._http_client = http_client  # requests.Session for msal, Graph and actions (tests route it)
        self._lock = threading.RLock()
        self._built: dict[str, Any] = {}
        tracing.setup(settings.otel_endpoint, service_name=settings.otel_service_name,
                      capture=settings.otel_capture_content)

    @property
    def http_client(self) -> requests.Session | None:
        """The session msal, Graph and the action connectors talk through (None: their own)."""
        return self._http_client

    # -- the core ------------------------------------------------------------------------

    @_once
    def redis(self) -> redis.Redis:
        # Fail fast: callers treat Redis as a cache or report the error; they never wait on it.
        return redis.Redis.from_url(self.settings.redis_url, socket_timeout=2, socket_connect_timeout=1,
                                    retry=Retry(NoBackoff(), 1))

    @_once
    def state(self) -> State:
        return State(self.redis, self.settings.key_prefix)

    @_once
    def store(self) -> Store:
        return Store.for_url(self.settings.resolved_database_url)

    def progress_for(self, kind: str, payload: dict) -> Progress:
        """The step record of one task (kept as long as the task can be delivered again)."""
        return Progress(self.redis, self.settings.key_prefix, TASKS.key(kind, payload),
                        redelivery_window(self.settings))

    # -- connectors ----------------------------------------------------------------------

    @_once
    def identity(self):
        from connectors.identity.registry import build_identity   # msal: not for the web process

        s = self.settings
        cached = CachedProvider(build_identity(s, self._http_client), self.redis, prefix=s.key_prefix,
                                ttl=s.of(IdentitySettings).identity_cache_ttl)
        # With synced sources, a person's groups include the sources' own groups they are in.
        return WithSourceGroups(cached, self.source_states) if self.sources else cached

    @_once
    def embedder(self):
        from connectors.index.embeddings import Embedder   # ONNX Runtime: workers and one-shot commands

        s = self.settings.of(EmbeddingSettings)
        return Embedder(s.embedding_model, s.embedding_path, batch_size=s.embedding_batch_size,
                        batch_tokens=s.embedding_batch_tokens)

    @property
    def engine(self):
        from connectors.index.registry import engine_for   # qdrant-client, Qdrant Edge

        return engine_for(self.settings)

    @_once
    def index(self):
        from connectors.index.registry import open_index

        return open_index(self.settings, self.embedder.dim, embedder=getattr(self.embedder, "name", None))

    @_once
    def llm(self):
        from connectors.llm.registry import build_llm   # the openai SDK

        return build_llm(self.settings)

    @_once
    def catalogue(self) -> Catalogue:
        s = self.settings
        if not s.file.actions:
            return Catalogue.empty(s.group_names)
        deps = ConnectorDeps(http=self._http_client or requests.Session(), secret=s.secret)
        return Catalogue.load(s.file.actions, connector_builder(deps), groups=s.group_names)

    @_once
    def sources(self) -> dict[str, dict]:
        """The ``sources:`` of CHATOPS_CONFIG, checked: {name: spec}."""
        return configured_sources(self.settings.file.sources, self.settings)

    @_once
    def source_ids(self) -> dict[str, tuple[str, str]]:
        """{name: (kind, index source id)} of the configured sources."""
        return {name: (spec["kind"], source_id_of(name, spec)) for name, spec in self.sources.items()}

    @_once
    def source_states(self) -> SourceStates:
        return SourceStates(self.store)

    def open_sync_source(self, name: str):
        """A configured source, opened to sync (its connector talks to the source)."""
        if name not in self.sources:
            known = ", ".join(sorted(self.sources)) or "none configured"
            raise ConfigError(f"no source named {name!r} in CHATOPS_CONFIG (sources: {known})")
        context = SourceContext(groups=self.settings.group_names, settings=self.settings, http=self._http_client)
        return open_sync_source(name, self.sources[name], context)

    def sync(self, name: str, *, progress: bool = False) -> Sync:
        """The sync of one configured source against this process's index and store (the source
        is opened once per process: a SharePoint source keeps its drives and its token)."""
        s = self.settings
        with self._lock:
            opened = self._built.setdefault("opened_sources", {})
            if name not in opened:
                opened[name] = self.open_sync_source(name)
            source = opened[name]
        return Sync(source, self.source_states, self.index, self.embedder,
                    kind=self.sources[name]["kind"], batch_chunks=s.ingest_batch_chunks, progress=progress)

    def sync_budget(self) -> Budget:
        return Budget(items=self.settings.sync_window_items, seconds=self.settings.sync_window_seconds)

    def source_statuses(self, now=None) -> list[SourceStatus]:
        return statuses(self.source_states, self.source_ids, max_acl_age=self.settings.max_acl_age, now=now)

    @property
    def notifications_configured(self) -> bool:
        """Graph change notifications are set up (and a source can use them)."""
        s = self.settings
        return bool(s.public_url and s.of(EntraSettings).graph_notify_secret and
                    any(spec["kind"] == "sharepoint" for spec in self.sources.values()))

    def watch_sources(self, name: str = "*") -> dict[str, dict]:
        """Create and renew the Graph subscriptions of one source ("*": every source that can)."""
        s = self.settings
        if not self.notifications_configured:
            return {}
        out = {}
        for source_name in sorted(self.sources) if name == "*" else [name]:
            source = self.open_sync_source(source_name)
            if hasattr(source, "watch"):
                out[source_name] = source.watch(notify_url(s.public_url, source_name),
                                                client_state(s.of(EntraSettings).graph_notify_secret.get_secret_value(),
                                                             source_name))
        return out

    @_once
    def withheld(self) -> Withheld:
        return Withheld(self.source_states, self.source_ids, max_acl_age=self.settings.max_acl_age)

    # -- use cases -----------------------------------------------------------------------

    @_once
    def proposals(self) -> ProposalService:
        return ProposalService(self.store, self.catalogue, identity=self.identity)

    def pipeline(self, *, with_slack: bool = True) -> Pipeline:
        s = self.settings
        return Pipeline(identity=self.identity, index=self.index, embedder=self.embedder, llm=self.llm,
                        top_k=s.top_k, candidates=s.candidates, max_members=s.channel_max_members,
                        min_similarity=s.min_similarity, catalogue=self.catalogue,
                        strategy=check_strategy(s.retrieval), dense_weight=s.dense_weight,
                        directory=self.channel_directory if with_slack else None,
                        withheld=self.withheld if self.sources else None,
                        small_model=s.of(LLMSettings).llm_model_small if self.llm is not None else None,
                        route_min_similarity=s.route_min_similarity, route_margin=s.route_margin,
                        prices=s.prices, budgets=self.budgets, cache=self.answer_cache)

    @_once
    def budgets(self) -> BudgetGuard | None:
        guard = BudgetGuard(self.redis, self.settings.key_prefix, self.settings.budgets)
        return guard if guard.active else None

    @_once
    def rate_limit(self) -> RateLimit | None:
        per_minute = self.settings.budgets.questions_per_minute
        return RateLimit(self.redis, self.settings.key_prefix, per_minute) if per_minute else None

    @_once
    def answer_cache(self) -> AnswerCache | None:
        s = self.settings
        if s.cache_ttl <= 0:
            return None
        return AnswerCache(self.redis, s.key_prefix, ttl=s.cache_ttl, version=self.answer_version, index=self.index)

    @property
    def answer_version(self) -> str:
        """Everything that shapes an answer besides the documents: a change starts a new cache."""
        s, llm = self.settings, self.settings.of(LLMSettings)
        parts = (llm.llm_model, llm.llm_model_small, s.route_min_similarity, s.route_margin, answers.SYSTEM_PROMPT,
                 s.top_k, s.candidates, s.min_similarity, s.retrieval, s.dense_weight,
                 s.of(EmbeddingSettings).embedding_model, llm.llm_max_tokens, bool(self.llm))
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]

    @_once
    def answers(self) -> Answers:
        return Answers(self.store)

    @_once
    def channel_policies(self) -> ChannelPolicyLookup:
        return ChannelPolicyLookup(self.settings.channel_policies, self.gateway, self.state)

    @_once
    def answering(self) -> Answering:
        return Answering(self.pipeline(), self.store, self.proposals)

    def answering_without_slack(self) -> Answering:
        """For ``chatops ask`` without ``--channel``: no Slack token needed."""
        return Answering(self.pipeline(with_slack=False), self.store, self.proposals)

    # -- Slack ---------------------------------------------------------------------------

    @_once
    def gateway(self) -> SlackGateway | None:
        slack = self.settings.of(SlackSettings)
        if not slack.slack_bot_token:
            return None
        return SlackGateway(make_client(slack.slack_bot_token.get_secret_value(), slack.slack_api_url),
                            pacer=ChannelPacer(self.redis, self.settings.key_prefix, slack.slack_channel_pace,
                                              burst=slack.slack_channel_burst))

    @_once
    def people(self) -> SlackPeople | None:
        """Slack users as the directory needs them (None without a Slack token)."""
        if self.gateway is None:
            return None
        slack = self.settings.of(SlackSettings)
        return SlackPeople(self.gateway, self.state, team_ids=slack.slack_team_ids, guests=slack.slack_guests,
                           ttl=self.settings.of(IdentitySettings).identity_cache_ttl, trusted_bots=slack.trusted_bots)

    @_once
    def channel_directory(self) -> CachedChannelDirectory | None:
        if self.gateway is None:
            return None
        return CachedChannelDirectory(self.gateway, self.people, self.state, ttl=self.settings.channel_cache_ttl)

    @_once
    def celery(self):
        return create_celery(self.settings)

    @_once
    def dispatch(self) -> Callable[[str, dict], None]:
        """Hands a task to the workers (the web process, the CLI, the ingest planner)."""
        return make_dispatch(self.celery, self.settings, TASKS)

    def bolt_app(self, *, socket_mode: bool = False):
        return build_app(self.settings, state=self.state, dispatch=self.dispatch, socket_mode=socket_mode,
                         rate=self.rate_limit)

    def web_app(self):
        """The web process: POST /slack/events, /healthz, /livez. Fails at start-up on bad settings."""
        s = self.settings
        self.catalogue  # noqa: B018 - an invalid action catalogue stops the start, with its reason
        self.sources  # noqa: B018 - so do invalid sources
        bolt = self.bolt_app()

        def ready():
            try:
                self.redis.ping()
                return web_status(self.redis, s.key_prefix, s.queue_name, s.worker_stale_after)
            except Exception as exc:  # noqa: BLE001
                return False, f"redis unavailable: {type(exc).__name__}"

        routes = ()
        if self.notifications_configured:
            routes = (graph_notify_route(secret=s.of(EntraSettings).graph_notify_secret.get_secret_value(),
                                         sources=frozenset(self.sources), ask=self.request_sync,
                                         max_body_bytes=s.max_body_bytes),)
        routes = (*routes, *self.console_routes())
        return create_web_app(bolt, ready=ready, max_body_bytes=s.max_body_bytes,
                              metrics_token=s.metrics_token.get_secret_value() if s.metrics_token else None,
                              signing_secret=s.of(SlackSettings).slack_signing_secret.get_secret_value(), routes=routes,
                              refresh_metrics=self.refresh_web_metrics, can_queue=self.redis.ping)

    def refresh_web_metrics(self) -> None:
        """Gauges read when the web process is scraped: queue depth."""
        s = self.settings
        queue_depths(self.redis, (s.queue_name, s.ingest_queue))

    def refresh_worker_metrics(self) -> None:
        """Gauges read when a worker is scraped: queue depth, the index's size, the sources' freshness."""
        self.refresh_web_metrics()
        if not self.engine.embedded or "index" in self._built:
            # an embedded index is opened by the process that answers (a pool process, with prefork):
            # never here only for this; that process set the gauge when it opened it (warm_up)
            metrics.INDEX_POINTS.set(self.index.count())
        if self.sources:
            self.withheld()   # sets each source's ACL age and staleness (read at most every 10 s)

    # -- the operator console (/admin) ----------------------------------------------------

    @_once
    def console_sign_in(self) -> EntraSignIn | None:
        """Signing in to the console with Entra; None where Entra is not configured (then links)."""
        s = self.settings
        return EntraSignIn.from_settings(s, self._http_client) if s.of(EntraSettings).configured else None

    def console_routes(self) -> tuple:
        """/admin (console/app.py) and what it reads; the store is opened on the first page view."""
        s = self.settings
        config = ConsoleConfig(base_url=s.console_url, key_prefix=s.key_prefix, session_ttl=s.admin_session_ttl,
                               privacy=s.console_privacy, admin_groups=s.admin_groups,
                               admin_secret=s.admin_secret.get_secret_value() if s.admin_secret else None,
                               queues=(s.queue_name, s.ingest_queue), worker_stale_after=s.worker_stale_after)
        return console_routes(ConsoleDeps(config=config, redis=self.redis, store=lambda: self.store,
                                          answers=lambda: self.answers, source_statuses=self.source_statuses,
                                          sign_in=self.console_sign_in))

    def console_app(self):
        """The console on its own (`chatops admin serve`): /admin and /livez, no Slack."""
        return console_alone(self.console_routes())

    def console_link(self, person: str, ttl: int) -> str:
        """A one-time sign-in link to the console for ``person`` (`chatops admin link --as`); only where Entra
        is not configured."""
        s = self.settings
        if s.of(EntraSettings).configured:
            raise ConfigError("the console signs people in with Microsoft here (ENTRA_TENANT_ID and ENTRA_CLIENT_ID "
                              f"are set): open {s.console_url}/admin/ and sign in")
        secret = console_secret(self.redis, s.key_prefix, s.admin_secret.get_secret_value() if s.admin_secret else None)
        return Links(secret, self.redis, s.key_prefix).url(s.console_url, person, ttl)

    def request_sync(self, source: str, mode: str) -> None:
        """Ask the workers for a sync of a source (or, mode "subscriptions", its subscriptions)."""
        self.dispatch(SOURCE_SYNC.kind, {"source": source, "mode": mode, "chain": None})

    # -- the worker's handlers -------------------------------------------------------------

    def handler(self, kind: str):
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

    def _new_handler(self, kind: str):
        slack = handlers_of(FEATURES)
        if kind in slack:
            return slack[kind](self)
        return {INGEST_PLAN.kind: lambda: IngestHandler(self.ingest_tasks, INGEST_PLAN.kind),
                INGEST_BATCH.kind: lambda: IngestHandler(self.ingest_tasks, INGEST_BATCH.kind),
                SOURCE_SYNC.kind: lambda: self.source_sync_handler}[kind]()

    @_once
    def ingest_jobs(self) -> IngestJobs:
        return IngestJobs(self.redis, self.settings.key_prefix)

    @_once
    def ingest_tasks(self) -> IngestTasks:
        return IngestTasks(self.index, self.embedder, self.ingest_jobs, self.dispatch, groups=self.settings.group_names,
                           settings=self.settings)

    @_once
    def sources_scheduler(self) -> SourceChains:
        """Source syncs on the workers: started, or asked to run again (workers.source_tasks)."""
        return SourceChains(self.redis, self.settings.key_prefix, self.dispatch)

    @_once
    def source_sync_handler(self) -> SourceSyncHandler:
        return SourceSyncHandler(sync_for=self.sync, chains=self.sources_scheduler, budget=self.sync_budget,
                                 watch=self.watch_sources)

    @_once
    def inflight(self) -> InFlight:
        s = self.settings
        return InFlight(self.redis, s.key_prefix, task_key=TASKS.key, lease_ttl=s.task_lease_ttl,
                        done_ttl=redelivery_window(s))

    @_once
    def health(self) -> Health:
        s = self.settings
        return Health(self.redis, s.key_prefix, stale_after=max(3 * 5.0, s.worker_stale_after / 2))

    def runtime(self) -> Runtime:
        return Runtime(tasks=TASKS, handler=self.handler, inflight=lambda: self.inflight, health=lambda: self.health)

    def warm_up(self) -> None:
        """Load the model and open the index before the first question, not during it."""
        self.embedder  # noqa: B018
        metrics.INDEX_POINTS.set(self.index.count())
        self.handler(QUESTION.kind)    # and everything a question needs

    # -- lifecycle -----------------------------------------------------------------------

    def release_embedder(self) -> None:
        """Drop the embedding model and hand its memory back to the system (the next use loads
        it again). The model keeps its largest working set for as long as it lives: the one-shot
        ingest releases it before ``optimize()``, which needs its own."""
        from connectors.index.embeddings import release_free_memory

        with self._lock:
            if self._built.pop("embedder", None) is not None:
                release_free_memory()

    def close(self) -> None:
        for name in ("index", "store", "redis"):
            service = self._built.get(name)
            if service is not None:
                service.close()
