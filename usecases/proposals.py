"""Proposals: the model proposes, an allowed person decides, the worker acts once.

State machine (enforced by compare-and-set in the store):
    proposed -> approved -> executing -> succeeded | failed
    proposed -> rejected | expired
Only ``decide`` moves a proposal out of ``proposed``, and only for a person the
proposal's approver policy admits; model output and document text never reach it.

``on_change`` is told of every proposal made and every state it reaches (the App Home tabs of its
approvers are refreshed from it); what it does never changes the outcome.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from chatops.access import Principal
from chatops.catalogue import ApproverPolicy, Catalogue
from chatops.logs import redact
from chatops.store.store import Proposal, Store
from connectors.actions.base import ExecutionContext, ExecutionResult
from connectors.identity.base import IdentityProvider

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# -- outcomes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Proposed:
    proposal: Proposal
    policy: ApproverPolicy


@dataclass(frozen=True)
class Invalid:
    action: str
    errors: list[str]

    def message(self) -> str:
        return (f"I couldn't propose {self.action}: " + "; ".join(self.errors[:5])
                + ". Nothing was proposed.")


@dataclass(frozen=True)
class Refused:
    """The person may not do this; nothing changed. ``message`` is for them alone."""

    message: str


@dataclass(frozen=True)
class Decided:
    proposal: Proposal | None
    executed: Proposal | None = None   # the final proposal after execution, for approvals


# -- the service ---------------------------------------------------------------------


class ProposalService:
    def __init__(self, store: Store, catalogue: Catalogue, *, identity: IdentityProvider | None = None,
                 clock: Callable[[], datetime] = utcnow, max_attempts: int = 3, backoff: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep,
                 on_change: Callable[[Proposal], None] | None = None):
        self.store = store
        self.on_change = on_change
        self.identity = identity
        self.catalogue = catalogue
        self.clock = clock
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.sleep = sleep

    # Proposing ----------------------------------------------------------------

    def propose(self, name: str, raw_arguments: str | dict[str, Any], requester: Principal, *, channel: str | None,
                thread_ts: str | None, correlation_id: str | None) -> Proposed | Invalid:
        if isinstance(raw_arguments, dict):
            arguments = raw_arguments
        else:
            try:
                arguments = json.loads(raw_arguments or "{}")
            except json.JSONDecodeError:
                return self._invalid(name, ["the arguments are not valid JSON"], requester, correlation_id)
        spec = self.catalogue.specs.get(name)
        if spec is None:
            return self._invalid(name, [f"there is no action called {name!r}"], requester, correlation_id)
        if not self.catalogue.may_request(spec, requester):
            return self._invalid(name, ["you are not among the people who may request it"], requester,
                                 correlation_id)
        errors = self.catalogue.argument_errors(name, arguments)
        if errors:
            return self._invalid(name, errors, requester, correlation_id)
        policy = self.catalogue.policy(name, arguments)
        proposal = self.store.create_proposal(
            action=name, arguments=arguments, requested_by_slack=requester.slack_user_id,
            requested_by_email=requester.email, approvers=policy.as_json(),
            allow_self_approval=policy.allow_self_approval, channel=channel, thread_ts=thread_ts,
            expires_at=self.clock() + timedelta(seconds=spec.expires_after), correlation_id=correlation_id,
        )
        log.info("proposal created", extra={"proposal_id": proposal.id, "action": name})
        self._changed(proposal)
        return Proposed(proposal, policy)

    def _changed(self, proposal: Proposal | None) -> None:
        if proposal is None or self.on_change is None:
            return
        try:
            self.on_change(proposal)
        except Exception:  # noqa: BLE001 - telling others of a change must not change its outcome
            log.exception("could not pass on a proposal's change", extra={"proposal_id": proposal.id})

    def _invalid(self, name: str, errors: list[str], requester: Principal, cid: str | None) -> Invalid:
        self.store.audit("proposal_invalid", actor_slack_id=requester.slack_user_id, actor_email=requester.email,
                         correlation_id=cid, detail={"action": name, "errors": errors[:10]})
        log.warning("invalid proposal refused", extra={"action": name, "errors": errors[:3]})
        return Invalid(name, errors)

    # Deciding -----------------------------------------------------------------

    def policy_of(self, proposal: Proposal) -> ApproverPolicy:
        return ApproverPolicy.from_json(proposal.approvers or {}, proposal.allow_self_approval)

    @staticmethod
    def _is_requester(proposal: Proposal, actor: Principal) -> bool:
        if actor.slack_user_id and proposal.requested_by_slack:
            return actor.slack_user_id == proposal.requested_by_slack
        return bool(actor.email) and actor.email == (proposal.requested_by_email or "").lower()

    @staticmethod
    def _named_approver(policy: ApproverPolicy, actor: Principal) -> bool:
        """The actor is among the approvers the policy names (by email or group id)."""
        return (actor.email is not None and actor.email in policy.users) or bool(set(policy.groups) & actor.groups)

    def may_approve(self, proposal: Proposal, actor: Principal) -> tuple[bool, str]:
        policy = self.policy_of(proposal)
        is_requester = self._is_requester(proposal, actor)
        admitted = is_requester if policy.requester_alone else self._named_approver(policy, actor)
        if not admitted:
            return False, f"You can't approve this: approvers are {self.catalogue.describe(policy)}."
        if is_requester and not policy.allow_self_approval:
            return False, "You asked for this, so someone else among the approvers has to approve it."
        return True, ""

    def decide(self, proposal_id: str, decision: str, actor: Principal, *, reason: str | None = None,
               correlation_id: str | None = None, via: str = "slack",
               on_approved: Callable[[Proposal], None] | None = None) -> Decided | Refused:
        proposal = self.store.get_proposal(proposal_id)
        if proposal is None:
            return Refused("I can't find that proposal.")
        now = self.clock()
        detail = {"via": via}
        if proposal.state == "proposed" and proposal.is_expired(now):
            expired = self.store.transition(proposal.id, "expired", from_states=["proposed"],
                                            correlation_id=correlation_id, detail={"via": via})
            self._changed(expired)
            return Decided(expired or self.store.get_proposal(proposal.id))
        if decision == "approve":
            ok, why = self.may_approve(proposal, actor)
            if ok and proposal.state == "approved" and self._same_decider(proposal, actor):
                # A redelivered decision task: the approval stands, finish the execution.
                return Decided(proposal, self.execute(proposal.id, correlation_id))
            if not ok:
                return self._refuse(proposal, actor, why, correlation_id, via)
            if proposal.state != "proposed":
                return Refused(self._already(proposal))
            approved = self.store.transition(
                proposal.id, "approved", from_states=["proposed"], actor_slack_id=actor.slack_user_id,
                actor_email=actor.email, require_unexpired_at=now, correlation_id=correlation_id, detail=detail)
            if approved is None:  # someone else won the race, or it just expired
                return Refused(self._already(self.store.get_proposal(proposal.id)))
            if on_approved is not None:
                try:
                    on_approved(approved)
                except Exception:  # noqa: BLE001 - showing progress must not stop the execution
                    log.exception("could not show the approval")
            self._changed(approved)
            return Decided(approved, self.execute(approved.id, correlation_id))
        if decision == "reject":
            ok, _ = self.may_approve(proposal, actor)
            if not (ok or self._is_requester(proposal, actor)
                    or self._named_approver(self.policy_of(proposal), actor)):
                return self._refuse(proposal, actor, "You can't reject this: only its approvers or the "
                                    "person who asked can.", correlation_id, via)
            if proposal.state != "proposed":
                return Refused(self._already(proposal))
            rejected = self.store.transition(
                proposal.id, "rejected", from_states=["proposed"], actor_slack_id=actor.slack_user_id,
                actor_email=actor.email, reason=(reason or None), correlation_id=correlation_id, detail=detail)
            if rejected is None:
                return Refused(self._already(self.store.get_proposal(proposal.id)))
            self._changed(rejected)
            return Decided(rejected)
        raise ValueError(f"unknown decision {decision!r}")

    @staticmethod
    def _same_decider(proposal: Proposal, actor: Principal) -> bool:
        return bool(actor.email) and proposal.decided_by_email == actor.email

    def _refuse(self, proposal: Proposal, actor: Principal, why: str, cid: str | None, via: str) -> Refused:
        self.store.audit("click_refused", proposal_id=proposal.id, actor_slack_id=actor.slack_user_id,
                         actor_email=actor.email, correlation_id=cid, detail={"why": why, "via": via})
        log.warning("decision refused", extra={"proposal_id": proposal.id, "why": why})
        return Refused(why)

    @staticmethod
    def _already(proposal: Proposal | None) -> str:
        if proposal is None:
            return "I can't find that proposal."
        who = f" by {proposal.decided_by_email}" if proposal.decided_by_email else ""
        phrases = {
            "approved": f"already approved{who}", "executing": f"already approved{who} and running",
            "succeeded": f"already approved{who} and done", "failed": f"already approved{who}; it failed",
            "rejected": f"already rejected{who}", "expired": "already expired",
        }
        return f"This proposal is {phrases.get(proposal.state, 'already ' + proposal.state)}."

    # Executing ----------------------------------------------------------------

    def execute(self, proposal_id: str, correlation_id: str | None = None) -> Proposal | None:
        """Run an approved proposal once. Returns the final proposal (or the current one if
        another worker holds it)."""
        running = self.store.transition(proposal_id, "executing", from_states=["approved"],
                                        correlation_id=correlation_id)
        if running is None:
            current = self.store.get_proposal(proposal_id)
            if current is not None and current.state == "executing":
                log.warning("proposal already executing elsewhere", extra={"proposal_id": proposal_id})
            return current
        result = self._run(running, correlation_id)
        final_state = "succeeded" if result.ok else "failed"
        payload = {"ok": result.ok, "summary": result.summary, "url": result.url,
                   "external_id": result.external_id, "transient": result.transient, "detail": result.detail}
        try:
            final = self.store.transition(proposal_id, final_state, from_states=["executing"], result=payload,
                                          correlation_id=correlation_id)
        except ValueError:
            # The connector's detail looked like a secret: keep the outcome, drop the detail.
            log.error("execution result refused by the audit trail; stored without detail",
                      extra={"proposal_id": proposal_id})
            payload = {"ok": result.ok, "summary": redact(result.summary), "url": None,
                       "external_id": None, "transient": result.transient, "detail": {}}
            final = self.store.transition(proposal_id, final_state, from_states=["executing"], result=payload,
                                          correlation_id=correlation_id)
        log.info("proposal executed", extra={"proposal_id": proposal_id, "state": final_state})
        self._changed(final)
        return final

    def _run(self, proposal: Proposal, correlation_id: str | None) -> ExecutionResult:
        name = proposal.action
        # Re-check at execution time: the catalogue may have changed since the proposal.
        if name not in self.catalogue.specs:
            return ExecutionResult(ok=False, summary=f"the action {name} is no longer in the catalogue")
        errors = self.catalogue.argument_errors(name, proposal.arguments)
        if errors:
            return ExecutionResult(ok=False, summary="the arguments are no longer valid: " + "; ".join(errors[:3]))
        if not self._requester_still_allowed(proposal):
            return ExecutionResult(ok=False, summary="the requester may no longer request this action")
        ctx = ExecutionContext(proposal_id=proposal.id, action=name,
                               requested_by=proposal.requested_by_email or "",
                               approved_by=proposal.decided_by_email or "")
        connector = self.catalogue.connectors[name]
        attempts = self.max_attempts if self.catalogue.idempotent(name) else 1
        result = ExecutionResult(ok=False, summary="not run")
        for attempt in range(1, attempts + 1):
            try:
                result = connector.execute(proposal.arguments, ctx)
            except Exception as exc:  # noqa: BLE001 - a connector bug is a failed execution, on record
                log.exception("connector raised", extra={"proposal_id": proposal.id})
                result = ExecutionResult(ok=False, summary=f"the connector failed ({type(exc).__name__})")
            if result.ok or not result.transient or attempt == attempts:
                break
            self.sleep(self.backoff * 2 ** (attempt - 1))
        return result

    def _requester_still_allowed(self, proposal: Proposal) -> bool:
        spec = self.catalogue.specs[proposal.action]
        if spec.requesters is None:
            return True
        if self.identity is None or not proposal.requested_by_email:
            return False
        try:
            requester = self.identity.by_email(proposal.requested_by_email)
        except Exception:  # noqa: BLE001 - cannot confirm: do not act
            return False
        return self.catalogue.may_request(spec, requester)

    def expire_overdue(self) -> list[Proposal]:
        now = self.clock()
        expired: list[Proposal] = []
        for p in self.store.list_proposals(state="proposed", limit=1000):
            if p.is_expired(now):
                done = self.store.transition(p.id, "expired", from_states=["proposed"], detail={"via": "sweep"})
                if done is not None:
                    expired.append(done)
                    self._changed(done)
        return expired
