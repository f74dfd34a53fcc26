"""``chatops``: one entry point for operators, scripts and the processes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from chatops import logs
from chatops.settings import STRATEGIES, ConfigError, Settings

# Exceptions that are the user's (or the environment's) to fix: one line, no traceback.
def _user_errors() -> tuple[type[BaseException], ...]:
    import redis

    from connectors.index.models import ModelMissing
    from connectors.index.base import IndexBusy
    from connectors.sources.filesystem.acl import AclFileError
    from chatops_app.ingest_remote import JobFailed, NoWorker

    return (ConfigError, IndexBusy, ModelMissing, AclFileError, FileNotFoundError,
            redis.exceptions.ConnectionError, NoWorker, JobFailed)


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
                message = " ".join(str(exc).split()) or type(exc).__name__
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
@click.option("--via-workers", is_flag=True,
              help="Hand the work to the running workers, in batch tasks (they must see PATH at the same "
                   "absolute path).")
@click.option("--batch-docs", type=click.IntRange(min=1),
              help="With --via-workers: documents per batch task (default CHATOPS_INGEST_BATCH_DOCS).")
@click.option("--wait/--no-wait", default=True,
              help="With --via-workers: follow the job to its end (default), or print its id and return.")
@click.option("--timeout", type=click.FloatRange(min=0), default=60, show_default=True,
              help="With --via-workers: seconds to wait for a worker to take the job.")
@click.pass_context
def ingest(ctx, path: Path, base_url: str | None, via_workers: bool, batch_docs: int | None, wait: bool,
           timeout: float):
    """Index a folder of Markdown, text, HTML and PDF files (permissions from its .acl.yml)."""
    from chatops_app.container import Container
    from connectors.index.base import IndexBusy
    from connectors.sources.filesystem.connector import FilesystemSource
    from usecases.ingest import ingest as run_ingest

    settings = _settings(ctx)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a folder")
    if via_workers:
        _ingest_via_workers(settings, FilesystemSource(path, base_url, settings.group_names), base_url,
                            batch_docs=batch_docs, wait=wait, timeout=timeout)
        return
    given = [flag for name, flag in (("batch_docs", "--batch-docs"), ("wait", "--wait/--no-wait"),
                                     ("timeout", "--timeout"))
             if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE]
    if given:
        raise click.UsageError(", ".join(given) + ": only with --via-workers")
    container = Container(settings)
    try:
        try:
            index = container.index
        except IndexBusy as exc:
            raise IndexBusy(f"{exc}; or hand the ingestion to that worker: chatops ingest --via-workers") from None
        report = run_ingest(FilesystemSource(path, base_url, settings.group_names), index, container.embedder,
                            progress=sys.stderr.isatty())
        optimize = getattr(index, "optimize", None)
        if optimize is not None:
            # Build the HNSW graph here, in the one-shot process, never in the worker; also when
            # nothing changed here, for what ingest --via-workers wrote (a no-op when nothing needs it).
            # The model's memory goes first: the two together are the ingestion's peak.
            container.release_embedder()
            optimize()
    finally:
        container.close()
    _print_report(report)


def _ingest_via_workers(settings: Settings, source, base_url: str | None, *, batch_docs: int | None,
                        wait: bool, timeout: float) -> None:
    """Send the plan task and follow the job in Redis; no index, no model in this process."""
    from chatops_app.container import Container
    from chatops_app.ingest_remote import submit, wait as follow
    from connectors.sources.spec import filesystem_spec
    from workers.celery_app import create_celery, make_dispatch
    from workers.ingest_jobs import IngestJobs

    container = Container(settings)
    try:
        jobs = IngestJobs(container.redis, settings.key_prefix)
        job = submit(jobs, make_dispatch(create_celery(settings), settings), filesystem_spec(source.root, base_url),
                     source.source_id, batch_docs=batch_docs or settings.ingest_batch_docs,
                     batch_chunks=settings.ingest_batch_chunks)
        if not wait:
            click.echo(job)
            return
        try:
            report = follow(jobs, job, pickup_timeout=timeout, progress=sys.stderr.isatty(),
                            where=f"the same REDIS_URL and CHATOPS_QUEUE (queue {settings.ingest_queue})")
        except KeyboardInterrupt:
            click.echo(f"stopped following ingest job {job}; the workers carry on", err=True)
            sys.exit(130)
    finally:
        container.close()
    _print_report(report)
    for label, reason in report.failed:
        click.echo(f"  failed {label}: {reason}", err=True)
    if report.failed:
        sys.exit(1)


def _print_report(report) -> None:
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
    from chatops_app.container import Container
    from usecases.ask import Question, Refusal

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
            _record_cli_question(container, q, as_email, None)
            if as_json:
                click.echo(json.dumps({"answer": str(refusal), "citations": [], "mode": "refused"}))
            else:
                click.echo(f"refused: {refusal}")
            sys.exit(1)
        _record_cli_question(container, q, as_email, answer)
        proposed = [container.proposals.propose(call.name, call.arguments, answer.asker, channel=None,
                                                thread_ts=None, correlation_id=None)
                    for call in answer.tool_calls[:3]]
    finally:
        container.close()
    if as_json:
        out = answer.as_json()
        if proposed:
            out["proposals"] = [{"id": o.proposal.id, "action": o.proposal.action, "arguments": o.proposal.arguments}
                                if hasattr(o, "proposal") else {"invalid": o.message()} for o in proposed]
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    click.echo(render_answer(answer))
    for o in proposed:
        if hasattr(o, "proposal"):
            click.echo(f"proposed {o.proposal.action} {json.dumps(o.proposal.arguments)} as {o.proposal.id}; "
                       f"approvers: {container.proposals.catalogue.describe(o.policy)}")
        else:
            click.echo(o.message())


def _record_cli_question(container, q, email: str, answer) -> None:
    from usecases.ask import question_record

    fields = question_record(q, answer, asker_email=email)
    fields.update(channel=q.channel or "cli", channel_type=q.channel_type or "cli")
    container.store.record_question(correlation_id=None, team=None, latency_ms=None, **fields)


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
@click.option("--workers", default=1, show_default=True, type=int,
              help="Web processes (one per core handles bursts best; they share nothing but Redis).")
@click.pass_context
def serve(ctx, host: str, port: int, workers: int):
    """Serve Slack over HTTP: POST /slack/events and GET /healthz."""
    import uvicorn

    settings = _settings(ctx, service=True)
    if workers > 1:
        build_web(settings)  # fail here, once, on bad configuration
        uvicorn.run("chatops_app.cli:web_factory", factory=True, host=host, port=port, workers=workers,
                    log_level="warning", access_log=False)
        return
    uvicorn.run(build_web(settings), host=host, port=port, log_level="warning", access_log=False)


def web_factory():
    """The web app for each worker process of ``chatops serve --workers N``."""
    settings = Settings.load()
    logs.setup(settings.log_level, settings.log_format)
    return build_web(settings)


def build_web(settings: Settings):
    from bot.app import build_app
    from bot.web import create_web_app
    from chatops_app.container import Container
    from workers.celery_app import create_celery, make_dispatch

    from workers.health import web_status

    container = Container(settings)
    container.catalogue  # noqa: B018 - an invalid action catalogue stops the start, with its reason
    celery = create_celery(settings)
    bolt = build_app(settings, state=container.state, dispatch=make_dispatch(celery, settings))

    def ready():
        try:
            container.redis.ping()
            return web_status(container.redis, settings.key_prefix, settings.queue_name,
                              settings.worker_stale_after)
        except Exception as exc:  # noqa: BLE001
            return False, f"redis unavailable: {type(exc).__name__}"

    return create_web_app(bolt, ready=ready, max_body_bytes=settings.max_body_bytes,
                          signing_secret=settings.slack_signing_secret.get_secret_value())


@main.command()
@click.option("--concurrency", default=4, show_default=True, type=int)
@click.option("--pool", type=click.Choice(["threads", "prefork", "solo"]), default=None,
              help="Default: threads with an embedded index (one process may open it), prefork otherwise.")
@click.option("--health-port", type=click.IntRange(1, 65535), default=None,
              help="Serve GET /healthz and /metrics on this port (default CHATOPS_WORKER_HEALTH_PORT).")
@click.pass_context
def worker(ctx, concurrency: int, pool: str | None, health_port: int | None):
    """Run a Celery worker for questions, clicks and ingestion (ingest --via-workers)."""
    settings = _settings(ctx, service=True)
    from chatops_app.worker import build, default_pool

    pool = pool or default_pool(settings)
    if pool == "prefork" and not settings.qdrant_url and concurrency > 1:
        raise ConfigError("an embedded index can be opened by one process only: use --pool threads, "
                          "or set QDRANT_URL to share a Qdrant server between worker processes")
    from chatops_app.container import Container

    Container(settings).catalogue  # noqa: B018 - fail at start-up on an invalid action catalogue
    app, _container = build(settings, pool, health_port=health_port)
    app.worker_main(["worker", "--pool", pool, "--concurrency", str(concurrency),
                     "--queues", f"{settings.queue_name},{settings.ingest_queue}",
                     "--loglevel", settings.log_level,
                     "--without-gossip", "--without-mingle"])


@main.command()
@click.argument("url", default="http://127.0.0.1:3000/livez")
@click.option("--timeout", type=float, default=3.0, show_default=True)
def healthcheck(url: str, timeout: float):
    """Exit 0 if URL answers 200 (for container health checks: the web's /livez or /healthz, the
    worker's http://127.0.0.1:PORT/healthz)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - an operator's URL
            body = resp.read(200).decode("utf-8", "replace")
            click.echo(body)
            return
    except urllib.error.HTTPError as exc:
        click.echo(f"unhealthy: {exc.code} {exc.read(200).decode('utf-8', 'replace')}", err=True)
    except (urllib.error.URLError, OSError) as exc:
        click.echo(f"unhealthy: {exc}", err=True)
    sys.exit(1)


@main.command()
@click.pass_context
def socket(ctx):
    """Serve Slack over Socket Mode (SLACK_APP_TOKEN)."""
    from bot.app import build_app
    from bot.socket_mode import run_socket_mode
    from chatops_app.container import Container
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
    from chatops_app.demo import run_demo

    run_demo()


def _when(value: str):
    """An ISO date/time (UTC if no zone) or a relative age like 30m, 12h, 7d."""
    from datetime import datetime, timedelta, timezone

    units = {"m": "minutes", "h": "hours", "d": "days"}
    if value and value[-1] in units and value[:-1].isdigit():
        return datetime.now(timezone.utc) - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither an ISO date/time nor an age like 7d") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _proposal_json(p) -> dict:
    from dataclasses import asdict

    out = asdict(p)
    for key, value in out.items():
        if hasattr(value, "isoformat"):
            out[key] = value.isoformat()
    return out


@main.command()
@click.argument("action")
@click.option("--as", "as_email", required=True, metavar="EMAIL", help="The person requesting it.")
@click.option("--args", "args_json", default="{}", show_default=True, help="The arguments as JSON.")
@click.pass_context
def propose(ctx, action: str, as_email: str, args_json: str):
    """Propose an action as the model would (validated; nothing runs until approved)."""
    from chatops_app.container import Container
    from usecases.people import Refusal, by_email
    from usecases.proposals import Invalid

    container = Container(_settings(ctx))
    try:
        try:
            requester = by_email(container.identity, as_email)
        except Refusal as refusal:
            click.echo(f"refused: {refusal}")
            sys.exit(1)
        outcome = container.proposals.propose(action, args_json, requester, channel=None, thread_ts=None,
                                              correlation_id=None)
    finally:
        container.close()
    if isinstance(outcome, Invalid):
        click.echo(outcome.message())
        sys.exit(1)
    p = outcome.proposal
    approvers = container.catalogue.describe(outcome.policy)
    click.echo(f"proposed {p.action} {json.dumps(p.arguments)} as {p.id}; approvers: {approvers}; "
               f"expires {p.expires_at.isoformat()}")


@main.group()
def proposals():
    """Action proposals and their decisions."""


@proposals.command("list")
@click.option("--state", type=click.Choice(["proposed", "approved", "executing", "succeeded", "failed",
                                            "rejected", "expired"]))
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def proposals_list(ctx, state: str | None, limit: int, as_json: bool):
    """List proposals, newest first."""
    from chatops_app.container import Container

    container = Container(_settings(ctx))
    try:
        rows = container.store.list_proposals(state=state, limit=limit)
    finally:
        container.close()
    for p in rows:
        if as_json:
            click.echo(json.dumps(_proposal_json(p)))
        else:
            click.echo(f"{p.id}  {p.state:9s}  {p.created_at:%Y-%m-%d %H:%M}  {p.action}  "
                       f"{json.dumps(p.arguments)}  by {p.requested_by_email}")


@proposals.command("show")
@click.argument("proposal_id")
@click.pass_context
def proposals_show(ctx, proposal_id: str):
    """One proposal with its audit events."""
    from chatops_app.container import Container

    container = Container(_settings(ctx))
    try:
        p = container.store.get_proposal(proposal_id)
        if p is None:
            raise click.ClickException(f"no proposal {proposal_id}")
        events = container.store.events(proposal_id)
    finally:
        container.close()
    click.echo(json.dumps({"proposal": _proposal_json(p), "events": events}, indent=2, default=str))


def _cli_decision(ctx, proposal_id: str, decision: str, as_email: str, reason: str | None):
    from chatops_app.container import Container
    from usecases.people import Refusal, by_email
    from usecases.proposals import Refused

    settings = _settings(ctx)
    if not settings.cli_decisions:
        raise ConfigError("decisions from the command line are off; decide in Slack, or set "
                          "CHATOPS_CLI_DECISIONS=true on this host (recorded as via=cli)")
    container = Container(settings)
    try:
        try:
            actor = by_email(container.identity, as_email)
        except Refusal as refusal:
            click.echo(f"refused: {refusal}")
            sys.exit(1)
        outcome = container.proposals.decide(proposal_id, decision, actor, reason=reason, via="cli")
    finally:
        container.close()
    if isinstance(outcome, Refused):
        click.echo(f"refused: {outcome.message}")
        sys.exit(1)
    final = outcome.executed or outcome.proposal
    summary = (final.result or {}).get("summary")
    click.echo(f"{final.id}: {final.state}" + (f" — {summary}" if summary else ""))


@proposals.command("approve")
@click.argument("proposal_id")
@click.option("--as", "as_email", required=True, metavar="EMAIL")
@click.pass_context
def proposals_approve(ctx, proposal_id: str, as_email: str):
    """Approve as EMAIL (needs CHATOPS_CLI_DECISIONS=true); runs the action once if allowed."""
    _cli_decision(ctx, proposal_id, "approve", as_email, None)


@proposals.command("reject")
@click.argument("proposal_id")
@click.option("--as", "as_email", required=True, metavar="EMAIL")
@click.option("--reason")
@click.pass_context
def proposals_reject(ctx, proposal_id: str, as_email: str, reason: str | None):
    """Reject as EMAIL (needs CHATOPS_CLI_DECISIONS=true)."""
    _cli_decision(ctx, proposal_id, "reject", as_email, reason)


@proposals.command("expire")
@click.pass_context
def proposals_expire(ctx):
    """Mark overdue proposals expired (run it from cron; clicks also expire them lazily)."""
    from chatops_app.container import Container

    from bot.responder import proposal_message

    container = Container(_settings(ctx))
    try:
        expired = container.proposals.expire_overdue()
        updated = 0
        for p in expired:  # take the buttons off the Slack message, where there is one
            if container.gateway is not None and p.channel and p.message_ts:
                try:
                    container.gateway.update(p.channel, p.message_ts, proposal_message(p, container.proposals))
                    updated += 1
                except Exception as exc:  # noqa: BLE001 - the state change stands; say what failed
                    click.echo(f"could not update the Slack message of {p.id}: {type(exc).__name__}", err=True)
    finally:
        container.close()
    click.echo(f"{len(expired)} proposal(s) expired, {updated} Slack message(s) updated")


@main.group()
def audit():
    """The audit trail."""


@audit.command("export")
@click.option("--since", "since", required=True, help="ISO date/time (UTC) or an age like 7d.")
@click.option("--until", "until", help="ISO date/time (UTC).")
@click.option("--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl", show_default=True)
@click.pass_context
def audit_export(ctx, since: str, until: str | None, fmt: str):
    """Every audit event since a time, one JSON object a line."""
    from chatops_app.container import Container

    container = Container(_settings(ctx))
    try:
        for event in container.store.export(_when(since), _when(until) if until else None):
            click.echo(json.dumps(event, ensure_ascii=False, default=str))
    finally:
        container.close()


@main.group(name="eval")
def eval_group():
    """Measure retrieval quality."""


@eval_group.command("retrieval")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--k", default=10, show_default=True, type=int)
@click.option("--stage", "stages", multiple=True,
              type=click.Choice([*STRATEGIES, "all"]),
              help="Strategies to score (repeatable); default: the configured one (CHATOPS_RETRIEVAL).")
@click.option("--dense-weight", type=float, help="Weight of the dense list in 'weighted' fusion.")
@click.option("--index-dir", type=click.Path(path_type=Path),
              help="Keep the index here and reuse it next time (unchanged documents are skipped).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def eval_retrieval(ctx, folder: Path, k: int, stages: tuple[str, ...], dense_weight: float | None,
                   index_dir: Path | None, as_json: bool):
    """nDCG@k, recall@k, MRR@k and latency on a BEIR folder (ingested into a throwaway index)."""
    from chatops_app.container import Container
    from usecases.evaluate import evaluate, throwaway_index

    settings = _settings(ctx)
    chosen = list(STRATEGIES) if "all" in stages else list(stages) or [settings.retrieval]
    container = Container(settings)

    results = evaluate(folder, embedder=container.embedder, index_factory=throwaway_index(settings.index_engine),
                       strategies=chosen,
                       k=k, dense_weight=settings.dense_weight if dense_weight is None else dense_weight,
                       candidates=settings.candidates, progress=sys.stderr.isatty(), index_dir=index_dir)
    if as_json:
        click.echo(json.dumps(results[chosen[0]] if len(chosen) == 1 else results))
        return
    for strategy, m in results.items():
        click.echo(f"{strategy:9s} nDCG@{k} {m[f'ndcg@{k}']:.4f}  recall@{k} {m[f'recall@{k}']:.4f}  "
                   f"MRR@{k} {m[f'mrr@{k}']:.4f}  queries {m['queries']}  "
                   f"latency p50 {m['latency_ms']['p50']:.1f} ms p99 {m['latency_ms']['p99']:.1f} ms")


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
