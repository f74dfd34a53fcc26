"""The process's settings: the core's typed object, and the base of every plugin's own.

Built once at process start (``Settings.load()``) and passed in to whatever
needs it; nothing else in the code base reads ``os.environ``. Secrets come
from the environment only and are kept as ``SecretStr`` so they never end up
in a repr, a log line or an error message.

``Settings`` holds what the whole process shares: the data folder, Redis, the database, the key
prefix, the queues, limits, retrieval and answers, the console, logs and traces. A plugin (an
identity provider, a language model, an index engine, Slack) reads its own environment variables
with its own model, a ``PluginSettings`` defined beside it and declared by its registry entry;
``settings.of(Model)`` gives it, read once from the same environment (and overrides). The
application layer loads every model at start (``chatops_app/settings.py``), so a bad value in
any of them stops the process with one line naming the variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Literal, TypeVar

import yaml
from pydantic import (AliasChoices, BaseModel, Field, PrivateAttr, SecretStr, ValidationError, model_validator)
from pydantic_settings import BaseSettings, SettingsConfigDict

from chatops.channels import ChannelConfig, ChannelPolicies
from chatops.costs import Budgets, ModelPrice, PriceTable
from chatops.errors import ConfigError
from chatops.groups import GroupNames

__all__ = ["ConfigError", "GroupNames", "Settings", "PluginSettings", "FileConfig", "env"]


def env(name: str) -> Any:
    """A setting read from the environment variable ``name``, unset (None) by default."""
    return Field(default=None, validation_alias=AliasChoices(name))


class PluginSettings(BaseSettings):
    """A plugin's own environment settings (read like the core's: by their variables' names,
    empty values ignored). ``configured``: they are there, so the plugin can be used (an
    identity provider "auto" picks, a language model answers)."""

    model_config = SettingsConfigDict(extra="ignore", env_ignore_empty=True)

    @property
    def configured(self) -> bool:
        return True

    @classmethod
    def read(cls, overrides: dict[str, Any] | None = None) -> "PluginSettings":
        """Read from the environment (``overrides`` by variable name win). A bad value is a
        ConfigError of one line naming the variable."""
        try:
            return cls(**(overrides or {}))
        except ValidationError as exc:
            raise ConfigError(_one_line(exc)) from None


P = TypeVar("P", bound=PluginSettings)


class AssistantPrompt(BaseModel):
    """One prompt suggested when someone opens the agent's Messages tab: its label, and the message
    sent as the person's when they pick it."""

    model_config = {"extra": "forbid"}

    title: str = Field(min_length=1, max_length=200)
    message: str = Field(min_length=1, max_length=2000)


class AssistantConfig(BaseModel):
    """``assistant:`` in CHATOPS_CONFIG: the agent's Messages tab. ``prompts`` (up to four, as Slack
    shows) replace the default ones (the questions most often answered helpfully, usecases/home.py)."""

    model_config = {"extra": "forbid"}

    prompts: list[AssistantPrompt] = Field(default_factory=list, max_length=4)


class FileConfig(BaseModel):
    """Structured settings from the ``CHATOPS_CONFIG`` YAML file.

    Unknown top-level keys are rejected so a typo is an error, not a silent
    default. Later capabilities (actions, sources) add their sections here.
    """

    model_config = {"extra": "forbid"}

    # Readable names for groups -> the identity provider's group ids (chatops/groups.py).
    groups: dict[str, str] = Field(default_factory=dict)
    actions: list[dict[str, Any]] = Field(default_factory=list)
    # Read-only tools the model may call for live data (chatops/tools.py, connectors/tools/).
    tools: list[dict[str, Any]] = Field(default_factory=list)
    sources: list[dict[str, Any]] = Field(default_factory=list)
    # Prices per 1,000 tokens by model name (chatops/costs.py), budgets, per-channel behaviour
    # (chatops/channels.py).
    models: dict[str, ModelPrice] = Field(default_factory=dict)
    budgets: Budgets = Field(default_factory=Budgets)
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    # The agent's Messages tab: its suggested prompts (AssistantConfig).
    assistant: AssistantConfig = Field(default_factory=AssistantConfig)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", env_ignore_empty=True)

    # Request bodies above this many bytes are refused with 413 before they are read.
    max_body_bytes: int = Field(default=1_048_576, ge=1024, validation_alias=AliasChoices("CHATOPS_MAX_BODY_BYTES"))

    # Queue and shared state
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0", validation_alias=AliasChoices("REDIS_URL")
    )
    queue_name: str = Field(default="chatops", validation_alias=AliasChoices("CHATOPS_QUEUE"))
    key_prefix: str = Field(default="chatops", validation_alias=AliasChoices("CHATOPS_KEY_PREFIX"))

    # Routing (usecases/ask.py): questions one document answers with confidence go to the smaller
    # model (CHATOPS_LLM_MODEL_SMALL, connectors/llm/settings.py): the best document's similarity at
    # least CHATOPS_ROUTE_MIN_SIMILARITY and CHATOPS_ROUTE_MARGIN ahead of the next one.
    route_min_similarity: float = Field(default=0.6, ge=0, le=1,
                                        validation_alias=AliasChoices("CHATOPS_ROUTE_MIN_SIMILARITY"))
    route_margin: float = Field(default=0.1, ge=0, le=1, validation_alias=AliasChoices("CHATOPS_ROUTE_MARGIN"))
    # The daily report (chatops beat): posted to this Slack channel id at this hour (UTC); without a
    # channel it is only logged (the console and chatops report show the same numbers).
    report_channel: str | None = env("CHATOPS_REPORT_CHANNEL")
    report_hour: int = Field(default=8, ge=0, le=23, validation_alias=AliasChoices("CHATOPS_REPORT_HOUR"))
    # The answer cache (usecases/answer_cache.py): seconds an answer may be served again to the same
    # audience (0: no cache).
    cache_ttl: int = Field(default=3600, ge=0, validation_alias=AliasChoices("CHATOPS_CACHE_TTL"))

    # Document sources (the sources: of CHATOPS_CONFIG): how often the scheduler (chatops beat)
    # syncs each one's content, permissions and everything (seconds), how much one window of a
    # sync does before it hands the queue back, and how old a source's last complete permission
    # pass may be before its restricted documents are withheld from answers. What a connector may
    # spend on one file or one throttled window: connectors/sources/settings.py.
    sync_changes_every: float = Field(default=300, gt=0, validation_alias=AliasChoices("CHATOPS_SYNC_CHANGES_EVERY"))
    sync_permissions_every: float = Field(default=900, gt=0,
                                          validation_alias=AliasChoices("CHATOPS_SYNC_PERMISSIONS_EVERY"))
    sync_full_every: float = Field(default=86400, gt=0, validation_alias=AliasChoices("CHATOPS_SYNC_FULL_EVERY"))
    sync_window_items: int = Field(default=500, ge=1, validation_alias=AliasChoices("CHATOPS_SYNC_WINDOW_ITEMS"))
    sync_window_seconds: float = Field(default=60, gt=0, validation_alias=AliasChoices("CHATOPS_SYNC_WINDOW_SECONDS"))
    max_acl_age: float = Field(default=86400, gt=0, validation_alias=AliasChoices("CHATOPS_MAX_ACL_AGE"))
    # The public HTTPS base URL of the web app: the console's links, and where Graph delivers change
    # notifications (POST <url>/sources/graph/notify, with GRAPH_NOTIFY_SECRET). Without it, polling
    # alone keeps sources fresh.
    public_url: str | None = env("CHATOPS_PUBLIC_URL")

    # Retrieval and answers
    top_k: int = Field(default=6, validation_alias=AliasChoices("CHATOPS_TOP_K"))
    candidates: int = Field(default=50, validation_alias=AliasChoices("CHATOPS_CANDIDATES"))
    # How results are ranked (connectors/index/retriever.py: STRATEGIES says which exist).
    retrieval: str = Field(default="feedback", validation_alias=AliasChoices("CHATOPS_RETRIEVAL"))
    dense_weight: float = Field(default=0.95, ge=0, le=1, validation_alias=AliasChoices("CHATOPS_DENSE_WEIGHT"))
    min_similarity: float = Field(default=0.3, validation_alias=AliasChoices("CHATOPS_MIN_SIMILARITY"))
    # "calibrated": above that floor, the no-evidence rule calibrated for the embedder decides whether
    # the passages answer (usecases/evidence.py); "floor": every passage above the floor is used.
    no_evidence_rule: Literal["calibrated", "floor"] = Field(
        default="calibrated", validation_alias=AliasChoices("CHATOPS_NO_EVIDENCE_RULE"))
    channel_max_members: int = Field(
        default=200, validation_alias=AliasChoices("CHATOPS_CHANNEL_MAX_MEMBERS")
    )
    channel_cache_ttl: int = Field(default=300, validation_alias=AliasChoices("CHATOPS_CHANNEL_TTL"))
    # Before a channel answer is posted, its member list is read again if it is older than this
    # (seconds): an answer never uses a wider audience than the channel had that long before.
    channel_fresh: float = Field(default=5.0, ge=0, validation_alias=AliasChoices("CHATOPS_CHANNEL_FRESH"))
    # A model's answer streamed into the thread as it is written (chat.startStream …, with a status
    # while retrieval and tools run), or posted whole in place of "Looking into it…" (false).
    streaming: bool = Field(default=True, validation_alias=AliasChoices("CHATOPS_STREAMING"))
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
    worker_health_port: int | None = env("CHATOPS_WORKER_HEALTH_PORT")
    # When set, GET /metrics (web and worker) answers only requests that carry it as a Bearer token.
    metrics_token: SecretStr | None = env("CHATOPS_METRICS_TOKEN")
    # The operator console (/admin, console/). With Entra (ENTRA_TENANT_ID and ENTRA_CLIENT_ID) people
    # sign in with Microsoft and only members of these groups (object ids or their aliases in groups:,
    # comma-separated) get in; without Entra, `chatops admin link --as NAME` prints one-time links for
    # NAME signed with CHATOPS_ADMIN_SECRET (unset: one is generated and kept in Redis). Sessions last
    # CHATOPS_ADMIN_SESSION_TTL seconds.
    # CHATOPS_CONSOLE_PRIVACY: full (questions and people), anonymized (questions, people as
    # pseudonyms) or off (counts only); an admin may change it in the console.
    admin_groups_raw: str | None = env("CHATOPS_ADMIN_GROUPS")
    admin_secret: SecretStr | None = env("CHATOPS_ADMIN_SECRET")
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
    # The web /healthz fails when no worker has shown a sign of life (or questions wait and none
    # was taken) for this many seconds.
    worker_stale_after: int = Field(default=120, ge=10, validation_alias=AliasChoices("CHATOPS_WORKER_STALE_AFTER"))

    # Ingestion through the workers (chatops ingest --via-workers): documents and chunks per
    # batch task, and one ingest task's time limit (seconds; the hard limit is 30 s more).
    ingest_batch_docs: int = Field(default=64, ge=1, validation_alias=AliasChoices("CHATOPS_INGEST_BATCH_DOCS"))
    ingest_batch_chunks: int = Field(default=1024, ge=1,
                                     validation_alias=AliasChoices("CHATOPS_INGEST_BATCH_CHUNKS"))
    ingest_time_limit: int = Field(default=900, ge=1, validation_alias=AliasChoices("CHATOPS_INGEST_TIME_LIMIT"))

    # Live tools (chatops/tools.py, usecases/tools.py): at most this many rounds of tool calls per
    # question, each call this many seconds, the whole question's tool work this many seconds, and
    # each result cut to this many characters before the model reads it.
    tool_max_steps: int = Field(default=4, ge=0, le=16, validation_alias=AliasChoices("CHATOPS_TOOL_MAX_STEPS"))
    tool_timeout: float = Field(default=10.0, gt=0, validation_alias=AliasChoices("CHATOPS_TOOL_TIMEOUT"))
    tool_deadline: float = Field(default=30.0, gt=0, validation_alias=AliasChoices("CHATOPS_TOOL_DEADLINE"))
    tool_max_result_chars: int = Field(default=6000, ge=200,
                                       validation_alias=AliasChoices("CHATOPS_TOOL_MAX_RESULT_CHARS"))
    # How long a tool server's list of functions is reused before it is asked again (seconds): a
    # changed definition stops being offered at most this long after the change.
    tool_listing_ttl: float = Field(default=60.0, ge=0, validation_alias=AliasChoices("CHATOPS_TOOL_LISTING_TTL"))

    # Audit trail and proposals (SQLite under the data folder unless DATABASE_URL is set)
    database_url: str | None = env("DATABASE_URL")
    cli_decisions: bool = Field(default=False, validation_alias=AliasChoices("CHATOPS_CLI_DECISIONS"))

    # Files and logs
    data_dir: Path = Field(default=Path(".data"), validation_alias=AliasChoices("CHATOPS_DATA_DIR"))
    config_file: Path | None = env("CHATOPS_CONFIG")
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("CHATOPS_LOG_LEVEL"))
    log_format: Literal["json", "text"] = Field(
        default="json", validation_alias=AliasChoices("CHATOPS_LOG_FORMAT")
    )
    # OpenTelemetry traces (chatops/tracing.py), OTLP over HTTP to <endpoint>/v1/traces; message
    # content is recorded on model spans only when capture is on.
    otel_endpoint: str | None = env("OTEL_EXPORTER_OTLP_ENDPOINT")
    otel_service_name: str = Field(default="chatops", validation_alias=AliasChoices("OTEL_SERVICE_NAME"))
    otel_capture_content: bool = Field(
        default=False, validation_alias=AliasChoices("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"))

    # Not read from the environment: filled by load() (the CHATOPS_CONFIG file; the plugins' settings,
    # read with the same overrides; the identity provider's rule for group names).
    _file: FileConfig = PrivateAttr(default_factory=FileConfig)
    _group_names: GroupNames | None = PrivateAttr(default=None)
    _channels: ChannelPolicies | None = PrivateAttr(default=None)
    _overrides: dict[str, Any] = PrivateAttr(default_factory=dict)
    _plugins: dict[type, PluginSettings] = PrivateAttr(default_factory=dict)
    _object_ids: bool = PrivateAttr(default=False)

    @property
    def file(self) -> FileConfig:
        return self._file

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if self.top_k < 1 or self.candidates < self.top_k:
            raise ValueError("CHATOPS_CANDIDATES must be at least CHATOPS_TOP_K (and both positive)")
        return self

    def of(self, model: type[P]) -> P:
        """A plugin's settings (``model``, a PluginSettings), read once from the environment and the
        overrides this object was loaded with."""
        found = self._plugins.get(model)
        if found is None:
            found = self._plugins[model] = model.read(self._overrides)
        return found  # type: ignore[return-value]

    # Derived values -------------------------------------------------------

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
    def link_hosts(self) -> tuple[str, ...]:
        return tuple(h.strip().lower() for h in (self.link_hosts_raw or "").split(",") if h.strip())

    @property
    def group_names(self) -> GroupNames:
        """How configured group names resolve (the ``groups:`` alias table; object ids where the
        identity provider's groups are object ids, as Entra's)."""
        if self._group_names is None:
            self._group_names = GroupNames(self.file.groups, require_object_ids=self._object_ids)
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

    @classmethod
    def load(cls, *plugins: type[PluginSettings],
             object_ids: Callable[["Settings"], bool] | None = None, **overrides: Any) -> "Settings":
        """Read the environment (and the CHATOPS_CONFIG file) once.

        ``plugins``: the plugins' settings models, read now too, so a bad value in any of them stops
        the start (one line naming every bad variable); others are read on first ``of()``.
        ``object_ids``: whether configured group names must be object ids (the identity provider's
        rule, asked once the plugins' settings are read). ``overrides`` by variable name win over
        the environment, for every model."""
        problems, settings, read = [], None, {}
        try:
            settings = cls(**overrides)
        except ValidationError as exc:
            problems.append(_one_line(exc))
        for model in plugins:
            try:
                read[model] = model(**overrides)
            except ValidationError as exc:
                problems.append(_one_line(exc))
        if settings is None or problems:
            raise ConfigError("; ".join(problems))
        settings._overrides, settings._plugins = dict(overrides), read
        if settings.config_file:
            settings._file = load_file_config(settings.config_file)
        settings._object_ids = bool(object_ids(settings)) if object_ids else False
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
