"""``chatops doctor``: this deployment checked against the live services, one line per check."""

from __future__ import annotations

import sys

import click

from chatops_app.cli.root import main, opened
from usecases import doctor as run_doctor


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_context
def doctor(ctx, as_json: bool):
    """Check this deployment against the live services, one line per check: Slack (token, scopes,
    signing secret or Socket Mode, app and workspace), Redis, the database, the index and its
    embedder, the model, the identity provider and the Entra app's permissions, every source and
    action, the workers and beat. Exit status 1 when a check fails."""
    from chatops_app.doctor import checks   # the composition root and every connector: see the module

    with opened(ctx) as container:
        each = None if as_json else (lambda result: click.echo(run_doctor.line(result)))
        results = run_doctor.run(checks(container), each=each)
    click.echo(run_doctor.as_json(results) if as_json else run_doctor.summary(results))
    if run_doctor.failed(results):
        sys.exit(1)
