"""``chatops sources``: the document sources of CHATOPS_CONFIG: list, sync, status."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import click

from chatops_app.cli.root import main, opened
from connectors.index.base import IndexBusy
from usecases.ingest_here import sync_here


@main.group()
def sources():
    """The document sources of CHATOPS_CONFIG: list, sync, status."""


@sources.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def sources_list(ctx, as_json: bool):
    """The configured sources."""
    with opened(ctx) as container:
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
    with opened(ctx) as container:
        if via_workers:
            container.sources_scheduler.enqueue(name, mode, force=True)
            click.echo(f"queued a {mode} sync of {name} for the workers; follow it with: chatops sources status")
            return
        sync = container.sync(name, progress=sys.stderr.isatty())
        try:
            index = container.index   # open it now: a busy index is one clear line
        except IndexBusy as exc:
            raise IndexBusy(f"{exc}; or let the workers sync it: chatops sources sync {name} --via-workers") from None
        report = sync_here(sync, mode, index, needs_optimize=container.engine.needs_optimize,
                           release_model=container.release_embedder)
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
    with opened(ctx) as container:
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
