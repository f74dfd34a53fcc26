"""``chatops audit export`` and ``chatops report``: the audit trail, and what it says over a period."""

from __future__ import annotations

import json

import click

from chatops_app.cli.root import main, opened, when
from usecases.report import as_text, report as make_report


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
    with opened(ctx) as container:
        for event in container.store.export(when(since), when(until) if until else None):
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
    with opened(ctx) as container:
        result = make_report(container.answers, when(since), when(until) if until else None, top=top)
    click.echo(json.dumps(result.as_json(), ensure_ascii=False, indent=2) if as_json else as_text(result))
