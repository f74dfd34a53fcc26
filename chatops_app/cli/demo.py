"""``chatops demo``: the sample corpus ingested and asked as different people."""

from __future__ import annotations

import click

from chatops_app.cli.root import main


@main.command()
@click.pass_context
def demo(ctx):
    """Ingest the sample corpus and ask the same questions as different people."""
    from chatops_app.demo.run import run_demo   # imports the composition root: see chatops_app.cli.root

    run_demo()
