"""``chatops``: one entry point for operators, scripts and the processes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from chatops import logs
from chatops.settings import ConfigError, Settings

# Exceptions that are the user's (or the environment's) to fix: one line, no traceback.
def _user_errors() -> tuple[type[BaseException], ...]:
    import redis

    from connectors.index.models import ModelMissing
    from connectors.index.qdrant_index import IndexBusy
    from connectors.sources.filesystem.acl import AclFileError

    return (ConfigError, IndexBusy, ModelMissing, AclFileError, FileNotFoundError,
            redis.exceptions.ConnectionError)


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except Exception as exc:  # noqa: BLE001
            if isinstance(exc, _user_errors()):
                message = str(exc).strip() or type(exc).__name__
                if isinstance(exc, __import__("redis").exceptions.ConnectionError):
                    message = f"cannot reach Redis ({exc}); start it or set REDIS_URL"
                click.echo(f"error: {message}", err=True)
                sys.exit(2)
            raise


def _settings(ctx, *, service: bool = False) -> Settings:
    """Settings, built once. One-shot commands log warnings only unless -v is given."""
    root = ctx.find_root()
    if root.obj is None:
        root.obj = Settings.load()
        verbose = root.params.get("verbose")
        level = root.obj.log_level if (service or verbose) else "WARNING"
        logs.setup(level, root.obj.log_format if service else "text")
    return root.obj


@click.group(cls=_Group)
@click.option("-v", "--verbose", is_flag=True, help="Log at CHATOPS_LOG_LEVEL in one-shot commands.")
@click.pass_context
def main(ctx, verbose: bool):
    """chatops: answers from your documents in Slack, with permissions and citations."""


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--base-url", help="Link documents as BASE_URL/<relative path> in citations.")
@click.pass_context
def ingest(ctx, path: Path, base_url: str | None):
    """Index a folder of Markdown, text, HTML and PDF files (permissions from its .acl.yml)."""
    from chatops.container import Container
    from connectors.sources.filesystem.connector import FilesystemSource
    from workers.pipelines.ingest import ingest as run_ingest

    settings = _settings(ctx)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a folder")
    container = Container(settings)
    try:
        report = run_ingest(FilesystemSource(path, base_url), container.index, container.embedder,
                            progress=sys.stderr.isatty())
    finally:
        container.close()
    click.echo(report.summary())
    for rel, why in report.skipped:
        click.echo(f"  skipped {rel}: {why}", err=True)


@main.command()
@click.argument("question")
@click.option("--as", "as_email", required=True, metavar="EMAIL", help="Ask as this person.")
@click.option("--channel", help="Answer for everyone in this Slack channel (needs SLACK_BOT_TOKEN).")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.pass_context
def ask(ctx, question: str, as_email: str, channel: str | None, as_json: bool):
    """Ask a question through the same pipeline the worker runs."""
    from chatops.container import Container
    from workers.pipelines.ask import Question, Refusal

    settings = _settings(ctx)
    container = Container(settings)
    try:
        if channel and container.gateway is None:
            raise ConfigError("--channel needs SLACK_BOT_TOKEN to list the channel's members")
        pipeline = container.pipeline(with_slack=bool(channel))
        q = Question(text=question, asker_email=as_email, channel=channel,
                     channel_type="channel" if channel else None)
        try:
            answer, timings = pipeline.ask(q)
        except Refusal as refusal:
            if as_json:
                click.echo(json.dumps({"answer": str(refusal), "citations": [], "mode": "refused"}))
            else:
                click.echo(f"refused: {refusal}")
            sys.exit(1)
    finally:
        container.close()
    if as_json:
        click.echo(json.dumps(answer.as_json(), ensure_ascii=False))
        return
    click.echo(render_answer(answer))


def render_answer(answer) -> str:
    lines = []
    if answer.note:
        lines.append(f"({answer.note})")
    lines.append(answer.text)
    if answer.citations:
        lines.append("")
        lines.append("Sources:")
        for c in answer.citations:
            lines.append(f"  [{c.n}] {c.title} — {c.url or c.source}")
    return "\n".join(lines)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3000, show_default=True, type=int)
@click.pass_context
def serve(ctx, host: str, port: int):
    """Serve Slack over HTTP: POST /slack/events and GET /healthz."""
    import uvicorn

    settings = _settings(ctx, service=True)
    web = build_web(settings)
    uvicorn.run(web, host=host, port=port, log_level="warning", access_log=False)


def build_web(settings: Settings):
    from bot.app import build_app
    from bot.web import create_web_app
    from chatops.container import Container
    from workers.celery_app import create_celery, make_dispatch

    container = Container(settings)
    celery = create_celery(settings)
    bolt = build_app(settings, state=container.state, dispatch=make_dispatch(celery, settings))

    def ready():
        try:
            container.redis.ping()
        except Exception as exc:  # noqa: BLE001
            return False, f"redis unavailable: {type(exc).__name__}"
        return True, "ok"

    return create_web_app(bolt, ready=ready)


@main.command()
@click.option("--concurrency", default=4, show_default=True, type=int)
@click.option("--pool", type=click.Choice(["threads", "prefork", "solo"]), default=None,
              help="Default: threads with an embedded index (one process may open it), prefork otherwise.")
@click.pass_context
def worker(ctx, concurrency: int, pool: str | None):
    """Run a Celery worker for questions and clicks."""
    settings = _settings(ctx, service=True)
    from workers.worker import build, default_pool

    pool = pool or default_pool(settings)
    if pool == "prefork" and not settings.qdrant_url and concurrency > 1:
        raise ConfigError("an embedded index can be opened by one process only: use --pool threads, "
                          "or set QDRANT_URL to share a Qdrant server between worker processes")
    app, _container = build(settings, pool)
    app.worker_main(["worker", "--pool", pool, "--concurrency", str(concurrency),
                     "--queues", settings.queue_name, "--loglevel", settings.log_level,
                     "--without-gossip", "--without-mingle"])


@main.command()
@click.pass_context
def socket(ctx):
    """Serve Slack over Socket Mode (SLACK_APP_TOKEN)."""
    from bot.app import build_app
    from bot.socket_mode import run_socket_mode
    from chatops.container import Container
    from workers.celery_app import create_celery, make_dispatch

    settings = _settings(ctx, service=True)
    container = Container(settings)
    bolt = build_app(settings, state=container.state,
                     dispatch=make_dispatch(create_celery(settings), settings), socket_mode=True)
    run_socket_mode(bolt, settings.slack_app_token)


@main.command()
@click.pass_context
def demo(ctx):
    """Ingest the sample corpus and ask the same questions as different people."""
    from chatops.demo import run_demo

    run_demo()


@main.group()
def models():
    """Offline embedding models."""


@models.command("install")
def models_install():
    """Prepare the default embedding model folder (no torch, no model hub)."""
    from connectors.index.models import install

    install(progress=lambda m: click.echo(m, err=True))


if __name__ == "__main__":  # pragma: no cover
    main()
