"""``chatops ask``: a question through the use case the worker runs, answered and recorded."""

from __future__ import annotations

import json
import sys

import click

from chatops.errors import ConfigError
from chatops_app.cli.root import main, opened
from usecases.ask import Question
from usecases.proposals import Invalid


@main.command()
@click.argument("question")
@click.option("--as", "as_email", required=True, metavar="EMAIL", help="Ask as this person.")
@click.option("--channel", help="Answer for everyone in this Slack channel (needs SLACK_BOT_TOKEN).")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.pass_context
def ask(ctx, question: str, as_email: str, channel: str | None, as_json: bool):
    """Ask a question through the same use case the worker runs (answered and recorded)."""
    with opened(ctx) as container:
        if channel and container.gateway is None:
            raise ConfigError("--channel needs SLACK_BOT_TOKEN to list the channel's members")
        answering = container.answering if channel else container.answering_without_slack()
        q = Question(text=question, asker_email=as_email, channel=channel, channel_type="channel" if channel else None)
        asked = answering.ask_and_record(q, channel=channel or "cli", channel_type="channel" if channel else "cli")
        describe = container.catalogue.describe
    if asked.refusal is not None:
        click.echo(json.dumps({"answer": str(asked.refusal), "citations": [], "mode": "refused"}) if as_json
                   else f"refused: {asked.refusal}")
        sys.exit(1)
    answer, proposed = asked.answer, asked.proposed
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
