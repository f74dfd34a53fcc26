"""The App Home tab and the Messages tab's suggested prompts: pure functions from the use case's
values (``usecases/home.py``) to what Slack takes, within Slack's limits (``bot.limits``: a view
holds at most 100 blocks; each list here is capped so the whole view always fits)."""

from __future__ import annotations

from datetime import datetime

from bot import limits
from bot.blocks import context, section
from bot.decisions.blocks import arguments_text, decision_buttons
from bot.mrkdwn import escape, inert_text
from bot.tool_connections.blocks import DISCONNECT_ACTION
from usecases.home import Approval, Asked, ConnectedTool, HomeView, Prompt, SourceSeen

HEADER_TEXT_MAX = 150          # a header block's plain text
MAX_SOURCES = 25
MAX_ASKED = 10
MAX_APPROVALS = 10
MAX_TOOLS = 10
QUESTION_SHOWN = 300           # characters of a question shown
PROMPTS_TITLE = "Try asking"

OUTCOMES = {"answered": ":white_check_mark: Answered", "no_evidence": ":mag: Nothing found to answer from",
            "refused": ":no_entry: Not answered", "failed": ":warning: Failed", "stopped": ":black_square_for_stop: Stopped"}


def header(text: str) -> dict:
    return {"type": "header", "text": {"type": "plain_text", "text": limits.truncate(text, HEADER_TEXT_MAX)}}


def divider() -> dict:
    return {"type": "divider"}


def ago(when: datetime | None, now: datetime) -> str:
    """How long ago, in words a person reads at a glance."""
    if when is None:
        return "never"
    seconds = (now - when).total_seconds()
    if seconds < 90:
        return "just now"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min ago"
    if seconds < 36 * 3600:
        return f"{round(seconds / 3600)} h ago"
    return f"{round(seconds / 86400)} days ago"


def within(when: datetime, now: datetime) -> str:
    seconds = (when - now).total_seconds()
    if seconds < 3600:
        return f"in {max(1, round(seconds / 60))} min"
    if seconds < 36 * 3600:
        return f"in {round(seconds / 3600)} h"
    return f"in {round(seconds / 86400)} days"


def source_block(source: SourceSeen, now: datetime) -> dict:
    fresh = f"Updated {ago(source.last_sync, now)} · permissions checked {ago(source.permissions_at, now)}"
    if source.running:
        fresh += " · syncing now"
    text = f"*{escape(source.name)}* · {escape(source.kind)}\n{fresh}"
    if source.stale:
        text += "\n:warning: Its permissions are out of date: only its public documents are used until they are read again."
    return section(text)


def asked_blocks(asked: Asked, now: datetime) -> list[dict]:
    question = inert_text(limits.truncate(" ".join(asked.question.split()), QUESTION_SHOWN))
    where = "in a direct message" if asked.where == "dm" else (f"in <#{asked.channel}>" if asked.channel else "in a channel")
    facts = [OUTCOMES.get(asked.outcome, escape(asked.outcome.replace("_", " ").capitalize())), where, ago(asked.at, now)]
    if asked.helpful or asked.not_helpful:
        facts.append(f":+1: {asked.helpful} · :-1: {asked.not_helpful}")
    if asked.escalated:
        facts.append("resolved by a person" if asked.resolved else "waiting for a person")
    return [section(f"> {question}"), context(" · ".join(facts))]


ARGUMENTS_SHOWN = 1500         # characters of a proposal's arguments shown on the Home tab


def approval_blocks(approval: Approval, now: datetime) -> list[dict]:
    """A proposal waiting for this person: what it is, what it would run with, and the same
    Approve / Reject buttons as its message (``bot.decisions.blocks.decision_buttons``)."""
    return [approval_block(approval, now), decision_buttons(approval.proposal_id, approval.action)]


def approval_block(approval: Approval, now: datetime) -> dict:
    lines = [f"*{escape(approval.action)}*" + (f" — {escape(approval.description)}" if approval.description else "")]
    if approval.arguments:
        lines.append(limits.truncate(arguments_text(approval.arguments), ARGUMENTS_SHOWN))
    facts = []
    if approval.requested_by:
        facts.append(f"requested by <@{approval.requested_by}>")
    if approval.channel and not approval.channel.startswith("D"):
        facts.append(f"in <#{approval.channel}>")
    facts.append(f"expires {within(approval.expires_at, now)}")
    said = " · ".join(facts)
    lines.append(said[:1].upper() + said[1:])
    return section(limits.truncate("\n".join(line for line in lines if line), limits.SECTION_TEXT_MAX))


def tool_block(tool: ConnectedTool) -> dict:
    block = section(f":electric_plug: *{escape(tool.label)}* is connected with your own account.")
    block["accessory"] = {
        "type": "button", "action_id": DISCONNECT_ACTION, "style": "danger",
        "text": {"type": "plain_text", "text": f"Disconnect {tool.label}"[: limits.BUTTON_TEXT_MAX]},
        "value": tool.name[: limits.BUTTON_VALUE_MAX]}
    return block


def _more(shown: int, total: int) -> list[dict]:
    return [context(f"…and {total - shown} more.")] if total > shown else []


def home_view(view: HomeView, now: datetime, notice: str | None = None) -> dict:
    """The Home tab of one person (``views.publish``). ``notice``: one mrkdwn line shown first, the
    outcome of what they just did on the tab (a decision, or why it was refused)."""
    blocks: list[dict] = []
    if notice:
        blocks += [section(limits.truncate(notice, limits.SECTION_TEXT_MAX)), divider()]
    blocks.append(header("What I can answer from for you"))
    if view.sources:
        blocks += [source_block(s, now) for s in view.sources[:MAX_SOURCES]]
        blocks += _more(min(len(view.sources), MAX_SOURCES), len(view.sources))
    else:
        blocks.append(context("No source has documents you may read yet."))
    blocks += [divider(), header("Your recent questions")]
    if view.asked:
        for asked in view.asked[:MAX_ASKED]:
            blocks += asked_blocks(asked, now)
    else:
        blocks.append(context("You have not asked anything lately. Ask me in the Messages tab, or mention me in a channel."))
    if view.approvals:
        blocks += [divider(), header("Waiting for your approval")]
        for approval in view.approvals[:MAX_APPROVALS]:
            blocks += approval_blocks(approval, now)
        blocks += _more(min(len(view.approvals), MAX_APPROVALS), len(view.approvals))
    if view.tools:
        blocks += [divider(), header("Your connected tools")]
        blocks += [tool_block(t) for t in view.tools[:MAX_TOOLS]]
        blocks += _more(min(len(view.tools), MAX_TOOLS), len(view.tools))
        blocks.append(context("Disconnecting deletes the credential I keep for you."))
    return {"type": "home", "blocks": blocks[: limits.BLOCKS_PER_VIEW]}


def unresolved_view(reason: str) -> dict:
    """The Home tab when who the person is cannot be told: nothing of theirs is shown (no buttons)."""
    return {"type": "home", "blocks": [header("What I can answer from for you"),
                                       section(f":no_entry: {inert_text(reason)}")]}


def suggested_prompts(prompts: list[Prompt]) -> dict:
    """The arguments of ``assistant.threads.setSuggestedPrompts`` besides the channel: a title and
    up to four ``{title, message}`` prompts."""
    return {"title": PROMPTS_TITLE, "prompts": [p.as_json() for p in prompts[:4]]}
