"""Block Kit for action proposals: the proposal with its buttons, its outcome, the reject modal.

Pure functions of plain values. The buttons carry only the proposal id; the
worker looks everything else up, so nothing in a payload can be forged into
a different action.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from bot import limits
from bot.mrkdwn import escape, link
from chatops.catalogue import ApproverPolicy

APPROVE_ACTION = "proposal_approve"
REJECT_ACTION = "proposal_reject"
REJECT_MODAL = "proposal_reject_modal"
REASON_BLOCK = "reason"
REASON_INPUT = "reason_input"

_STATE_LINES = {
    "approved": ":white_check_mark: Approved by {who} — running…",
    "executing": ":gear: Approved by {who} — running…",
    "succeeded": ":white_check_mark: Approved by {who} — done: {summary}",
    "failed": ":x: Approved by {who} — failed: {summary}",
    "rejected": ":no_entry_sign: Rejected by {who}{reason}",
    "expired": ":hourglass: Expired before anyone approved it — nothing was done.",
}


def _slack_date(when: datetime) -> str:
    ts = int(when.timestamp())
    fallback = when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{ts}^{{date_short_pretty}} at {{time}}|{fallback}>"


def _arguments_text(arguments: dict) -> str:
    lines = []
    for key, value in arguments.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines.append(f"• *{escape(str(key))}*: `{escape(str(shown))}`")
    return "\n".join(lines) if lines else "_no arguments_"


def _person(slack_id: str | None, email: str | None) -> str:
    if slack_id:
        return f"<@{slack_id}>"
    return escape(email or "someone")


def arguments_text(arguments: dict) -> str:
    """A proposal's arguments as a person checks them before approving (mrkdwn lines)."""
    return _arguments_text(arguments)


def decision_buttons(proposal_id: str, action: str) -> dict:
    """Approve (with Slack's confirmation) and Reject for one proposal: the same buttons in its
    message and on the approver's App Home tab, so a click from either takes the same path."""
    return {"type": "actions", "block_id": f"proposal:{proposal_id}", "elements": [
        {"type": "button", "action_id": APPROVE_ACTION, "style": "primary", "value": proposal_id,
         "text": {"type": "plain_text", "text": "Approve"},
         "confirm": {"title": {"type": "plain_text", "text": "Run this action?"},
                     "text": {"type": "mrkdwn", "text": limits.truncate(
                         f"*{escape(action)}* will run with the arguments shown.", 300)},
                     "confirm": {"type": "plain_text", "text": "Approve"},
                     "deny": {"type": "plain_text", "text": "Cancel"}}},
        {"type": "button", "action_id": REJECT_ACTION, "style": "danger", "value": proposal_id,
         "text": {"type": "plain_text", "text": "Reject"}},
    ]}


def _state_line(state: str, *, decided_by_slack: str | None, decided_by_email: str | None, reason: str | None,
                result_summary: str | None, result_url: str | None) -> str:
    summary = escape(result_summary or "")
    if result_url:
        summary += " " + link(result_url, "(open)")
    return _STATE_LINES.get(state, escape(state)).format(
        who=_person(decided_by_slack, decided_by_email),
        summary=summary or "no details",
        reason=f": {escape(reason)}" if reason else "",
    )


def outcome_line(p) -> str:
    """One mrkdwn line of where a proposal (a ``chatops.store.Proposal``) stands now, named by its
    action: what the person who decided it from the App Home tab is shown there."""
    if p.state == "proposed":
        return f"*{escape(p.action)}* is still waiting for approval."
    result = p.result or {}
    line = _state_line(p.state, decided_by_slack=p.decided_by_slack, decided_by_email=p.decided_by_email,
                       reason=p.reason, result_summary=result.get("summary"), result_url=result.get("url"))
    return limits.truncate(f"*{escape(p.action)}*: {line}", limits.SECTION_TEXT_MAX)


def proposal_blocks(*, proposal_id: str, action: str, description: str, arguments: dict,
                    requested_by_slack: str | None, requested_by_email: str | None,
                    approvers: str, expires_at: datetime, state: str = "proposed",
                    decided_by_slack: str | None = None, decided_by_email: str | None = None,
                    reason: str | None = None, result_summary: str | None = None,
                    result_url: str | None = None) -> dict:
    body = f"{escape(description)}\n\n{_arguments_text(arguments)}"
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": limits.truncate(f"Proposed action: {action}", 150)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": limits.truncate(body, limits.SECTION_TEXT_MAX)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": limits.truncate(
            f"Requested by {_person(requested_by_slack, requested_by_email)} · "
            f"Approvers: {escape(approvers)} · Expires {_slack_date(expires_at)} · ID `{proposal_id[:8]}`",
            limits.CONTEXT_TEXT_MAX)}]},
    ]
    if state == "proposed":
        blocks.append(decision_buttons(proposal_id, action))
        text = f"Proposed action {action}: waiting for approval by {approvers}"
    else:
        line = _state_line(state, decided_by_slack=decided_by_slack, decided_by_email=decided_by_email,
                           reason=reason, result_summary=result_summary, result_url=result_url)
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn",
                                                        "text": limits.truncate(line, limits.CONTEXT_TEXT_MAX)}]})
        text = f"Proposed action {action}: {state}"
    return {"text": limits.truncate(escape(text), limits.MESSAGE_TEXT_MAX), "blocks": blocks}


def reject_modal(proposal_id: str, channel: str | None, message_ts: str | None, *, home: bool = False) -> dict:
    """The reason form. ``home``: the Reject button was on the App Home tab (no channel, no message),
    so the decision is shown there afterwards."""
    meta: dict = {"proposal_id": proposal_id, "channel": channel, "message_ts": message_ts}
    if home:
        meta["home"] = True
    return {
        "type": "modal",
        "callback_id": REJECT_MODAL,
        "private_metadata": json.dumps(meta),
        "title": {"type": "plain_text", "text": "Reject the proposal"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [{
            "type": "input", "block_id": REASON_BLOCK, "optional": True,
            "label": {"type": "plain_text", "text": "Reason (shown in the thread)"},
            "element": {"type": "plain_text_input", "action_id": REASON_INPUT, "multiline": True,
                        "max_length": 500},
        }],
    }


def execution_result_message(action: str, ok: bool, summary: str, url: str | None) -> dict:
    icon = ":white_check_mark:" if ok else ":x:"
    text = f"{icon} {escape(action)} {'succeeded' if ok else 'failed'}: {escape(summary)}"
    if url:
        text += " " + link(url, "open")
    return {"text": limits.truncate(escape(f"{action} {'succeeded' if ok else 'failed'}: {summary}"),
                                    limits.MESSAGE_TEXT_MAX),
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": limits.truncate(text, limits.SECTION_TEXT_MAX)}}]}


def proposal_message(p, catalogue) -> dict:
    """The Slack message of a proposal (a ``chatops.store.Proposal``) in its current state."""
    spec = catalogue.specs.get(p.action)
    policy = ApproverPolicy.from_json(p.approvers or {}, p.allow_self_approval)
    return proposal_blocks(
        proposal_id=p.id, action=p.action, description=spec.description if spec else p.action,
        arguments=p.arguments, requested_by_slack=p.requested_by_slack, requested_by_email=p.requested_by_email,
        approvers=catalogue.describe(policy), expires_at=p.expires_at, state=p.state,
        decided_by_slack=p.decided_by_slack, decided_by_email=p.decided_by_email, reason=p.reason,
        result_summary=(p.result or {}).get("summary"), result_url=(p.result or {}).get("url"))
