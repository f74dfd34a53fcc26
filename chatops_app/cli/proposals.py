"""``chatops propose`` and ``chatops proposals``: actions proposed as the model would, listed,
shown, approved or rejected (CHATOPS_CLI_DECISIONS), expired."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

import click

from bot.maintenance.handler import expire_proposals
from chatops.errors import ConfigError
from chatops_app.cli.root import main, opened, settings_of
from usecases.people import Refusal, by_email
from usecases.proposals import Invalid, Refused


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
    with opened(ctx) as container:
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
    with opened(ctx) as container:
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
    with opened(ctx) as container:
        p = container.store.get_proposal(proposal_id)
        if p is None:
            raise click.ClickException(f"no proposal {proposal_id}")
        events = container.store.events(proposal_id)
    click.echo(json.dumps({"proposal": _proposal_json(p), "events": events}, indent=2, default=str))


def _cli_decision(ctx, proposal_id: str, decision: str, as_email: str, reason: str | None):
    if not settings_of(ctx).cli_decisions:
        raise ConfigError("decisions from the command line are off; decide in Slack, or set "
                          "CHATOPS_CLI_DECISIONS=true on this host (recorded as via=cli)")
    with opened(ctx) as container:
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
    with opened(ctx) as container:
        expired, updated = expire_proposals(container.proposals, container.gateway, container.catalogue)
    click.echo(f"{expired} proposal(s) expired, {updated} Slack message(s) updated")
