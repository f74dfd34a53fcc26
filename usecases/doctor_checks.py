"""What ``chatops doctor`` finds in the services every deployment has, one check each: Redis,
the database's schema, the index and the embedder it was built with, the model, the Graph
notifications' URL, a source, the workers and beat. Each returns what it found in a few words or
raises (``chatops/checks.py``); ``chatops_app/doctor.py`` says which ones a deployment's settings
call for and hands each what it reads, ``usecases/doctor.py`` runs them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

from chatops.checks import CheckFailed, CheckWarning, NotConfigured
from chatops.errors import ConfigError, TransientError
from chatops.store import Store
from connectors.embeddings.base import EmbedderId, WrongEmbedder, refusal
from connectors.index.base import IndexBusy, read_built
from connectors.index.models import ModelMissing


def configuration(config_file: object, *, sources: int, actions: int, aliases: int) -> str:
    if not config_file:
        raise NotConfigured("no CHATOPS_CONFIG: no sources, no actions, no group aliases")
    return f"{config_file}: {sources} source(s), {actions} action(s), {aliases} group alias(es)"


def redis(client: Any, url: str) -> str:
    shown = safe_url(url)
    try:
        version = client.info("server").get("redis_version", "?")
    except Exception as exc:  # noqa: BLE001 - redis-py's connection errors, whatever their kind
        raise CheckFailed(f"cannot reach Redis at {shown} ({type(exc).__name__})", "start it, or set REDIS_URL") from None
    return f"{shown} (Redis {version})"


def database(url: str) -> str:
    store = Store(url)
    shown = store.engine.url.render_as_string(hide_password=True)
    try:
        current, head = store.schema()
    except Exception as exc:  # noqa: BLE001 - the driver's own errors
        raise CheckFailed(f"cannot open the database {shown} ({type(exc).__name__})",
                          "start it, or set DATABASE_URL") from None
    finally:
        store.close()
    if current == head:
        return f"{shown}, schema {current} (the latest)"
    if current is None:
        raise CheckWarning(f"{shown} has no chatops schema yet (a new database)",
                           "nothing to do: chatops worker creates it when it starts")
    raise CheckFailed(f"{shown} is at schema {current}; this release needs {head}",
                      "start chatops worker (it upgrades the schema at start)" if current < head else
                      "a newer release wrote it: run that release, or restore the database")


def index(embedder: Callable[[], Any], opened: Callable[[], Any], *, embedded: Callable[[], bool], path: Path,
          where: str) -> str:
    """The index against the configured embedder (``embedder``, ``opened``: load them; ``embedded``:
    whether the engine keeps the index in a folder, which says what built it). An index built with
    another embedder fails with the line every process that opens it refuses with."""
    try:
        model = embedder()
        probe = getattr(model, "check", None)    # a remote provider: one text embedded now
        if probe is not None:
            probe()
    except ModelMissing as exc:
        raise CheckFailed(str(exc), "run chatops models install") from None
    except ConfigError as exc:      # the provider's settings, its server's refusal, a dimension
        raise CheckFailed(str(exc), "fix the CHATOPS_EMBEDDING_* settings") from None
    except TransientError as exc:
        raise CheckFailed(str(exc), "check CHATOPS_EMBEDDING_URL and the network path to it") from None
    configured = EmbedderId.of(model)
    try:
        idx = opened()
    except IndexBusy:
        built, points = (read_built(path) if embedded() else None), None
        if built is None:
            raise CheckWarning(f"{where} is open in another process (a worker) and says nothing of its embedder",
                               "run chatops doctor where the worker is stopped, or leave it") from None
    except WrongEmbedder as exc:
        what, _, fix = str(exc).rpartition("; ")
        raise CheckFailed(f"{where}: {what}", fix) from None
    else:
        built, points = idx.built_with(), idx.count()
    if built is None and not points:
        raise CheckFailed(f"no index at {where} yet",
                          "run chatops ingest PATH, or chatops sources sync NAME (the workers do it with beat)")
    why = refusal(built, configured)
    if why:
        what, _, fix = why.rpartition("; ")
        raise CheckFailed(f"{where}: {what}", fix)
    count = "in use by a worker" if points is None else f"{points} chunks"
    if built is None or not built.embedder:
        raise CheckWarning(f"{where}: {count}; it does not record which embedder built it (an older index)",
                           f"nothing to do if it was built with {configured.describe()}")
    return f"{where}: {count}, built with {EmbedderId.recorded(built).describe()}"


def model(llm: Any, *, provider: str, small_model: str | None) -> str:
    if llm is None:
        raise NotConfigured("no model configured (OPENAI_API_KEY / OPENAI_BASE_URL): answers quote passages")
    check = getattr(llm, "check", None)
    if check is None:
        raise NotConfigured(f"the {provider} provider has no check")
    return str(check((small_model,) if small_model else ()))


def notifications(public_url: str | None, graph_roles: Callable[[], str]) -> str:
    """Graph delivers to the public URL (HTTPS only), and the Entra app may subscribe."""
    url = public_url or ""
    if not url.startswith("https://"):
        raise CheckFailed(f"CHATOPS_PUBLIC_URL is {url}: Graph delivers notifications to HTTPS URLs only",
                          "serve the web process behind TLS and set CHATOPS_PUBLIC_URL to its https:// address")
    return graph_roles().split(";")[0] + "; " + url


def source(opened: Callable[[], Any]) -> str:
    """A source's own check, then it is closed."""
    src = opened()
    try:
        return str(src.check())
    finally:
        src.close()


def workers(seen: list[tuple[str, float]], *, stale_after: float, needed: bool) -> str:
    """``seen``: (worker, seconds since it was alive), most recent first."""
    if not needed:
        raise NotConfigured("no worker needed: neither Slack nor sources are configured")
    alive = [(name, age) for name, age in seen if age <= stale_after]
    if not alive:
        last = f"; the last one {seen[0][1]:.0f} s ago" if seen else ""
        raise CheckFailed(f"no worker seen in the last {stale_after:.0f} s{last}",
                          "start chatops worker with the same REDIS_URL and CHATOPS_KEY_PREFIX")
    return f"{len(alive)} alive (" + ", ".join(f"{name} {age:.0f} s ago" for name, age in alive[:5]) + ")"


def beat(age: float | None, *, interval: float, has_sources: bool, has_slack: bool) -> str:
    """``age``: seconds since beat last recorded itself (None: never); it does every ``interval``."""
    if age is not None and age <= 3 * interval:
        return f"seen {age:.0f} s ago"
    when = "never seen" if age is None else f"last seen {age:.0f} s ago"
    if has_sources:
        raise CheckFailed(f"chatops beat {when}: the sources are not synced on schedule",
                          "run one chatops beat with the same REDIS_URL and CHATOPS_KEY_PREFIX")
    if has_slack:
        raise CheckWarning(f"chatops beat {when}: proposals past their expiry keep their buttons, no daily report",
                           "run one chatops beat")
    raise NotConfigured(f"not needed here ({when}): no sources and no Slack")


def safe_url(url: str) -> str:
    """A URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
