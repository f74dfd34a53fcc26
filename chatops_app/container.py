"""The composition root: builds each service from the settings, once, on first use."""

from __future__ import annotations

import threading
from functools import cached_property

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from chatops.settings import ConfigError, Settings
from chatops.state import State


class Container:
    def __init__(self, settings: Settings, *, http_client=None):
        self.settings = settings
        self._http_client = http_client  # requests.Session for msal + Graph (tests route it)
        self._lock = threading.RLock()

    @cached_property
    def redis(self) -> redis.Redis:
        # Fail fast: callers treat Redis as a cache or report the error; they never wait on it.
        return redis.Redis.from_url(self.settings.redis_url, socket_timeout=2, socket_connect_timeout=1,
                                    retry=Retry(NoBackoff(), 1))

    @cached_property
    def state(self) -> State:
        return State(self.redis, self.settings.key_prefix)

    @cached_property
    def gateway(self):
        from bot.gateway import SlackGateway, make_client

        token = self.settings.slack_bot_token
        if not token:
            return None
        return SlackGateway(make_client(token.get_secret_value(), self.settings.slack_api_url))

    @cached_property
    def people(self):
        """Slack users as the directory sees them (None without a Slack token)."""
        from bot.people import SlackPeople

        if self.gateway is None:
            return None
        return SlackPeople(self.gateway, self.state, team_ids=self.settings.slack_team_ids,
                           guests=self.settings.slack_guests, ttl=self.settings.identity_cache_ttl)

    @cached_property
    def identity(self):
        from connectors.identity.cached import CachedProvider

        s = self.settings
        kind = s.resolved_identity_provider
        if kind == "entra":
            from connectors.identity.entra import EntraProvider

            if not (s.entra_tenant_id and s.entra_client_id and s.entra_client_secret):
                raise ConfigError("Entra needs ENTRA_TENANT_ID, ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET")
            inner = EntraProvider(
                s.entra_tenant_id, s.entra_client_id, s.entra_client_secret.get_secret_value(),
                authority_host=s.entra_authority_host, graph_url=s.graph_url,
                instance_discovery=s.entra_instance_discovery,
                http_client=self._http_client,
            )
        else:
            from connectors.identity.directory import DirectoryProvider

            if not s.directory_file:
                raise ConfigError("the directory provider needs CHATOPS_DIRECTORY_FILE")
            inner = DirectoryProvider.from_file(s.directory_file, groups=s.group_names)
        return CachedProvider(inner, self.redis, prefix=s.key_prefix, ttl=s.identity_cache_ttl)

    @cached_property
    def embedder(self):
        from connectors.index.embeddings import Embedder

        return Embedder(self.settings.embedding_model, self.settings.embedding_path,
                        batch_size=self.settings.embedding_batch_size,
                        batch_tokens=self.settings.embedding_batch_tokens)

    @cached_property
    def index(self):
        from connectors.index.qdrant_index import QdrantIndex

        s = self.settings
        if not s.qdrant_url and s.index_engine == "edge":
            from connectors.index.edge_index import EdgeIndex

            return EdgeIndex(path=s.index_path, dim=self.embedder.dim)
        return QdrantIndex(
            collection=s.collection, dim=self.embedder.dim, url=s.qdrant_url,
            path=None if s.qdrant_url else s.index_path,
            api_key=s.qdrant_api_key.get_secret_value() if s.qdrant_api_key else None,
        )

    @cached_property
    def llm(self):
        s = self.settings
        if not s.llm_configured:
            return None
        from connectors.llm.openai_llm import OpenAILLM

        return OpenAILLM(model=s.llm_model,
                         api_key=s.openai_api_key.get_secret_value() if s.openai_api_key else None,
                         base_url=s.openai_base_url, timeout=s.llm_timeout,
                         max_retries=s.llm_max_retries, max_tokens=s.llm_max_tokens)

    @cached_property
    def store(self):
        from chatops.store import Store

        return Store.for_url(self.settings.resolved_database_url)

    @cached_property
    def catalogue(self):
        import requests

        from chatops.catalogue import Catalogue
        from connectors.actions.base import ConnectorDeps
        from connectors.actions.registry import connector_builder

        actions = self.settings.file.actions
        if not actions:
            return Catalogue.empty(self.settings.group_names)
        deps = ConnectorDeps(http=self._http_client or requests.Session(), secret=self.settings.secret)
        return Catalogue.load(actions, connector_builder(deps), groups=self.settings.group_names)

    @cached_property
    def proposals(self):
        from usecases.proposals import ProposalService

        return ProposalService(self.store, self.catalogue, identity=self.identity)

    def pipeline(self, *, with_slack: bool = True):
        from usecases.ask import Pipeline

        s = self.settings
        return Pipeline(identity=self.identity, index=self.index, embedder=self.embedder, llm=self.llm,
                        top_k=s.top_k, candidates=s.candidates, max_members=s.channel_max_members,
                        min_similarity=s.min_similarity, catalogue=self.catalogue,
                        strategy=s.retrieval, dense_weight=s.dense_weight,
                        directory=self.channel_directory() if with_slack else None)

    def channel_directory(self):
        from bot.channels import CachedChannelDirectory

        if self.gateway is None:
            return None
        return CachedChannelDirectory(self.gateway, self.people, self.state, ttl=self.settings.channel_cache_ttl)

    def release_embedder(self) -> None:
        """Drop the embedding model and hand its memory back to the system (the next use loads
        it again). The model keeps its largest working set for as long as it lives: the one-shot
        ingest releases it before ``optimize()``, which needs its own."""
        from connectors.index.embeddings import release_free_memory

        if self.__dict__.pop("embedder", None) is not None:
            release_free_memory()

    def close(self) -> None:
        if "index" in self.__dict__:
            self.index.close()
        if "store" in self.__dict__:
            self.store.close()
        if "redis" in self.__dict__:
            self.redis.close()
