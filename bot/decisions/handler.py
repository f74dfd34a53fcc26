"""An Approve or Reject click: who clicked, whether they may, the action run once, the thread told.

The clicker is resolved like an asker (Slack's side, then the directory by email); anyone
unknown or unresolvable decides nothing. The proposal service applies the approver policy
and moves the proposal by compare-and-set, so a double click or a redelivered task changes
nothing further.

A click may come from the proposal's message or from the clicker's App Home tab (``home`` in the
task). The decision is the same; only where the clicker is answered differs: in the channel, for
them alone (an ephemeral message), or on their Home tab, republished with the outcome first. The
proposal's own message is updated either way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bot import blocks
from bot.mrkdwn import escape
from bot.decisions.blocks import execution_result_message, outcome_line, proposal_message
from bot.home import handler as home_handler
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
    home: Any = None              # bot.home.handler.HomeHandler: answers a click made on the Home tab

    def handle(self, payload: dict) -> None:
        gateway = self.gateway
        user, channel = payload.get("user"), payload.get("channel")
        try:
            actor = resolve(self.identity, self.people.someone(user))
        except Exception as exc:  # noqa: BLE001 - unknown or unreachable: nobody decides anything
            log.warning("could not resolve the clicker; decision refused", extra={"error": type(exc).__name__})
            self.proposals.store.audit("click_refused", proposal_id=payload.get("proposal_id"), actor_slack_id=user,
                                       correlation_id=payload.get("cid"), detail={"why": "identity not resolved"})
            if payload.get("home"):
                self._on_home(user, lambda: self.home.publish_unresolved(user, UNCONFIRMED))
            elif channel and user:
                gateway.post_ephemeral(channel, user, blocks.refusal_message(UNCONFIRMED))
            return

        def show(p) -> None:
            if p is not None and p.channel and p.message_ts:
                gateway.update(p.channel, p.message_ts, proposal_message(p, self.proposals.catalogue))

        outcome = self.proposals.decide(payload["proposal_id"], payload["decision"], actor,
                                        reason=payload.get("reason"), correlation_id=payload.get("cid"),
                                        on_approved=show)
        if isinstance(outcome, Refused):
            if payload.get("home"):
                notice = self._refused_notice(payload.get("proposal_id"), actor, outcome.message)
                self._on_home(user, lambda: self.home.publish_home(user, person=actor, notice=notice))
            elif channel and user:
                gateway.post_ephemeral(channel, user, blocks.refusal_message(outcome.message))
            return
        final = outcome.executed or outcome.proposal
        show(final)
        if outcome.executed is not None and final.state in ("succeeded", "failed") and final.channel:
            result = final.result or {}
            gateway.post(final.channel, execution_result_message(
                final.action, final.state == "succeeded", result.get("summary", ""), result.get("url")),
                thread_ts=final.thread_ts)
        if payload.get("home") and final is not None:
            notice = outcome_line(final)
            self._on_home(user, lambda: self.home.publish_home(user, person=actor, notice=notice))

    def _refused_notice(self, proposal_id: Any, actor, message: str) -> str:
        """What a refused click on the Home tab shows there: for a double click (this person already
        decided it), where the proposal stands; else why it was refused."""
        current = self.proposals.store.get_proposal(proposal_id) if isinstance(proposal_id, str) else None
        if current is not None and current.state != "proposed" and actor.email \
                and current.decided_by_email == actor.email:
            return outcome_line(current)
        return f":no_entry: {escape(message)}"

    def _on_home(self, user: Any, publish) -> None:
        """Answer the clicker on their Home tab; the decision stands whatever Slack says to that."""
        if self.home is None or not isinstance(user, str) or not user:
            return
        try:
            publish()
        except Exception as exc:  # noqa: BLE001 - the proposal's message shows the outcome anyway
            log.warning("could not republish the Home tab after a decision", extra={"error": type(exc).__name__})

    def failed(self, payload: dict, reference: str, detail: str = "") -> None:
        report_failure(self.gateway, None, user=payload.get("user"), channel=payload.get("channel"),
                       thread_ts=None, reference=reference, detail=detail, ephemeral=True)


def build(services: Services) -> DecisionHandler:
    return DecisionHandler(gateway=slack_required(services), people=services.people, identity=services.identity,
                           proposals=services.proposals, home=home_handler.build(services))
