"""The processes: ``chatops serve`` (Slack over HTTP), ``worker``, ``socket`` (Socket Mode),
``beat`` (the scheduler) and ``healthcheck`` (for container health checks).

``worker`` and ``beat`` import the worker's module (``chatops_app.worker``: Celery and the
composition root) when they start, as every command imports the composition root
(``chatops_app.cli.root``).

``chatops worker`` with a process pool starts itself again (``os.execv``) once, with
``PROMETHEUS_MULTIPROC_DIR`` set: prometheus_client chooses how a metric keeps its value when
it is first imported (``prometheus_client.values.ValueClass``), which the CLI's own imports
have done before the pool is known (the pool depends on the index engine the composition root
builds). Without the restart the pool's processes would count into their own memory, and the
health port's /metrics would show none of it (tests/integration/test_worker_metrics.py).
"""

from __future__ import annotations

import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import click
import uvicorn

from bot.settings import SlackSettings
from bot.socket_mode import run_socket_mode
from chatops import logs
from chatops.errors import ConfigError
from chatops.settings import Settings
from chatops_app.cli.root import build_container, main, opened, settings_of
from chatops_app.settings import load_settings


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int,
              help="Web processes (one per core handles bursts best; they share nothing but Redis).")
@click.pass_context
def serve(ctx, host: str, port: int, workers: int):
    """Serve Slack over HTTP: POST /slack/events, GET /livez and GET /healthz."""
    settings = settings_of(ctx, service=True)
    if workers > 1:
        build_web(settings)  # fail here, once, on bad configuration
        # each worker process counts into its own files there; /metrics in any of them adds all up
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="chatops-metrics-"))
        uvicorn.run("chatops_app.cli.serve:web_factory", factory=True, host=host, port=port, workers=workers,
                    log_level="warning", access_log=False)
        return
    uvicorn.run(build_web(settings), host=host, port=port, log_level="warning", access_log=False)


def web_factory():
    """The web app for each worker process of ``chatops serve --workers N``."""
    settings = load_settings()
    logs.setup(settings.log_level, settings.log_format)
    return build_web(settings)


def build_web(settings: Settings):
    return build_container(settings).web_app()


@main.command()
@click.option("--concurrency", default=4, show_default=True, type=int)
@click.option("--pool", type=click.Choice(["threads", "prefork", "solo"]), default=None,
              help="Default: threads with an embedded index (one process may open it), prefork otherwise.")
@click.option("--health-port", type=click.IntRange(1, 65535), default=None,
              help="Serve GET /healthz and /metrics on this port (default CHATOPS_WORKER_HEALTH_PORT).")
@click.pass_context
def worker(ctx, concurrency: int, pool: str | None, health_port: int | None):
    """Run a Celery worker for questions, clicks and ingestion (ingest --via-workers)."""
    from chatops_app.worker import build, default_pool

    settings = settings_of(ctx, service=True)
    app, container = build(settings, pool, health_port=health_port)
    pool = pool or default_pool(container)
    if pool == "prefork" and not os.environ.get("PROMETHEUS_MULTIPROC_DIR") and Path(sys.argv[0]).name == "chatops":
        # Worker processes count into files there and the health port adds them all up; the
        # variable must be set before the metrics are first created, so start again with it
        # (see the module).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="chatops-metrics-")
        os.execv(sys.argv[0], sys.argv)
    if pool == "prefork" and container.engine.embedded and concurrency > 1:
        raise ConfigError("an embedded index can be opened by one process only: use --pool threads, "
                          "or set QDRANT_URL to share a Qdrant server between worker processes")
    container.check_index_embedder()  # an index built with another embedder: refused, naming both
    container.catalogue  # noqa: B018 - fail at start-up on an invalid action catalogue
    container.sources  # noqa: B018 - and on invalid sources
    container.toolbox  # noqa: B018 - and on invalid tools (every kind's own settings checked)
    app.worker_main(["worker", "--pool", pool, "--concurrency", str(concurrency),
                     "--queues", f"{settings.queue_name},{settings.ingest_queue}",
                     "--loglevel", settings.log_level, "--without-gossip", "--without-mingle"])


@main.command()
@click.pass_context
def socket(ctx):
    """Serve Slack over Socket Mode (SLACK_APP_TOKEN)."""
    with opened(ctx, service=True) as container:
        run_socket_mode(container.bolt_app(socket_mode=True), container.settings.of(SlackSettings).slack_app_token)


@main.command()
@click.option("--schedule-file", type=click.Path(path_type=Path), default=None,
              help="Where beat keeps when each entry last ran (default: CHATOPS_DATA_DIR/celerybeat-schedule).")
@click.pass_context
def beat(ctx, schedule_file: Path | None):
    """The scheduler (Celery beat): syncs every configured source's changes, permissions and
    everything on their intervals (CHATOPS_SYNC_*_EVERY), through the workers. Run one."""
    from chatops_app.worker import run_beat

    with opened(ctx, service=True) as container:
        run_beat(container, schedule_file, announce=lambda line: click.echo(line, err=True))


@main.command()
@click.argument("url", default="http://127.0.0.1:3000/livez")
@click.option("--timeout", type=float, default=3.0, show_default=True)
def healthcheck(url: str, timeout: float):
    """Exit 0 if URL answers 200 (for container health checks: the web's /livez or /healthz, the
    worker's http://127.0.0.1:PORT/healthz)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - an operator's URL
            click.echo(resp.read(200).decode("utf-8", "replace"))
            return
    except urllib.error.HTTPError as exc:
        click.echo(f"unhealthy: {exc.code} {exc.read(200).decode('utf-8', 'replace')}", err=True)
    except (urllib.error.URLError, OSError) as exc:
        click.echo(f"unhealthy: {exc}", err=True)
    sys.exit(1)
