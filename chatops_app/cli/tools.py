"""``chatops tools``: the live tools of CHATOPS_CONFIG: list, review, approve, status, call, disconnect."""

from __future__ import annotations

import getpass
import json
import sys
import unicodedata

import click

from chatops_app.cli.root import main, opened
from connectors.tools.base import ConnectionNeeded, ToolFailed
from usecases.people import Refusal, Someone, resolve
from usecases.tools import ToolRefused, caller_of


@main.group()
def tools():
    """The live tools of CHATOPS_CONFIG: list, review, approve, status, call."""


def _person(container, email: str):
    try:
        return resolve(container.identity, Someone(chat_id=None, email=email))
    except Refusal as refusal:
        raise click.ClickException(f"{email}: {refusal}") from None


def _visible(text: str) -> str:
    """Invisible and control characters shown as <U+XXXX>, so a reviewer sees them."""
    return "".join(f"<U+{ord(ch):04X}>" if unicodedata.category(ch) in ("Cf", "Co", "Cn", "Cc") and ch != "\n"
                   else ch for ch in text)


@tools.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tools_list(ctx, as_json: bool):
    """The configured tools: kind, who may use them, who may see their results, their functions."""
    with opened(ctx) as container:
        box = container.toolbox
        states = box.status()
        rows = [{"name": t.name, "kind": t.spec.kind, "label": t.label,
                 "groups": None if t.spec.groups is None else list(t.spec.groups), "results": t.spec.results,
                 "per_person": t.per_person,
                 "functions": {f.function: f.state for f in states if f.tool == t.name}}
                for t in box.tools.values()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no tools configured (the tools: list of CHATOPS_CONFIG)")
    for row in rows:
        who = "everyone" if row["groups"] is None else ", ".join(row["groups"])
        click.echo(f"{row['name']:<16} {row['kind']:<12} groups: {who}; results: {row['results']}"
                   f"{'; per-person sign-in' if row['per_person'] else ''}")
        for function, state in sorted(row["functions"].items()):
            click.echo(f"    {function:<24} {state.replace('_', ' ')}")


@tools.command("review")
@click.argument("name")
@click.option("--as", "as_email", metavar="EMAIL", help="List with this person's own credential (a per-person tool).")
@click.pass_context
def tools_review(ctx, name: str, as_email: str | None):
    """Each allowed function as the server describes it now, with warnings: read it before approving."""
    with opened(ctx) as container:
        caller = caller_of(_person(container, as_email)) if as_email else None
        try:
            reviewed = container.toolbox.review(name, caller)
        except ToolFailed as exc:
            raise click.ClickException(str(exc)) from None
        except ConnectionNeeded:
            raise click.ClickException(_not_connected(name, as_email)) from None
    if not reviewed:
        click.echo(f"{name}: the server lists none of the allowed functions")
    for definition, warnings in reviewed:
        click.echo(f"== {name} · {definition.name}")
        click.echo(f"description: {_visible(definition.description)}")
        click.echo(f"input schema: {_visible(json.dumps(definition.input_schema, sort_keys=True))}")
        click.echo(f"annotations: {json.dumps(definition.annotations, sort_keys=True)}")
        click.echo(f"fingerprint: {definition.fingerprint()}")
        for warning in warnings:
            click.echo(f"WARNING: {warning}")
        click.echo()
    click.echo(f"if this is what the model may use, run: chatops tools approve {name}")


@tools.command("approve")
@click.argument("name")
@click.option("--by", "approved_by", default=None, help="Who approves (recorded; default: the OS user).")
@click.option("--as", "as_email", metavar="EMAIL", help="List with this person's own credential (a per-person tool).")
@click.pass_context
def tools_approve(ctx, name: str, approved_by: str | None, as_email: str | None):
    """Pin each allowed function's definition as it is now (what review showed)."""
    with opened(ctx) as container:
        caller = caller_of(_person(container, as_email)) if as_email else None
        try:
            pinned = container.toolbox.approve(name, approved_by or getpass.getuser(), caller)
        except ToolFailed as exc:
            raise click.ClickException(str(exc)) from None
        except ConnectionNeeded:
            raise click.ClickException(_not_connected(name, as_email)) from None
    refused = [d.name for d in pinned if d.not_read_only()]
    click.echo(f"approved {len(pinned)} function(s) of {name}: {', '.join(d.name for d in pinned)}")
    if refused:
        click.echo(f"not offered as read tools all the same (not read-only): {', '.join(refused)}")


@tools.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tools_status(ctx, as_json: bool):
    """Per function: offered, not approved, changed since approval, not read-only, missing, unreachable."""
    with opened(ctx) as container:
        states = container.toolbox.status()
    if as_json:
        click.echo(json.dumps([vars(s) for s in states], indent=2))
        return
    if not states:
        click.echo("no tools configured (the tools: list of CHATOPS_CONFIG)")
    for s in states:
        click.echo(f"{s.tool:<16} {s.function:<24} {s.state.replace('_', ' ')}{': ' + s.detail if s.detail else ''}")
    if any(s.state in ("changed", "unreachable", "missing") for s in states):
        sys.exit(1)


@tools.command("call")
@click.argument("name")
@click.argument("function")
@click.option("--as", "as_email", required=True, metavar="EMAIL", help="Call as this person (their groups apply).")
@click.option("--args", "args", default="{}", help="The arguments, as a JSON object.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tools_call(ctx, name: str, function: str, as_email: str, args: str, as_json: bool):
    """Call one tool function as a person, under the rules an answer uses; recorded like any call."""
    try:
        arguments = json.loads(args)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--args") from None
    if not isinstance(arguments, dict):
        raise click.BadParameter("must be a JSON object, like {\"service\": \"billing\"}", param_hint="--args")
    with opened(ctx) as container:
        person = _person(container, as_email)
        try:
            result = container.toolbox.call_as(name, function, arguments, person)
        except (ToolRefused, ToolFailed) as exc:
            click.echo(f"refused: {exc}", err=True)
            sys.exit(3)
    if as_json:
        click.echo(json.dumps({"tool": name, "function": function, "outcome": result.outcome,
                               "text": result.text, "detail": result.detail, "url": result.url,
                               "duration_ms": round(result.duration_ms, 1)}, indent=2))
    elif result.outcome == "ok":
        click.echo(result.text)
    else:
        click.echo(f"{result.outcome}: {result.detail}", err=True)
    if result.outcome != "ok":
        sys.exit(1)


def _not_connected(name: str, email: str | None) -> str:
    return (f"{email} has not connected {name}: run chatops tools connect {name} --as {email} and open the link"
            if email else f"{name} lists its functions only with a person's own account: add --as EMAIL")


@tools.command("connect")
@click.argument("name")
@click.option("--as", "as_email", required=True, metavar="EMAIL", help="Whose own account to connect.")
@click.pass_context
def tools_connect(ctx, name: str, as_email: str):
    """A link that connects this person's own account to a per-person tool (open it in their browser
    within 10 minutes): how an operator connects before reviewing such a tool."""
    with opened(ctx) as container:
        person = _person(container, as_email)
        if container.tool_connections is None or not container.tool_connections.per_person(name):
            raise click.ClickException(f"{name!r} is not a tool with per-person sign-in (auth: {{oauth: per_user}})")
        try:
            url = container.tool_connections.begin(name, caller_of(person))
        except ToolFailed as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"Open this link as {as_email}, within 10 minutes, to connect {name}:")
    click.echo(url)


@tools.command("disconnect")
@click.argument("name")
@click.option("--as", "as_email", required=True, metavar="EMAIL", help="Whose credential to delete.")
@click.pass_context
def tools_disconnect(ctx, name: str, as_email: str):
    """Delete a person's own credential for a per-person tool."""
    with opened(ctx) as container:
        person = _person(container, as_email)
        if container.tool_connections is None:
            raise click.ClickException("no per-person tools are configured")
        was = container.tool_connections.disconnect(name, caller_of(person).person_id)
    click.echo(f"{name}: {'disconnected' if was else 'was not connected'} for {as_email}")
