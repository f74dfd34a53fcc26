"""``chatops doctor``: which checks this deployment's settings call for, built from the composition
root. Each check lives with what it checks (bot/doctor.py for Slack, each source, action
connector, model and identity provider its own ``check()``, the Entra app's permissions in
connectors/microsoft/app_roles.py, the shared services in usecases/doctor_checks.py);
usecases/doctor.py runs them."""

from __future__ import annotations

from typing import Callable

from bot.doctor import SlackChecks
from bot.gateway import make_client
from bot.links import ANY_TENANT_FIX, any_tenant_warning
from bot.settings import SlackSettings
from chatops.checks import CheckFailed, CheckWarning, NotConfigured
from chatops.errors import ConfigError
from chatops_app.container import Container
from connectors.identity.registry import build_identity
from connectors.index.settings import IndexSettings
from connectors.llm.settings import LLMSettings
from connectors.microsoft.app_roles import CONSOLE_OVERAGE, NOTIFICATIONS, check_certificate, check_graph_roles
from connectors.microsoft.credentials import graph_client
from connectors.microsoft.settings import EntraSettings
from connectors.rerank.settings import RerankSettings
from connectors.sources.registry import SOURCES
from usecases import doctor_checks as check
from workers.health import BEAT_BEAT_S, beat_seen, workers_seen

Check = tuple[str, Callable[[], str]]


def checks(container: Container) -> list[Check]:
    s = container.settings
    found: list[Check] = [*SlackChecks(s, lambda token, url: make_client(token, url, retries=0)).checks(),
                          ("redis", lambda: check.redis(container.redis, s.redis_url)),
                          ("database", lambda: check.database(s.resolved_database_url)),
                          ("index", lambda: _index(container)),
                          ("language model", lambda: _llm(container)),
                          ("identity", lambda: build_identity(s, container.http_client).check())]
    try:
        sources, connectors = container.sources, container.catalogue.connectors
    except ConfigError as exc:   # what would stop every process at start: one failed check, the rest still run
        message = str(exc)
        found.append(("configuration", lambda: _fail(message, "fix CHATOPS_CONFIG (or the setting it names)")))
        sources, connectors = {}, {}
    else:
        found.append(("configuration", lambda: check.configuration(
            s.config_file, sources=len(container.sources), actions=len(container.catalogue.connectors),
            aliases=len(s.file.groups))))
    if any(SOURCES[spec["kind"]].settings is EntraSettings for spec in sources.values()):   # the Entra app's
        found.append(("entra certificate", lambda: check_certificate(s.of(EntraSettings))))
    if sources and container.notifications_configured:
        found.append(("graph notifications", lambda: check.notifications(
            s.public_url, lambda: check_graph_roles(_graph(container), list(NOTIFICATIONS)))))
    if s.link_hosts:
        found.append(("answer links", lambda: _link_hosts(s.link_hosts)))
    if s.of(RerankSettings).rerank != "none":
        found.append(("reranker", lambda: _reranker(container)))
    if s.of(EntraSettings).configured:
        found.append(("console sign-in", lambda: "Entra: " + check_graph_roles(_graph(container), list(CONSOLE_OVERAGE))))
    for name in sorted(sources):
        found.append((f"source {name}", lambda name=name: check.source(lambda: container.open_sync_source(name))))
    for name, connector in sorted(connectors.items()):
        found.append((f"action {name}", getattr(connector, "check", None) or _no_check))
    for tool in s.file.tools:
        name = str(tool.get("name")) if isinstance(tool, dict) else "?"
        found.append((f"tool {name}", lambda name=name: container.toolbox.check(name)))
    slack = bool(s.of(SlackSettings).slack_bot_token)
    found += [("workers", lambda: check.workers(workers_seen(container.redis, s.key_prefix),
                                                stale_after=s.worker_stale_after, needed=slack or bool(sources))),
              ("beat", lambda: check.beat(beat_seen(container.redis, s.key_prefix), interval=BEAT_BEAT_S,
                                          has_sources=bool(sources), has_slack=slack))]
    return found


def _fail(message: str, fix: str) -> str:
    raise CheckFailed(message, fix)


def _no_check() -> str:
    raise NotConfigured("this kind has no check")


def _link_hosts(hosts: tuple[str, ...]) -> str:
    too_wide = any_tenant_warning(hosts)
    if too_wide:
        raise CheckWarning(too_wide, ANY_TENANT_FIX)
    return f"{len(hosts)} host(s) besides the cited sources: {', '.join(hosts)}"


def _index(container: Container) -> str:
    s, index = container.settings, container.settings.of(IndexSettings)
    return check.index(lambda: container.embedder, lambda: container.index, embedded=lambda: container.engine.embedded,
                       path=index.path(s.data_dir), where=index.location(s.data_dir))


def _llm(container: Container) -> str:
    llm = container.settings.of(LLMSettings)
    return check.model(container.llm, provider=llm.llm_provider, small_model=llm.llm_model_small)


def _reranker(container: Container) -> str:
    try:
        reranker = container.reranker
    except ConfigError as exc:
        raise CheckFailed(str(exc), "set what it names, or CHATOPS_RERANK=none") from None
    own = getattr(reranker, "check", None)
    return own() if own is not None else f"{reranker.name}: through the language model (checked above)"


def _graph(container: Container):
    return graph_client(container.settings.of(EntraSettings), container.http_client, max_attempts=1)
