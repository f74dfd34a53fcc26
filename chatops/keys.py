"""Every Redis key of the service, built here and nowhere else.

Each key starts with the deployment's prefix (``CHATOPS_KEY_PREFIX``, default ``chatops``), so
several deployments can share one Redis. The formats are part of a running deployment's data:
renaming one forgets what is stored under the old name (a claim, a lease, a session, a budget),
so ``tests/unit/test_keys.py`` pins every one, byte for byte.

Not ours: Celery's queues (lists named by ``CHATOPS_QUEUE`` and ``CHATOPS_INGEST_QUEUE``) and its
own bookkeeping.
"""

from __future__ import annotations

from datetime import datetime

# -- what the parts below name ---------------------------------------------------------------------

# Claims (``claim``): a delivery taken once. Slack's retries of one message, clicks and form
# submissions, the "slow down" note to one person, the day's report.
CLAIM_MESSAGE = "msg"
CLAIM_DM_OFFER_CLICK = "click"
CLAIM_DECISION = "decide"
CLAIM_FEEDBACK = "feedback"
CLAIM_SLOW_DOWN = "slow_down"
CLAIM_DAILY_REPORT = "daily_report"
CLAIM_TOOL_DISCONNECT = "tool_disconnect"
CLAIM_HOME_OPENED = "home_opened"      # one app_home_opened delivery (user:event_ts)
CLAIM_HOME_REFRESH = "home_refresh"    # one coalesced Home tab refresh queued for a person (user)

# Cached JSON (``cache``): a channel's members, a channel's name, a Slack user, a DM offer.
CACHE_MEMBERS = "members"
CACHE_CHANNEL_NAME = "channel_name"
CACHE_SLACK_USER = "slackuser"
CACHE_OFFER = "offer"
CACHE_APP_CONTEXT = "app_context"      # the channel a person looks at beside the agent (app_context_changed)
CACHE_HOME_NOTICE = "home_notice"      # the outcome of what a person just did on their Home tab, shown there


def _joined(prefix: str, *parts: str) -> str:
    return ":".join((prefix, *parts))


# -- short-lived Slack state (chatops/state.py) ---------------------------------------------------------

def claim(prefix: str, kind: str, key: str) -> str:
    return _joined(prefix, "seen", kind, key)


def thread(prefix: str, channel: str, thread_ts: str) -> str:
    """A thread's exchanges, for follow-ups."""
    return _joined(prefix, "thread", channel, thread_ts)


def bot_thread(prefix: str, channel: str, thread_ts: str) -> str:
    """Set while the bot answers in a thread: later messages in it are follow-ups."""
    return _joined(prefix, "botthread", channel, thread_ts)


def cache(prefix: str, *key: str) -> str:
    return _joined(prefix, "cache", *key)


# -- tasks (chatops/tasks.py, chatops/progress.py, workers/inflight.py) -----------------------------

def task(kind: str, *parts: object) -> str:
    """One piece of work, the same for every delivery of it: not a key itself, the last part of
    its lease, done mark and step record."""
    return ":".join((kind, *(f"{part}" for part in parts)))


def progress(prefix: str, task_id: str) -> str:
    """The steps one task has done (a hash)."""
    return f"{prefix}:progress:{task_id}"


def lease(prefix: str, task_id: str) -> str:
    """Held by the worker running the task (``lease(prefix, "")``: every lease's beginning)."""
    return f"{prefix}:lease:{task_id}"


def done(prefix: str, task_id: str) -> str:
    return f"{prefix}:done:{task_id}"


def inflight(prefix: str) -> str:
    """Tasks being run: task id -> kind and payload (a hash)."""
    return f"{prefix}:inflight"


def inflight_seen(prefix: str) -> str:
    """When each task being run was last seen alive (a sorted set)."""
    return f"{prefix}:inflight:seen"


# -- workers and the scheduler (workers/health.py, usecases/operations.py) ---------------------------------

def workers(prefix: str) -> str:
    """Every worker by when it was last seen (a sorted set)."""
    return f"{prefix}:workers"


def consumed(prefix: str) -> str:
    """When a worker last took a task."""
    return f"{prefix}:consumed"


def beat(prefix: str) -> str:
    """When the scheduler was last alive."""
    return f"{prefix}:beat"


def ingest_job(prefix: str, job: str, part: str | None = None) -> str:
    """An ingestion across workers (a hash), and the records beside it (workers/ingest_jobs.py)."""
    main = f"{prefix}:ingest:{job}"
    return main if part is None else f"{main}:{part}"


def source_chain(prefix: str, name: str, mode: str) -> str:
    """The sync chain under way for one source and mode (workers/source_tasks.py)."""
    return f"{prefix}:sources:chain:{name}:{mode}"


def source_chain_again(prefix: str, name: str, mode: str) -> str:
    """Set when that chain should run once more when it ends."""
    return source_chain(prefix, name, mode) + ":again"


# -- answering (usecases/) ----------------------------------------------------------------------------

def answer(prefix: str, digest: str) -> str:
    """A cached answer (usecases/answer_cache.py)."""
    return f"{prefix}:answers:{digest}"


def answers_pattern(prefix: str) -> str:
    """Every cached answer, for SCAN."""
    return f"{prefix}:answers:*"


def budget(prefix: str, scope: str, who: str, period: str, start: datetime) -> str:
    """What a person, a channel or everyone spent in one budget period (usecases/budgets.py)."""
    return f"{prefix}:budget:{scope}:{who}:{period}:{start:%Y%m%d%H}"


def rate(prefix: str, person: str) -> str:
    """A person's questions in the last minute (a sorted set)."""
    return f"{prefix}:rate:{person}"


def identity(prefix: str, namespace: str, key: str) -> str:
    """A principal as the identity provider gave it (connectors/identity/cached.py); ``v2``: groups
    are object ids only."""
    return f"{prefix}:identity:v2:{namespace}:{key}"


# -- Slack (bot/) ---------------------------------------------------------------------------------------

def pace(prefix: str, channel: str) -> str:
    """A channel's posting turns (bot/pacing.py)."""
    return f"{prefix}:pace:{channel}"


def stream_stopped(prefix: str, channel: str, thread_ts: str) -> str:
    """The person pressed Stop on the agent's work in this thread (``agent_session_stopped``):
    the answer being streamed there ends (bot/questions/stream.py)."""
    return f"{prefix}:stopped:{channel}:{thread_ts}"


def home_opened(prefix: str) -> str:
    """Who opened their App Home tab lately, by when (a sorted set; bot/home/refresh.py)."""
    return f"{prefix}:home:opened"


# -- the operator console (console/, chatops/privacy.py) ------------------------------------------------

def console_privacy(prefix: str) -> str:
    return f"{prefix}:console:privacy"


def console_secret(prefix: str) -> str:
    return f"{prefix}:console:secret"


def console_link(prefix: str, link_id: str) -> str:
    """A one-time sign-in link, once used."""
    return f"{prefix}:console:link:{link_id}"


def console_session(prefix: str, digest: str) -> str:
    """A signed-in session, by the hash of its id."""
    return f"{prefix}:console:session:{digest}"


def console_flow(prefix: str, digest: str) -> str:
    """A sign-in with Entra under way, by the hash of its id."""
    return f"{prefix}:console:flow:{digest}"


# -- live tools: people's own credentials (usecases/tool_auth.py) -----------------------------------------

def tool_oauth_flow(prefix: str, digest: str) -> str:
    """A person's authorization of a tool under way (sealed), by the hash of its ``state``."""
    return f"{prefix}:tools:oauth:flow:{digest}"


def tool_oauth_client(prefix: str, tool: str) -> str:
    """The OAuth client registered for a tool with its authorization server (sealed)."""
    return f"{prefix}:tools:oauth:client:{tool}"


def tool_token_lock(prefix: str, tool: str, person_id: str) -> str:
    """Held while one process refreshes a person's token for a tool (refresh tokens rotate)."""
    return f"{prefix}:tools:oauth:refresh:{tool}:{person_id}"
