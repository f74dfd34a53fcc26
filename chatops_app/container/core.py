"""The core services: the settings, Redis, the state, the store, a task's step record, Celery,
the action catalogue; and ``once``, how every service is built at most once per process."""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable

import redis
import requests
from redis.backoff import NoBackoff
from redis.retry import Retry

from chatops import tracing
from chatops.catalogue import Catalogue
from chatops.progress import Progress
from chatops.settings import Settings
from chatops.state import State
from chatops.store import Store
from chatops_app.tasks import TASKS
from connectors.actions.base import ConnectorDeps
from connectors.actions.registry import connector_builder
from workers.celery_app import create_celery, make_dispatch, redelivery_window


def once(build: Callable[[Any], Any]) -> property:
    """A service built on first use, once, under the container's lock."""
    name = build.__name__

    @functools.wraps(build)
    def get(self: Core) -> Any:
        built = self._built.get(name)
        if built is None:
            with self._lock:
                built = self._built.get(name)
                if built is None:
                    built = self._built[name] = build(self)
        return built
    return property(get)


class Core:
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

    @once
    def redis(self) -> redis.Redis:
        # Fail fast: callers treat Redis as a cache or report the error; they never wait on it.
        return redis.Redis.from_url(self.settings.redis_url, socket_timeout=2, socket_connect_timeout=1,
                                    retry=Retry(NoBackoff(), 1))

    @once
    def state(self) -> State:
        return State(self.redis, self.settings.key_prefix)

    @once
    def store(self) -> Store:
        return Store.for_url(self.settings.resolved_database_url)

    def progress_for(self, kind: str, payload: dict) -> Progress:
        """The step record of one task (kept as long as the task can be delivered again)."""
        return Progress(self.redis, self.settings.key_prefix, TASKS.key(kind, payload),
                        redelivery_window(self.settings))

    @once
    def catalogue(self) -> Catalogue:
        s = self.settings
        if not s.file.actions:
            return Catalogue.empty(s.group_names)
        deps = ConnectorDeps(http=self._http_client or requests.Session(), secret=s.secret)
        return Catalogue.load(s.file.actions, connector_builder(deps), groups=s.group_names)

    @once
    def celery(self):
        return create_celery(self.settings)

    @once
    def dispatch(self) -> Callable[[str, dict], None]:
        """Hands a task to the workers (the web process, the CLI, the ingest planner)."""
        return make_dispatch(self.celery, self.settings, TASKS)

    def close(self) -> None:
        for name in ("index", "store", "redis"):
            service = self._built.pop(name, None)
            if service is not None:
                service.close()
