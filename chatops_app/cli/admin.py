"""``chatops admin``: the operator console (/admin on the web process): a sign-in link, or the
console served alone."""

from __future__ import annotations

import getpass

import click
import uvicorn

from chatops_app.cli.root import main, opened
from console.auth import person_name


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
    with opened(ctx) as container:
        click.echo(container.console_link(person, ttl))


@admin.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3000, show_default=True, type=int)
@click.pass_context
def admin_serve(ctx, host: str, port: int):
    """Serve the console alone (/admin and /livez; no Slack endpoint, no Slack settings needed)."""
    with opened(ctx, service=True) as container:
        uvicorn.run(container.console_app(), host=host, port=port, log_level="warning", access_log=False)
