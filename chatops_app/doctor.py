"""``chatops doctor``: which checks this deployment's settings call for, built from the composition
root. Each check lives with what it checks (bot/doctor.py for Slack, each source, action
connector, model and identity provider its own ``check()``, the Entra app's permissions in
connectors/identity/app_roles.py); usecases/doctor.py runs them."""

from __future__ import annotations

from typing import Callable
from urllib.parse import urlsplit, urlunsplit

from bot.doctor import SlackChecks
from bot.gateway import make_client
from bot.links import ANY_TENANT_FIX, any_tenant_warning
from bot.settings import SlackSettings
from chatops.checks import CheckFailed, CheckWarning, NotConfigured
from chatops.errors import ConfigError
from chatops.store import Store
from chatops_app.container import Container
from connectors.identity.app_roles import CONSOLE_OVERAGE, NOTIFICATIONS, check_certificate, check_graph_roles
from connectors.identity.entra_settings import EntraSettings
from connectors.identity.graph import graph_client
from connectors.identity.registry import build_identity
from connectors.index.base import IndexBusy, read_built
from connectors.index.models import ModelMissing
from connectors.index.settings import IndexSettings
from connectors.llm.settings import LLMSettings
from workers.health import BEAT_BEAT_S, beat_seen, workers_seen

Check = tuple[str, Callable[[], str]]


def checks(container: Container) -> list[Check]:
    s = container.settings
    found: list[Check] = [*SlackChecks(s, lambda token, url: make_client(token, url, retries=0)).checks(),
                          ("redis", lambda: _redis(container)),
                          ("database", lambda: _database(container)),
                          ("index", lambda: _index(container)),
                          ("language model", lambda: _llm(container)),
                          ("identity", lambda: _identity(container))]
    try:
        sources, connectors = container.sources, container.catalogue.connectors
    except ConfigError as exc:   # what would stop every process at start: one failed check, the rest still run
        message = str(exc)
        found.append(("configuration", lambda: _fail(message, "fix CHATOPS_CONFIG (or the setting it names)")))
        sources, connectors = {}, {}
    else:
        found.append(("configuration", lambda: _configuration(container)))
    kinds = {spec["kind"] for spec in sources.values()}
    if "sharepoint" in kinds:
        found.append(("entra certificate", lambda: check_certificate(s.of(EntraSettings))))
    if sources and container.notifications_configured:
        found.append(("graph notifications", lambda: _notifications(container)))
    if s.link_hosts:
        found.append(("answer links", lambda: _link_hosts(s.link_hosts)))
    if s.of(EntraSettings).configured:
        found.append(("console sign-in", lambda: "Entra: " + check_graph_roles(_graph(container), list(CONSOLE_OVERAGE))))
    for name in sorted(sources):
        found.append((f"source {name}", lambda name=name: _source(container, name)))
    for name, connector in sorted(connectors.items()):
        found.append((f"action {name}", getattr(connector, "check", None) or _no_check))
    found += [("workers", lambda: _workers(container, bool(sources))), ("beat", lambda: _beat(container, bool(sources)))]
    return found


def _fail(message: str, fix: str) -> str:
    raise CheckFailed(message, fix)


def _configuration(container: Container) -> str:
    s = container.settings
    if not s.config_file:
        raise NotConfigured("no CHATOPS_CONFIG: no sources, no actions, no group aliases")
    return (f"{s.config_file}: {len(container.sources)} source(s), {len(container.catalogue.connectors)} action(s), "
            f"{len(s.file.groups)} group alias(es)")


def _link_hosts(hosts: tuple[str, ...]) -> str:
    too_wide = any_tenant_warning(hosts)
    if too_wide:
        raise CheckWarning(too_wide, ANY_TENANT_FIX)
    return f"{len(hosts)} host(s) besides the cited sources: {', '.join(hosts)}"


def _no_check() -> str:
    raise NotConfigured("this kind has no check")


def _redis(container: Container) -> str:
    url = _safe_url(container.settings.redis_url)
    try:
        version = container.redis.info("server").get("redis_version", "?")
    except Exception as exc:  # noqa: BLE001 - redis-py's connection errors, whatever their kind
        raise CheckFailed(f"cannot reach Redis at {url} ({type(exc).__name__})", "start it, or set REDIS_URL") from None
    return f"{url} (Redis {version})"


def _database(container: Container) -> str:
    url = container.settings.resolved_database_url
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


def _index(container: Container) -> str:
    s = container.settings
    try:
        embedder = container.embedder
    except ModelMissing as exc:
        raise CheckFailed(str(exc), "run chatops models install") from None
    name, dim = getattr(embedder, "name", None), embedder.dim
    path, where = s.of(IndexSettings).path(s.data_dir), s.of(IndexSettings).location(s.data_dir)
    try:
        index = container.index
    except IndexBusy:
        built, points = (read_built(path) if container.engine.embedded else None), None
        if built is None:
            raise CheckWarning(f"{where} is open in another process (a worker) and says nothing of its embedder",
                               "run chatops doctor where the worker is stopped, or leave it") from None
    else:
        built, points = index.built_with(), index.count()
    if built is None and not points:
        raise CheckFailed(f"no index at {where} yet",
                          "run chatops ingest PATH, or chatops sources sync NAME (the workers do it with beat)")
    if built is not None and built.dim != dim:
        raise CheckFailed(f"the index at {where} holds {built.dim}-dimensional vectors ({built.embedder}) but the "
                          f"configured embedder {name} makes {dim}", "set CHATOPS_EMBEDDING_MODEL back, or rebuild the "
                                                                     "index with the new model (ingest into a fresh QDRANT_PATH)")
    if built is not None and built.embedder and name and built.embedder != name:
        raise CheckFailed(f"the index at {where} was built with {built.embedder}, the configured embedder is {name}",
                          "set CHATOPS_EMBEDDING_MODEL back, or rebuild the index with the new model")
    count = "in use by a worker" if points is None else f"{points} chunks"
    if built is None or not built.embedder:
        raise CheckWarning(f"{where}: {count}; it does not record which embedder built it (an older index)",
                           f"nothing to do if it was built with {name}")
    return f"{where}: {count}, built with {built.embedder} ({built.dim} dimensions)"


def _llm(container: Container) -> str:
    llm = container.llm
    if llm is None:
        raise NotConfigured("no model configured (OPENAI_API_KEY / OPENAI_BASE_URL): answers quote passages")
    check = getattr(llm, "check", None)
    llm_settings = container.settings.of(LLMSettings)
    if check is None:
        raise NotConfigured(f"the {llm_settings.llm_provider} provider has no check")
    return check((llm_settings.llm_model_small,) if llm_settings.llm_model_small else ())


def _identity(container: Container) -> str:
    return build_identity(container.settings, container.http_client).check()


def _graph(container: Container):
    return graph_client(container.settings.of(EntraSettings), container.http_client, max_attempts=1)


def _notifications(container: Container) -> str:
    url = container.settings.public_url or ""
    if not url.startswith("https://"):
        raise CheckFailed(f"CHATOPS_PUBLIC_URL is {url}: Graph delivers notifications to HTTPS URLs only",
                          "serve the web process behind TLS and set CHATOPS_PUBLIC_URL to its https:// address")
    return check_graph_roles(_graph(container), list(NOTIFICATIONS)).split(";")[0] + "; " + url


def _source(container: Container, name: str) -> str:
    source = container.open_sync_source(name)
    try:
        return source.check()
    finally:
        source.close()


def _workers(container: Container, has_sources: bool) -> str:
    s = container.settings
    if not (s.of(SlackSettings).slack_bot_token or has_sources):
        raise NotConfigured("no worker needed: neither Slack nor sources are configured")
    seen = workers_seen(container.redis, s.key_prefix)
    alive = [(name, age) for name, age in seen if age <= s.worker_stale_after]
    if not alive:
        last = f"; the last one {seen[0][1]:.0f} s ago" if seen else ""
        raise CheckFailed(f"no worker seen in the last {s.worker_stale_after:.0f} s{last}",
                          "start chatops worker with the same REDIS_URL and CHATOPS_KEY_PREFIX")
    return f"{len(alive)} alive (" + ", ".join(f"{name} {age:.0f} s ago" for name, age in alive[:5]) + ")"


def _beat(container: Container, has_sources: bool) -> str:
    s = container.settings
    age = beat_seen(container.redis, s.key_prefix)
    stale = age is None or age > 3 * BEAT_BEAT_S
    if not stale:
        return f"seen {age:.0f} s ago"
    when = "never seen" if age is None else f"last seen {age:.0f} s ago"
    if has_sources:
        raise CheckFailed(f"chatops beat {when}: the sources are not synced on schedule",
                          "run one chatops beat with the same REDIS_URL and CHATOPS_KEY_PREFIX")
    if s.of(SlackSettings).slack_bot_token:
        raise CheckWarning(f"chatops beat {when}: proposals past their expiry keep their buttons, no daily report",
                           "run one chatops beat")
    raise NotConfigured(f"not needed here ({when}): no sources and no Slack")


def _safe_url(url: str) -> str:
    """A URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
