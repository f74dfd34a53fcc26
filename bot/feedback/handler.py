"""Feedback clicks on answers, in the worker: 👍 / 👎 (and the "what was wrong" form), Needs a
human (a message in the thread calling the channel's escalation people), Resolved.

The payload carries the answer id and who clicked; everything else comes from the audit
record (usecases/feedback.py), so a click reveals nothing and can point at nothing else.
Each Slack message is posted once per click (the step record), whatever the deliveries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bot.feedback import blocks as fb
from bot.feedback.task import FEEDBACK
from bot.policies import ChannelPolicyLookup
from bot.services import Services, slack_required
from bot.steps import ProgressFor
from usecases.feedback import Feedback

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class FeedbackHandler:
    gateway: Any
    feedback: Feedback
    policies: ChannelPolicyLookup
    progress_for: ProgressFor

    def handle(self, payload: dict) -> None:
        op = payload.get("op")
        if op == "vote":
            self._vote(payload)
        elif op == "escalate":
            self._escalate(payload)
        elif op == "resolve":
            self._resolve(payload)
        else:
            log.warning("unknown feedback operation", extra={"op": op})

    def failed(self, payload: dict, reference: str, detail: str = "") -> None:
        log.error("feedback could not be recorded", extra={"reference": reference, "op": payload.get("op")})
        channel, user = payload.get("channel"), payload.get("user")
        if channel and user:
            try:
                self.gateway.post_ephemeral(channel, user, {
                    "text": f"Sorry, your feedback could not be recorded (reference {reference}). Please try again."})
            except Exception:  # noqa: BLE001 - already logged above
                log.exception("could not tell the person their feedback was lost")

    def _vote(self, payload: dict) -> None:
        voted = self.feedback.vote(payload.get("answer_id"), payload.get("user"), payload.get("vote", ""),
                                   reason=payload.get("reason"))
        progress = self.progress_for(FEEDBACK.kind, payload)
        if payload.get("reason") is not None or progress.done("thanked"):
            return
        if voted.answer is None:
            if payload.get("channel"):      # never silent: the vote was not counted, say so
                self.gateway.post_ephemeral(payload["channel"], payload["user"], fb.not_on_record(),
                                            thread_ts=payload.get("thread_ts"))
            progress.mark("thanked")
            return
        if payload.get("vote") == "helpful" and payload.get("channel") and not payload.get("element"):
            self.gateway.post_ephemeral(payload["channel"], payload["user"], fb.thanks("helpful"),
                                        thread_ts=payload.get("thread_ts"))
        progress.mark("thanked")

    def _escalate(self, payload: dict) -> None:
        progress = self.progress_for(FEEDBACK.kind, payload)
        answer, new = self.feedback.escalate(payload.get("answer_id"), payload.get("user"))
        if answer is None or progress.done("posted"):
            return
        channel = payload.get("channel") or answer.channel
        # the thread the question was asked in, as recorded (a click on an ephemeral answer names none)
        thread = answer.thread_ts or payload.get("thread_ts")
        if not new:
            self.gateway.post_ephemeral(channel, payload["user"], {
                "text": "Someone has already asked for a human on this question; they have been called."},
                thread_ts=thread)
            progress.mark("posted")
            return
        policy = self.policies.for_channel(answer.channel, answer.channel_type)
        if answer.channel_type == "im" or (channel or "").startswith("D"):
            self._escalate_privately(answer, policy, channel, payload, progress)
            return
        message = fb.escalation_message(policy.escalation_mentions, answer.asker_slack_id, payload["user"],
                                        answer.answer_id)
        ts = self.gateway.post(channel, message, thread_ts=thread)
        self.feedback.answers.set_escalation_message(answer.answer_id, ts)
        progress.mark("posted")

    def _escalate_privately(self, answer, policy, channel: str, payload: dict, progress) -> None:
        """A DM: its thread reaches nobody else, so each escalation person gets a DM of their own
        with the asker's question (not the answer: it was made for the asker's eyes)."""
        first_ts = None
        for user in policy.escalation_users:
            if progress.done(f"called:{user}"):
                continue
            dm = self.gateway.open_dm(user)
            ts = self.gateway.post(dm, fb.private_escalation(answer.asker_slack_id or payload["user"],
                                                             answer.question, answer.answer_id))
            first_ts = first_ts or ts
            progress.mark(f"called:{user}")
        if first_ts:
            self.feedback.answers.set_escalation_message(answer.answer_id, first_ts)
        self.gateway.post(channel, fb.escalated_to(list(policy.escalation_users)), thread_ts=payload.get("thread_ts"))
        progress.mark("posted")

    def _resolve(self, payload: dict) -> None:
        answer = self.feedback.answer(payload.get("answer_id"))
        user = payload.get("user")
        contacts: list[str] = []
        if answer is not None:
            policy = self.policies.for_channel(answer.channel, answer.channel_type)
            contacts = list(policy.escalation_users)
            # the user group is asked only when nothing else already admits the clicker
            if policy.escalation_usergroup and not self.feedback.may_resolve(answer, user, contacts):
                try:
                    contacts += self.gateway.usergroup_members(policy.escalation_usergroup)
                except Exception as exc:  # noqa: BLE001 - not confirmed: the usergroup's people are not allowed
                    log.warning("could not list the escalation user group", extra={"error": type(exc).__name__})
        outcome = self.feedback.resolve(answer, user, contacts)
        channel = payload.get("channel") or (answer.channel if answer else None)
        if outcome == "resolved" and channel and payload.get("message_ts"):
            self.gateway.update(channel, payload["message_ts"], fb.escalation_resolved(payload["user"]))
        elif outcome == "not_allowed" and channel:
            self.gateway.post_ephemeral(channel, payload["user"], fb.not_yours_to_resolve(),
                                        thread_ts=payload.get("thread_ts"))


def build(services: Services) -> FeedbackHandler:
    return FeedbackHandler(gateway=slack_required(services), feedback=Feedback(services.answers),
                           policies=services.channel_policies, progress_for=services.progress_for)
