"""``chatops ingest``: a folder, or a configured source, into the index, here or through the workers."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chatops_app.cli.root import main, opened
from chatops_app.cli.sources import sources_sync
from chatops_app.ingest_remote import submit, wait as follow
from connectors.index.base import IndexBusy
from connectors.sources.registry import filesystem_spec, open_source
from usecases.ingest_here import ingest_here


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
    assert path is not None   # one of the two, checked above
    with opened(ctx) as container:
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
        report = ingest_here(source, index, container.embedder, needs_optimize=container.engine.needs_optimize,
                             release_model=container.release_embedder, progress=sys.stderr.isatty())
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
