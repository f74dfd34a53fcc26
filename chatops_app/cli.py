"""``chatops``: one entry point for operators, scripts and the processes.

Every command gets its services from the composition root (``chatops_app.container``).
That module, and the worker's (``chatops_app.worker``), are imported when a command needs
them: importing them costs about a second (Slack, Celery, SQLAlchemy, Alembic), which
``chatops --help``, ``chatops healthcheck`` and a mistyped option need not pay
(0.7 s instead of 2.5 s, measured with ``time chatops --help``). The demo command imports its
module late for the same reason.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import click
import redis
import uvicorn

from bot.maintenance.handler import expire_proposals
from bot.settings import SlackSettings
from bot.socket_mode import run_socket_mode
from chatops import logs
from chatops.errors import ConfigError
from chatops.settings import Settings
from chatops_app.settings import load_settings
from chatops_app.ingest_remote import JobFailed, NoWorker, submit, wait as follow
from connectors.index.base import IndexBusy
from console.auth import person_name
from connectors.index.models import ModelMissing, install as install_models
from connectors.index.retriever import STRATEGIES
from connectors.sources.filesystem.acl import AclFileError
from connectors.sources.registry import SourceSpecError, filesystem_spec, open_source
from usecases.ask import Question
from usecases.evaluate import evaluate
from usecases.ingest import ingest as run_ingest
from usecases.people import Refusal, by_email
from usecases.proposals import Invalid, Refused
from usecases import doctor as run_doctor
from usecases.report import as_text, report as make_report

# Exceptions that are the user's (or the environment's) to fix: one line, no traceback.
USER_ERRORS = (ConfigError, IndexBusy, ModelMissing, AclFileError, SourceSpecError, FileNotFoundError,
               redis.exceptions.ConnectionError, NoWorker, JobFailed)


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException):
            raise
        except Exception as exc:  # noqa: BLE001
            if isinstance(exc, USER_ERRORS):
                message = " ".join(str(exc).split()) or type(exc).__name__
                if isinstance(exc, redis.exceptions.ConnectionError):
                    message = f"cannot reach Redis ({exc}); start it or set REDIS_URL"
                click.echo(f"error: {message}", err=True)
                sys.exit(2)
            raise


def _settings(ctx, *, service: bool = False) -> Settings:
    """Settings, built once. One-shot commands log warnings only unless -v is given."""
    root = ctx.find_root()
    if root.obj is None:
        root.obj = load_settings()
        verbose = root.params.get("verbose")
        level = root.obj.log_level if (service or verbose) else "WARNING"
        logs.setup(level, root.obj.log_format if service else "text")
    return root.obj


@contextlib.contextmanager
def _container(ctx, *, service: bool = False) -> Iterator:
    """The composition root for one command, closed when the command ends."""
    from chatops_app.container import Container

    container = Container(_settings(ctx, service=service))
    try:
        yield container
    finally:
        container.close()


@click.group(cls=_Group)
@click.option("-v", "--verbose", is_flag=True, help="Log at CHATOPS_LOG_LEVEL in one-shot commands.")
@click.pass_context
def main(ctx, verbose: bool):
    """chatops: answers from your documents in Slack, with permissions and citations."""


# -- ingestion ---------------------------------------------------------------------------------


@main.command()
@click.argument("path", type=click.Path(path_type=Path), required=False)
@click.option("--source", "source_name", metavar="NAME",
              help="A source from the sources: list of CHATOPS_CONFIG instead of PATH.")
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
def ingest(ctx, path: Path | None, source_name: str | None, base_url: str | None, via_workers: bool,
           batch_docs: int | None, wait: bool, timeout: float):
    """Index a folder of Markdown, text, HTML and PDF files (permissions from its .acl.yml), or a
    configured source (--source NAME). ``ingest PATH`` is a filesystem source named by its path."""
    if (path is None) == (source_name is None):
        raise click.UsageError("give a PATH or --source NAME (one of them)")
    if path is not None and not path.is_dir():
        raise FileNotFoundError(f"{path} is not a folder")
    if not via_workers:
        given = [flag for name, flag in (("batch_docs", "--batch-docs"), ("wait", "--wait/--no-wait"),
                                         ("timeout", "--timeout"))
                 if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE]
        if given:
            raise click.UsageError(", ".join(given) + ": only with --via-workers")
    if source_name is not None:   # a configured source: its full sync (content, groups, permissions)
        if via_workers:
            ctx.invoke(sources_sync, name=source_name, full=True, via_workers=True)
        else:
            ctx.invoke(sources_sync, name=source_name, full=True)
        return
    with _container(ctx) as container:
        settings = container.settings
        spec = filesystem_spec(path, base_url)
        source = open_source(spec, settings.group_names, settings)
        if via_workers:
            _ingest_via_workers(container, spec, source.source_id, batch_docs=batch_docs, wait=wait, timeout=timeout)
            return
        try:
            index = container.index
        except IndexBusy as exc:
            raise IndexBusy(f"{exc}; or hand the ingestion to that worker: chatops ingest --via-workers") from None
        report = run_ingest(source, index, container.embedder, progress=sys.stderr.isatty())
        if container.engine.needs_optimize:
            # Build the search structures here, in the one-shot process, never in the worker; also when
            # nothing changed here, for what ingest --via-workers wrote (a no-op when nothing needs it).
            # The model's memory goes first: the two together are the ingestion's peak.
            container.release_embedder()
            index.optimize()
    _print_report(report)


def _ingest_via_workers(container, spec: dict, source_id: str, *, batch_docs: int | None, wait: bool,
                        timeout: float) -> None:
    """Send the plan task and follow the job in Redis; no index, no model in this process."""
    settings = container.settings
    jobs = container.ingest_jobs
    job = submit(jobs, container.dispatch, spec, source_id, batch_docs=batch_docs or settings.ingest_batch_docs,
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
    _print_report(report)
    for label, reason in report.failed:
        click.echo(f"  failed {label}: {reason}", err=True)
    if report.failed:
        sys.exit(1)


def _print_report(report) -> None:
    click.echo(report.summary())
    for rel, why in report.skipped:
        click.echo(f"  skipped {rel}: {why}", err=True)


# -- configured sources ------------------------------------------------------------------------


@main.group()
def sources():
    """The document sources of CHATOPS_CONFIG: list, sync, status."""


@sources.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def sources_list(ctx, as_json: bool):
    """The configured sources."""
    with _container(ctx) as container:
        rows = [{"name": name, "kind": spec["kind"], "source_id": container.source_ids[name][1],
                 **{k: v for k, v in spec.items() if k != "kind"}} for name, spec in sorted(container.sources.items())]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no sources configured (the sources: list of CHATOPS_CONFIG)")
    for row in rows:
        where = (row.get("path") or ", ".join(row.get("sites") or []) or ", ".join(row.get("onedrive_users") or [])
                 or " ".join(filter(None, [row.get("url"), ", ".join(row.get("spaces") or row.get("projects") or []),
                                           row.get("jql")])))
        click.echo(f"{row['name']:<20} {row['kind']:<11} {where}")


@sources.command("sync")
@click.argument("name")
@click.option("--full", is_flag=True, help="List everything again, prune what is gone, and re-read every "
                                          "permission (default: the changes since the last sync).")
@click.option("--permissions", is_flag=True, help="A permission pass only: the source's groups and every "
                                                 "document's permissions read again (what the scheduler "
                                                 "runs every CHATOPS_SYNC_PERMISSIONS_EVERY).")
@click.option("--via-workers", is_flag=True, help="Queue the sync for the workers instead of running it here.")
@click.pass_context
def sources_sync(ctx, name: str, full: bool, permissions: bool = False, via_workers: bool = False):
    """Sync one source now, in this process (it opens the embedded index itself, like ingest)."""
    if full and permissions:
        raise click.UsageError("--full already re-reads every permission; give one of --full and --permissions")
    mode = "full" if full else "permissions" if permissions else "changes"
    with _container(ctx) as container:
        if via_workers:
            container.sources_scheduler.enqueue(name, mode, force=True)
            click.echo(f"queued a {mode} sync of {name} for the workers; follow it with: chatops sources status")
            return
        sync = container.sync(name, progress=sys.stderr.isatty())
        try:
            container.index  # noqa: B018 - open it now: a busy index is one clear line
        except IndexBusy as exc:
            raise IndexBusy(f"{exc}; or let the workers sync it: chatops sources sync {name} --via-workers") from None
        report = sync.run(mode)
        if report.done and container.engine.needs_optimize and (report.added or report.updated):
            container.release_embedder()
            container.index.optimize()
    click.echo(report.summary())
    for title, why in report.skipped[:50]:
        click.echo(f"  skipped {title}: {why}", err=True)
    for title, why in report.failed[:50]:
        click.echo(f"  failed {title}: {why} (tried again at the next sync)", err=True)
    if report.error or report.busy:
        sys.exit(1)


@sources.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def sources_status(ctx, as_json: bool):
    """Per source: documents, the last syncs and their ages, the ACL watermark, errors, staleness."""
    with _container(ctx) as container:
        now = datetime.now(timezone.utc)
        rows = container.source_statuses(now)
    if as_json:
        click.echo(json.dumps([r.as_json(now) for r in rows], indent=2))
        return
    if not rows:
        click.echo("no sources configured (the sources: list of CHATOPS_CONFIG)")
    for r in rows:
        state = "never synced" if not r.synced else (
            "STALE: restricted documents withheld from answers" if r.stale else "ok")
        if r.running:
            state += ", syncing now"
        click.echo(f"{r.name} ({r.kind}): {r.documents} documents ({r.hidden} hidden from everyone, "
                   f"{r.unreadable} with unreadable permissions), {r.skipped} skipped, {r.pending} pending; "
                   f"changes {_ago(now, r.last_incremental_at)}, full {_ago(now, r.last_full_at)}, "
                   f"ACL watermark {_ago(now, r.acl_watermark)}; {state}")
        if r.failed or r.retrying:
            click.echo(f"  files that could not be read: {r.failed} skipped after failing twice, {r.retrying} failed "
                       f"once (tried again at the next sync); a new version of a file is tried afresh")
        if r.last_error:
            click.echo(f"  last error: {r.last_error}")
        if r.throttled_until and r.throttled_until > now:
            click.echo(f"  throttled until {r.throttled_until:%Y-%m-%d %H:%M:%S} UTC")
        for what, count in r.findings.items():
            click.echo(f"  {count} {what} (they grant nothing)")
    if any(r.stale for r in rows):
        sys.exit(1)


def _ago(now: datetime, when: datetime | None) -> str:
    if when is None:
        return "never"
    seconds = max(0, int((now - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


# -- questions ---------------------------------------------------------------------------------


@main.command()
@click.argument("question")
@click.option("--as", "as_email", required=True, metavar="EMAIL", help="Ask as this person.")
@click.option("--channel", help="Answer for everyone in this Slack channel (needs SLACK_BOT_TOKEN).")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.pass_context
def ask(ctx, question: str, as_email: str, channel: str | None, as_json: bool):
    """Ask a question through the same use case the worker runs (answered and recorded)."""
    with _container(ctx) as container:
        if channel and container.gateway is None:
            raise ConfigError("--channel needs SLACK_BOT_TOKEN to list the channel's members")
        answering = container.answering if channel else container.answering_without_slack()
        q = Question(text=question, asker_email=as_email, channel=channel, channel_type="channel" if channel else None)
        where = {"channel": channel or "cli", "channel_type": "channel" if channel else "cli"}
        try:
            answer, timings = answering.ask(q)
        except Refusal as refusal:
            answering.record(q, None, **where)
            click.echo(json.dumps({"answer": str(refusal), "citations": [], "mode": "refused"}) if as_json
                       else f"refused: {refusal}")
            sys.exit(1)
        answering.record(q, answer, stages=timings.stages(), **where)
        proposed = [answering.propose(answer, call, channel=None, thread_ts=None, correlation_id=None)
                    for call in answering.tool_calls(answer)]
        describe = container.catalogue.describe
    if as_json:
        out = answer.as_json()
        if proposed:
            out["proposals"] = [{"invalid": o.message()} if isinstance(o, Invalid) else
                                {"id": o.proposal.id, "action": o.proposal.action, "arguments": o.proposal.arguments}
                                for o in proposed]
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    click.echo(render_answer(answer))
    for o in proposed:
        if isinstance(o, Invalid):
            click.echo(o.message())
        else:
            click.echo(f"proposed {o.proposal.action} {json.dumps(o.proposal.arguments)} as {o.proposal.id}; "
                       f"approvers: {describe(o.policy)}")


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


# -- the processes -----------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int,
              help="Web processes (one per core handles bursts best; they share nothing but Redis).")
@click.pass_context
def serve(ctx, host: str, port: int, workers: int):
    """Serve Slack over HTTP: POST /slack/events, GET /livez and GET /healthz."""
    settings = _settings(ctx, service=True)
    if workers > 1:
        build_web(settings)  # fail here, once, on bad configuration
        # each worker process counts into its own files there; /metrics in any of them adds all up
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="chatops-metrics-"))
        uvicorn.run("chatops_app.cli:web_factory", factory=True, host=host, port=port, workers=workers,
                    log_level="warning", access_log=False)
        return
    uvicorn.run(build_web(settings), host=host, port=port, log_level="warning", access_log=False)


def web_factory():
    """The web app for each worker process of ``chatops serve --workers N``."""
    settings = load_settings()
    logs.setup(settings.log_level, settings.log_format)
    return build_web(settings)


def build_web(settings: Settings):
    from chatops_app.container import Container

    return Container(settings).web_app()


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

    settings = _settings(ctx, service=True)
    app, container = build(settings, pool, health_port=health_port)
    pool = pool or default_pool(container)
    if pool == "prefork" and not os.environ.get("PROMETHEUS_MULTIPROC_DIR") and Path(sys.argv[0]).name == "chatops":
        # Worker processes count into files there and the health port adds them all up; the
        # variable must be set before the metrics are first created, so start again with it.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="chatops-metrics-")
        os.execv(sys.argv[0], sys.argv)
    if pool == "prefork" and container.engine.embedded and concurrency > 1:
        raise ConfigError("an embedded index can be opened by one process only: use --pool threads, "
                          "or set QDRANT_URL to share a Qdrant server between worker processes")
    container.catalogue  # noqa: B018 - fail at start-up on an invalid action catalogue
    container.sources  # noqa: B018 - and on invalid sources
    app.worker_main(["worker", "--pool", pool, "--concurrency", str(concurrency),
                     "--queues", f"{settings.queue_name},{settings.ingest_queue}",
                     "--loglevel", settings.log_level, "--without-gossip", "--without-mingle"])


@main.command()
@click.pass_context
def socket(ctx):
    """Serve Slack over Socket Mode (SLACK_APP_TOKEN)."""
    with _container(ctx, service=True) as container:
        run_socket_mode(container.bolt_app(socket_mode=True), container.settings.of(SlackSettings).slack_app_token)


@main.command()
@click.option("--schedule-file", type=click.Path(path_type=Path), default=None,
              help="Where beat keeps when each entry last ran (default: CHATOPS_DATA_DIR/celerybeat-schedule).")
@click.pass_context
def beat(ctx, schedule_file: Path | None):
    """The scheduler (Celery beat): syncs every configured source's changes, permissions and
    everything on their intervals (CHATOPS_SYNC_*_EVERY), through the workers. Run one."""
    from chatops_app.worker import run_beat

    with _container(ctx, service=True) as container:
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


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_context
def doctor(ctx, as_json: bool):
    """Check this deployment against the live services, one line per check: Slack (token, scopes,
    signing secret or Socket Mode, app and workspace), Redis, the database, the index and its
    embedder, the model, the identity provider and the Entra app's permissions, every source and
    action, the workers and beat. Exit status 1 when a check fails."""
    from chatops_app.doctor import checks   # the composition root and every connector: see the module

    with _container(ctx) as container:
        each = None if as_json else (lambda result: click.echo(run_doctor.line(result)))
        results = run_doctor.run(checks(container), each=each)
    click.echo(run_doctor.as_json(results) if as_json else run_doctor.summary(results))
    if run_doctor.failed(results):
        sys.exit(1)


@main.command()
@click.pass_context
def demo(ctx):
    """Ingest the sample corpus and ask the same questions as different people."""
    from chatops_app.demo import run_demo   # imports the composition root: see the module

    run_demo()


# -- actions -------------------------------------------------------------------------------------


def _when(value: str) -> datetime:
    """An ISO date/time (UTC if no zone) or a relative age like 30m, 12h, 7d, 2w."""
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    if value and value[-1] in units and value[:-1].isdigit():
        return datetime.now(timezone.utc) - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither an ISO date/time nor an age like 7d") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _proposal_json(p) -> dict:
    out = asdict(p)
    for key, value in out.items():
        if hasattr(value, "isoformat"):
            out[key] = value.isoformat()
    return out


def _person(container, email: str):
    """The person ``--as`` names, or the refusal printed and exit status 1."""
    try:
        return by_email(container.identity, email)
    except Refusal as refusal:
        click.echo(f"refused: {refusal}")
        sys.exit(1)


@main.command()
@click.argument("action")
@click.option("--as", "as_email", required=True, metavar="EMAIL", help="The person requesting it.")
@click.option("--args", "args_json", default="{}", show_default=True, help="The arguments as JSON.")
@click.pass_context
def propose(ctx, action: str, as_email: str, args_json: str):
    """Propose an action as the model would (validated; nothing runs until approved)."""
    with _container(ctx) as container:
        requester = _person(container, as_email)
        outcome = container.proposals.propose(action, args_json, requester, channel=None, thread_ts=None,
                                              correlation_id=None)
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
    with _container(ctx) as container:
        rows = container.store.list_proposals(state=state, limit=limit)
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
    with _container(ctx) as container:
        p = container.store.get_proposal(proposal_id)
        if p is None:
            raise click.ClickException(f"no proposal {proposal_id}")
        events = container.store.events(proposal_id)
    click.echo(json.dumps({"proposal": _proposal_json(p), "events": events}, indent=2, default=str))


def _cli_decision(ctx, proposal_id: str, decision: str, as_email: str, reason: str | None):
    if not _settings(ctx).cli_decisions:
        raise ConfigError("decisions from the command line are off; decide in Slack, or set "
                          "CHATOPS_CLI_DECISIONS=true on this host (recorded as via=cli)")
    with _container(ctx) as container:
        actor = _person(container, as_email)
        outcome = container.proposals.decide(proposal_id, decision, actor, reason=reason, via="cli")
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
    with _container(ctx) as container:
        expired, updated = expire_proposals(container.proposals, container.gateway, container.catalogue)
    click.echo(f"{expired} proposal(s) expired, {updated} Slack message(s) updated")


# -- the audit trail, evaluation, models ---------------------------------------------------------


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
    with _container(ctx) as container:
        for event in container.store.export(_when(since), _when(until) if until else None):
            click.echo(json.dumps(event, ensure_ascii=False, default=str))


@main.command()
@click.option("--since", default="7d", show_default=True, help="An age like 24h, 7d, 2w, or an ISO date/time (UTC).")
@click.option("--until", "until", help="ISO date/time (UTC); default: now.")
@click.option("--top", default=10, show_default=True, type=click.IntRange(1, 100),
              help="How many unanswered questions and documents to list.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def report(ctx, since: str, until: str | None, top: int, as_json: bool):
    """Questions, outcomes, feedback, escalations, latency per stage, tokens, cost, cache hits, the top
    unanswered questions and the most disliked documents, over a period."""
    with _container(ctx) as container:
        result = make_report(container.answers, _when(since), _when(until) if until else None, top=top)
    click.echo(json.dumps(result.as_json(), ensure_ascii=False, indent=2) if as_json else as_text(result))


@main.group()
def admin():
    """The operator console: /admin on the web process."""


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):       # no USER and no passwd entry (some containers)
        return "operator"


def _console_person(ctx, param, value: str) -> str:
    try:
        return person_name(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@admin.command("link")
@click.option("--as", "person", default=lambda: _os_user(), metavar="NAME", callback=_console_person,
              show_default="the operating-system user running the command",
              help="Who the link is for: the console shows the session as NAME and the audit trail records it.")
@click.option("--ttl", type=click.IntRange(min=1, max=86400), default=900, show_default=True,
              help="Seconds the link can be used in (once).")
@click.pass_context
def admin_link(ctx, person: str, ttl: int):
    """Print a one-time sign-in link to the console at CHATOPS_PUBLIC_URL for NAME (where Entra sign-in
    is not configured). Opening it asks to confirm; only the URL is printed."""
    with _container(ctx) as container:
        click.echo(container.console_link(person, ttl))


@admin.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3000, show_default=True, type=int)
@click.pass_context
def admin_serve(ctx, host: str, port: int):
    """Serve the console alone (/admin and /livez; no Slack endpoint, no Slack settings needed)."""
    with _container(ctx, service=True) as container:
        uvicorn.run(container.console_app(), host=host, port=port, log_level="warning", access_log=False)


@main.group(name="eval")
def eval_group():
    """Measure retrieval quality."""


@eval_group.command("retrieval")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--k", default=10, show_default=True, type=int)
@click.option("--stage", "stages", multiple=True, type=click.Choice([*STRATEGIES, "all"]),
              help="Strategies to score (repeatable); default: the configured one (CHATOPS_RETRIEVAL).")
@click.option("--dense-weight", type=float, help="Weight of the dense list in 'weighted' fusion.")
@click.option("--index-dir", type=click.Path(path_type=Path),
              help="Keep the index here and reuse it next time (unchanged documents are skipped).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def eval_retrieval(ctx, folder: Path, k: int, stages: tuple[str, ...], dense_weight: float | None,
                   index_dir: Path | None, as_json: bool):
    """nDCG@k, recall@k, MRR@k and latency on a BEIR folder (ingested into a throwaway index)."""
    with _container(ctx) as container:
        settings = container.settings
        chosen = list(STRATEGIES) if "all" in stages else list(stages) or [settings.retrieval]
        engine = container.engine
        results = evaluate(folder, embedder=container.embedder,
                           index_factory=lambda path, dim: engine.open(path=path, dim=dim, collection="eval"),
                           strategies=chosen, k=k,
                           dense_weight=settings.dense_weight if dense_weight is None else dense_weight,
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
    install_models(progress=lambda m: click.echo(m, err=True))


if __name__ == "__main__":  # pragma: no cover
    main()
