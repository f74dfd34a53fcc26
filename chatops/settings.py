"""The one typed settings object.

Built once at process start (``Settings.load()``) and passed in to whatever
needs it; nothing else in the code base reads ``os.environ``. Secrets come
from the environment only and are kept as ``SecretStr`` so they never end up
in a repr, a log line or an error message.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (AliasChoices, BaseModel, Field, PrivateAttr, SecretStr, ValidationError, field_validator,
                      model_validator)
from pydantic_settings import BaseSettings, SettingsConfigDict

from chatops.channels import ChannelConfig, ChannelPolicies
from chatops.costs import Budgets, ModelPrice, PriceTable
from chatops.errors import ConfigError
from chatops.groups import GroupNames

__all__ = ["ConfigError", "GroupNames", "Settings", "FileConfig"]


def _env(name: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(name))


class FileConfig(BaseModel):
    """Structured settings from the ``CHATOPS_CONFIG`` YAML file.

    Unknown top-level keys are rejected so a typo is an error, not a silent
    default. Later capabilities (actions, sources) add their sections here.
    """

    model_config = {"extra": "forbid"}

    # Readable names for groups -> the identity provider's group ids (chatops/groups.py).
    groups: dict[str, str] = Field(default_factory=dict)
    actions: list[dict[str, Any]] = Field(default_factory=list)
    sources: list[dict[str, Any]] = Field(default_factory=list)
    # Prices per 1,000 tokens by model name (chatops/costs.py), budgets, per-channel behaviour
    # (chatops/channels.py).
    models: dict[str, ModelPrice] = Field(default_factory=dict)
    budgets: Budgets = Field(default_factory=Budgets)
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", env_ignore_empty=True)

    # Slack
    slack_bot_token: SecretStr | None = _env("SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = _env("SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = _env("SLACK_APP_TOKEN")
    slack_api_url: str = Field(
        default="https://slack.com/api/", validation_alias=AliasChoices("SLACK_API_URL")
    )
    # Only events and clicks for this app (``api_app_id``) and these workspaces are handled; people
    # of other workspaces (Slack Connect) are strangers. Teams default to the bot token's own.
    slack_app_id: str | None = _env("SLACK_APP_ID")
    slack_team_ids_raw: str | None = Field(default=None,
                                           validation_alias=AliasChoices("SLACK_TEAM_IDS", "SLACK_TEAM_ID"))
    # Guests (Slack's is_restricted / is_ultra_restricted): "directory" resolves them like anyone
    # else, through the directory (a guest it does not know sees nothing private); "unknown"
    # treats every guest as unknown (public documents only).
    slack_guests: Literal["directory", "unknown"] = Field(
        default="directory", validation_alias=AliasChoices("CHATOPS_SLACK_GUESTS"))
    # Apps and bots in a channel read its answers: each counts as an unknown member (public documents
    # only) unless its bot id (B…) or app id (A…) is listed here, comma-separated, and it belongs to
    # our own workspaces. Another organisation's app is never trusted; chatops' own bot is left out.
    trusted_bots_raw: str | None = _env("CHATOPS_TRUSTED_BOTS")
    # Request bodies above this many bytes are refused with 413 before they are read.
    max_body_bytes: int = Field(default=1_048_576, ge=1024, validation_alias=AliasChoices("CHATOPS_MAX_BODY_BYTES"))

    # Slack takes about one message per second per channel, with short bursts: new messages to one
    # channel, across every worker, go out ``burst`` at once, then one per ``pace`` seconds (0: not paced).
    slack_channel_pace: float = Field(default=1.0, ge=0, validation_alias=AliasChoices("CHATOPS_SLACK_CHANNEL_PACE"))
    slack_channel_burst: int = Field(default=3, ge=1, validation_alias=AliasChoices("CHATOPS_SLACK_CHANNEL_BURST"))

    # Queue and shared state
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0", validation_alias=AliasChoices("REDIS_URL")
    )
    queue_name: str = Field(default="chatops", validation_alias=AliasChoices("CHATOPS_QUEUE"))
    key_prefix: str = Field(default="chatops", validation_alias=AliasChoices("CHATOPS_KEY_PREFIX"))

    # Vector index
    qdrant_url: str | None = _env("QDRANT_URL")
    qdrant_path: Path | None = _env("QDRANT_PATH")
    qdrant_api_key: SecretStr | None = _env("QDRANT_API_KEY")
    collection: str = Field(default="chatops", validation_alias=AliasChoices("CHATOPS_COLLECTION"))
    # The embedded engine when QDRANT_URL is not set (connectors/index/registry.py): "edge" (Qdrant's
    # own engine in-process: HNSW, payload indexes) or "local" (qdrant-client's local mode).
    index_engine: str = Field(default="edge", validation_alias=AliasChoices("CHATOPS_INDEX_ENGINE"))

    # Embeddings
    # A fastembed model name; unset: the index connector's default (all-MiniLM-L6-v2, shipped offline).
    embedding_model: str | None = _env("CHATOPS_EMBEDDING_MODEL")
    embedding_path: Path | None = _env("CHATOPS_EMBEDDING_PATH")
    embedding_batch_size: int = Field(
        default=32, ge=1, validation_alias=AliasChoices("CHATOPS_EMBEDDING_BATCH_SIZE")
    )
    # Padded word pieces per batch (see connectors.index.embeddings.token_batches): bounds the
    # model's working memory, which ONNX Runtime keeps at its high-water mark.
    embedding_batch_tokens: int = Field(
        default=2048, ge=1, validation_alias=AliasChoices("CHATOPS_EMBEDDING_BATCH_TOKENS")
    )

    # LLM
    openai_api_key: SecretStr | None = _env("OPENAI_API_KEY")
    openai_base_url: str | None = _env("OPENAI_BASE_URL")
    llm_model: str = Field(default="gpt-4o-mini", validation_alias=AliasChoices("CHATOPS_LLM_MODEL"))
    llm_provider: str = Field(default="openai", validation_alias=AliasChoices("CHATOPS_LLM_PROVIDER"))
    llm_timeout: float = Field(default=60.0, validation_alias=AliasChoices("CHATOPS_LLM_TIMEOUT"))
    llm_max_tokens: int = Field(default=800, validation_alias=AliasChoices("CHATOPS_LLM_MAX_TOKENS"))
    llm_max_retries: int = Field(default=2, validation_alias=AliasChoices("CHATOPS_LLM_MAX_RETRIES"))
    # A smaller, cheaper model for questions one document answers with confidence: the best
    # document's similarity at least CHATOPS_ROUTE_MIN_SIMILARITY and CHATOPS_ROUTE_MARGIN ahead of
    # the next one. Unset: every question goes to CHATOPS_LLM_MODEL.
    llm_model_small: str | None = _env("CHATOPS_LLM_MODEL_SMALL")
    route_min_similarity: float = Field(default=0.6, ge=0, le=1,
                                        validation_alias=AliasChoices("CHATOPS_ROUTE_MIN_SIMILARITY"))
    route_margin: float = Field(default=0.1, ge=0, le=1, validation_alias=AliasChoices("CHATOPS_ROUTE_MARGIN"))
    # The daily report (chatops beat): posted to this Slack channel id at this hour (UTC); without a
    # channel it is only logged (the console and chatops report show the same numbers).
    report_channel: str | None = _env("CHATOPS_REPORT_CHANNEL")
    report_hour: int = Field(default=8, ge=0, le=23, validation_alias=AliasChoices("CHATOPS_REPORT_HOUR"))
    # The answer cache (usecases/answer_cache.py): seconds an answer may be served again to the same
    # audience (0: no cache).
    cache_ttl: int = Field(default=3600, ge=0, validation_alias=AliasChoices("CHATOPS_CACHE_TTL"))

    # Identity
    # "auto" (Entra when its settings are there, else the directory file) or a provider's name
    # (connectors/identity/registry.py).
    identity_provider: str = Field(default="auto", validation_alias=AliasChoices("CHATOPS_IDENTITY_PROVIDER"))
    directory_file: Path | None = _env("CHATOPS_DIRECTORY_FILE")
    entra_tenant_id: str | None = _env("ENTRA_TENANT_ID")
    entra_client_id: str | None = _env("ENTRA_CLIENT_ID")
    entra_client_secret: SecretStr | None = _env("ENTRA_CLIENT_SECRET")
    entra_authority_host: str = Field(
        default="https://login.microsoftonline.com",
        validation_alias=AliasChoices("ENTRA_AUTHORITY_HOST"),
    )
    graph_url: str = Field(
        default="https://graph.microsoft.com/v1.0", validation_alias=AliasChoices("GRAPH_URL")
    )
    # False for an authority msal does not know (a sovereign cloud, a proxy, a test double): msal
    # then never asks Microsoft's public instance discovery. TLS trust: REQUESTS_CA_BUNDLE.
    entra_instance_discovery: bool = Field(default=True,
                                           validation_alias=AliasChoices("ENTRA_INSTANCE_DISCOVERY"))
    identity_cache_ttl: int = Field(default=900, validation_alias=AliasChoices("CHATOPS_IDENTITY_TTL"))
    # A certificate for the Entra app (PEM with the private key and the certificate, or a .pfx):
    # used instead of the secret when set. SharePoint sources need it: SharePoint's REST API (site
    # group members) refuses app-only tokens obtained with a client secret.
    entra_client_certificate_path: Path | None = _env("ENTRA_CLIENT_CERTIFICATE_PATH")
    entra_client_certificate_password: SecretStr | None = _env("ENTRA_CLIENT_CERTIFICATE_PASSWORD")

    # Document sources (the sources: of CHATOPS_CONFIG): how often the scheduler (chatops beat)
    # syncs each one's content, permissions and everything (seconds), how much one window of a
    # sync does before it hands the queue back, and how old a source's last complete permission
    # pass may be before its restricted documents are withheld from answers.
    sync_changes_every: float = Field(default=300, gt=0, validation_alias=AliasChoices("CHATOPS_SYNC_CHANGES_EVERY"))
    sync_permissions_every: float = Field(default=900, gt=0,
                                          validation_alias=AliasChoices("CHATOPS_SYNC_PERMISSIONS_EVERY"))
    sync_full_every: float = Field(default=86400, gt=0, validation_alias=AliasChoices("CHATOPS_SYNC_FULL_EVERY"))
    sync_window_items: int = Field(default=500, ge=1, validation_alias=AliasChoices("CHATOPS_SYNC_WINDOW_ITEMS"))
    sync_window_seconds: float = Field(default=60, gt=0, validation_alias=AliasChoices("CHATOPS_SYNC_WINDOW_SECONDS"))
    max_acl_age: float = Field(default=86400, gt=0, validation_alias=AliasChoices("CHATOPS_MAX_ACL_AGE"))
    # Throttled by a source (429/503): wait what Retry-After says, for the whole source, up to this
    # many seconds in one window; past it the window stops and the next one resumes.
    source_max_throttle_wait: float = Field(default=120, ge=0,
                                            validation_alias=AliasChoices("CHATOPS_SOURCE_MAX_THROTTLE_WAIT"))
    # The text taken from one document (characters, headings included); the rest is left out.
    max_document_chars: int = Field(default=2_000_000, ge=1000,
                                    validation_alias=AliasChoices("CHATOPS_MAX_DOCUMENT_CHARS"))
    # Each file is parsed in a child process with at most this much CPU time (seconds) and memory
    # (MB, the file's bytes included); past either the file is skipped, never the worker.
    parse_timeout: float = Field(default=60, gt=0, validation_alias=AliasChoices("CHATOPS_PARSE_TIMEOUT"))
    parse_memory_mb: int = Field(default=1024, ge=64, validation_alias=AliasChoices("CHATOPS_PARSE_MEMORY_MB"))
    # Graph change notifications: the public HTTPS base URL of the web app (POST
    # <url>/sources/graph/notify must reach it) and the secret the clientState is derived from.
    # Without them, polling alone keeps sources fresh.
    public_url: str | None = _env("CHATOPS_PUBLIC_URL")
    graph_notify_secret: SecretStr | None = _env("GRAPH_NOTIFY_SECRET")

    # Retrieval and answers
    top_k: int = Field(default=6, validation_alias=AliasChoices("CHATOPS_TOP_K"))
    candidates: int = Field(default=50, validation_alias=AliasChoices("CHATOPS_CANDIDATES"))
    # How results are ranked (connectors/index/retriever.py: STRATEGIES says which exist).
    retrieval: str = Field(default="feedback", validation_alias=AliasChoices("CHATOPS_RETRIEVAL"))
    dense_weight: float = Field(default=0.95, ge=0, le=1, validation_alias=AliasChoices("CHATOPS_DENSE_WEIGHT"))
    min_similarity: float = Field(default=0.3, validation_alias=AliasChoices("CHATOPS_MIN_SIMILARITY"))
    channel_max_members: int = Field(
        default=200, validation_alias=AliasChoices("CHATOPS_CHANNEL_MAX_MEMBERS")
    )
    channel_cache_ttl: int = Field(default=300, validation_alias=AliasChoices("CHATOPS_CHANNEL_TTL"))
    # Before a channel answer is posted, its member list is read again if it is older than this
    # (seconds): an answer never uses a wider audience than the channel had that long before.
    channel_fresh: float = Field(default=5.0, ge=0, validation_alias=AliasChoices("CHATOPS_CHANNEL_FRESH"))
    # Hosts an answer may link to besides its own cited sources (comma-separated; "*.corp.example"
    # for a domain and its subdomains). Any other URL is shown inert.
    link_hosts_raw: str | None = Field(default=None, validation_alias=AliasChoices("CHATOPS_LINK_HOSTS"))
    thread_ttl: int = Field(default=7 * 86400, validation_alias=AliasChoices("CHATOPS_THREAD_TTL"))

    # Worker limits
    task_soft_time_limit: int = Field(default=120, validation_alias=AliasChoices("CHATOPS_TASK_SOFT_LIMIT"))
    task_time_limit: int = Field(default=150, validation_alias=AliasChoices("CHATOPS_TASK_HARD_LIMIT"))
    task_max_retries: int = Field(default=3, validation_alias=AliasChoices("CHATOPS_TASK_MAX_RETRIES"))
    # A Slack task's lease (seconds): renewed while it runs; once it lapses (the worker died) any
    # worker re-queues the task (workers/inflight.py).
    task_lease_ttl: int = Field(default=30, ge=5, validation_alias=AliasChoices("CHATOPS_TASK_LEASE_TTL"))
    # The worker's own health endpoint (GET /healthz on this port; unset: none).
    worker_health_port: int | None = _env("CHATOPS_WORKER_HEALTH_PORT")
    # When set, GET /metrics (web and worker) answers only requests that carry it as a Bearer token.
    metrics_token: SecretStr | None = _env("CHATOPS_METRICS_TOKEN")
    # The operator console (/admin, console/). With Entra (ENTRA_TENANT_ID and ENTRA_CLIENT_ID) people
    # sign in with Microsoft and only members of these groups (object ids or their aliases in groups:,
    # comma-separated) get in; without Entra, `chatops admin link --as NAME` prints one-time links for
    # NAME signed with CHATOPS_ADMIN_SECRET (unset: one is generated and kept in Redis). Sessions last
    # CHATOPS_ADMIN_SESSION_TTL seconds.
    # CHATOPS_CONSOLE_PRIVACY: full (questions and people), anonymized (questions, people as
    # pseudonyms) or off (counts only); an admin may change it in the console.
    admin_groups_raw: str | None = _env("CHATOPS_ADMIN_GROUPS")
    admin_secret: SecretStr | None = _env("CHATOPS_ADMIN_SECRET")
    admin_session_ttl: int = Field(default=8 * 3600, ge=60, validation_alias=AliasChoices("CHATOPS_ADMIN_SESSION_TTL"))
    console_privacy: Literal["full", "anonymized", "off"] = Field(
        default="anonymized", validation_alias=AliasChoices("CHATOPS_CONSOLE_PRIVACY"))

    @property
    def admin_groups(self) -> frozenset[str]:
        """CHATOPS_ADMIN_GROUPS as Entra object ids: each an alias in ``groups:`` or an object id."""
        return frozenset(self.group_names.resolve_object_ids((self.admin_groups_raw or "").split(","),
                                                             "CHATOPS_ADMIN_GROUPS"))

    @property
    def console_url(self) -> str:
        """The console's base URL (CHATOPS_PUBLIC_URL; links and the sign-in redirect start with it)."""
        return (self.public_url or "http://127.0.0.1:3000").rstrip("/")

    @property
    def console_entra(self) -> bool:
        """People sign in to the console with Entra (else with `chatops admin link`)."""
        return bool(self.entra_tenant_id and self.entra_client_id)
    # The web /healthz fails when no worker has shown a sign of life (or questions wait and none
    # was taken) for this many seconds.
    worker_stale_after: int = Field(default=120, ge=10, validation_alias=AliasChoices("CHATOPS_WORKER_STALE_AFTER"))

    # Ingestion through the workers (chatops ingest --via-workers): documents and chunks per
    # batch task, and one ingest task's time limit (seconds; the hard limit is 30 s more).
    ingest_batch_docs: int = Field(default=64, ge=1, validation_alias=AliasChoices("CHATOPS_INGEST_BATCH_DOCS"))
    ingest_batch_chunks: int = Field(default=1024, ge=1,
                                     validation_alias=AliasChoices("CHATOPS_INGEST_BATCH_CHUNKS"))
    ingest_time_limit: int = Field(default=900, ge=1, validation_alias=AliasChoices("CHATOPS_INGEST_TIME_LIMIT"))

    # Audit trail and proposals (SQLite under the data folder unless DATABASE_URL is set)
    database_url: str | None = _env("DATABASE_URL")
    cli_decisions: bool = Field(default=False, validation_alias=AliasChoices("CHATOPS_CLI_DECISIONS"))

    # Files and logs
    data_dir: Path = Field(default=Path(".data"), validation_alias=AliasChoices("CHATOPS_DATA_DIR"))
    config_file: Path | None = _env("CHATOPS_CONFIG")
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("CHATOPS_LOG_LEVEL"))
    log_format: Literal["json", "text"] = Field(
        default="json", validation_alias=AliasChoices("CHATOPS_LOG_FORMAT")
    )
    # OpenTelemetry traces (chatops/tracing.py), OTLP over HTTP to <endpoint>/v1/traces; message
    # content is recorded on model spans only when capture is on.
    otel_endpoint: str | None = _env("OTEL_EXPORTER_OTLP_ENDPOINT")
    otel_service_name: str = Field(default="chatops", validation_alias=AliasChoices("OTEL_SERVICE_NAME"))
    otel_capture_content: bool = Field(
        default=False, validation_alias=AliasChoices("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"))

    # Not read from the environment: filled from the CHATOPS_CONFIG file by load().
    _file: FileConfig = PrivateAttr(default_factory=FileConfig)
    _group_names: GroupNames | None = PrivateAttr(default=None)
    _channels: ChannelPolicies | None = PrivateAttr(default=None)

    @property
    def file(self) -> FileConfig:
        return self._file

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if self.qdrant_url and self.qdrant_path:
            raise ValueError("set QDRANT_URL or QDRANT_PATH, not both")
        if self.top_k < 1 or self.candidates < self.top_k:
            raise ValueError("CHATOPS_CANDIDATES must be at least CHATOPS_TOP_K (and both positive)")
        return self

    # Derived values -------------------------------------------------------

    @property
    def index_path(self) -> Path:
        """Folder of the embedded index (used when no QDRANT_URL is set)."""
        return self.qdrant_path or (self.data_dir / "index")

    @property
    def ingest_queue(self) -> str:
        """Ingest tasks' own queue, beside the questions' (every worker consumes both)."""
        return f"{self.queue_name}.ingest"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'chatops.db').resolve()}"

    def secret(self, env_name: str) -> str | None:
        """A secret named in the CHATOPS_CONFIG file (e.g. an action's ``secret_env``)."""
        value = os.environ.get(env_name)
        return value if value else None

    @property
    def slack_team_ids(self) -> frozenset[str]:
        return frozenset(t.strip() for t in (self.slack_team_ids_raw or "").split(",") if t.strip())

    @property
    def trusted_bots(self) -> frozenset[str]:
        return frozenset(b.strip().upper() for b in (self.trusted_bots_raw or "").split(",") if b.strip())

    @field_validator("trusted_bots_raw")
    @classmethod
    def _slack_bot_ids(cls, raw: str | None) -> str | None:
        for item in (raw or "").split(","):
            if item.strip() and not re.fullmatch(r"[AB][A-Z0-9]{2,}", item.strip().upper()):
                raise ValueError(f"{item.strip()!r} is not a Slack bot id (B…) or app id (A…); list only "
                                 "those, comma-separated")
        return raw

    @property
    def link_hosts(self) -> tuple[str, ...]:
        return tuple(h.strip().lower() for h in (self.link_hosts_raw or "").split(",") if h.strip())

    @property
    def uses_entra(self) -> bool:
        """Entra is (or, with "auto", would be) the identity provider."""
        if self.identity_provider != "auto":
            return self.identity_provider == "entra"
        return bool(self.entra_tenant_id and self.entra_client_id)

    @property
    def group_names(self) -> GroupNames:
        """How configured group names resolve (the ``groups:`` alias table; object ids with Entra)."""
        if self._group_names is None:
            self._group_names = GroupNames(self.file.groups, require_object_ids=self.uses_entra)
        return self._group_names

    @property
    def prices(self) -> PriceTable:
        """The ``models:`` price table."""
        return PriceTable(self.file.models)

    @property
    def budgets(self) -> Budgets:
        return self.file.budgets

    @property
    def channel_policies(self) -> ChannelPolicies:
        """Each channel's behaviour (``channels:``), checked against the configured sources."""
        if self._channels is None:
            names = [str(s.get("name")) for s in self.file.sources if isinstance(s, dict) and s.get("name")]
            self._channels = ChannelPolicies(self.file.channels).check(names)
        return self._channels

    @property
    def llm_configured(self) -> bool:
        return bool(self.openai_api_key or self.openai_base_url)

    @classmethod
    def load(cls, **overrides: Any) -> "Settings":
        """Read the environment (and the CHATOPS_CONFIG file) once."""
        try:
            settings = cls(**overrides)
        except ValidationError as exc:
            raise ConfigError(_one_line(exc)) from None
        if settings.config_file:
            settings._file = load_file_config(settings.config_file)
        settings.group_names  # noqa: B018 - a bad alias table stops the start, naming the alias
        settings.channel_policies  # noqa: B018 - so does a channel naming a source that does not exist
        settings.admin_groups  # noqa: B018 - and an admin group that is no object id (nor alias of one)
        return settings


def load_file_config(path: Path) -> FileConfig:
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"CHATOPS_CONFIG points at {path}, which does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a mapping at the top level")
    try:
        return FileConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_one_line(exc)}") from None


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "settings"
        parts.append(f"{where}: {err.get('msg')}")
    return "; ".join(parts)
