"""An Approve or Reject click: who clicked, whether they may, the action run once, the thread told.

The clicker is resolved like an asker (Slack's side, then the directory by email); anyone
unknown or unresolvable decides nothing. The proposal service applies the approver policy
and moves the proposal by compare-and-set, so a double click or a redelivered task changes
nothing further.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bot import blocks
from bot.decisions.blocks import execution_result_message, proposal_message
from bot.services import Services, slack_required
from bot.steps import report_failure
from usecases.people import resolve
from usecases.proposals import ProposalService, Refused

log = logging.getLogger(__name__)

UNCONFIRMED = "I couldn't confirm who you are in the company directory, so I can't record your decision."


@dataclass(kw_only=True)
class DecisionHandler:
    gateway: Any
    people: Any
    identity: Any                 # connectors.identity.base.IdentityProvider
    proposals: ProposalService

    def handle(self, payload: dict) -> None:
        gateway = self.gateway
        user, channel = payload.get("user"), payload.get("channel")
        try:
            actor = resolve(self.identity, self.people.someone(user))
        except Exception as exc:  # noqa: BLE001 - unknown or unreachable: nobody decides anything
            log.warning("could not resolve the clicker; decision refused", extra={"error": type(exc).__name__})
            self.proposals.store.audit("click_refused", proposal_id=payload.get("proposal_id"), actor_slack_id=user,
                                       correlation_id=payload.get("cid"), detail={"why": "identity not resolved"})
            if channel and user:
                gateway.post_ephemeral(channel, user, blocks.refusal_message(UNCONFIRMED))
            return

        def show(p) -> None:
            if p is not None and p.channel and p.message_ts:
                gateway.update(p.channel, p.message_ts, proposal_message(p, self.proposals.catalogue))

        outcome = self.proposals.decide(payload["proposal_id"], payload["decision"], actor,
                                        reason=payload.get("reason"), correlation_id=payload.get("cid"),
                                        on_approved=show)
        if isinstance(outcome, Refused):
            if channel and user:
                gateway.post_ephemeral(channel, user, blocks.refusal_message(outcome.message))
            return
        final = outcome.executed or outcome.proposal
        show(final)
        if outcome.executed is not None and final.state in ("succeeded", "failed") and final.channel:
            result = final.result or {}
            gateway.post(final.channel, execution_result_message(
                final.action, final.state == "succeeded", result.get("summary", ""), result.get("url")),
                thread_ts=final.thread_ts)

    def failed(self, payload: dict, reference: str, detail: str = "") -> None:
        report_failure(self.gateway, None, user=payload.get("user"), channel=payload.get("channel"),
                       thread_ts=None, reference=reference, detail=detail, ephemeral=True)


def build(services: Services) -> DecisionHandler:
    return DecisionHandler(gateway=slack_required(services), people=services.people, identity=services.identity,
                           proposals=services.proposals)
