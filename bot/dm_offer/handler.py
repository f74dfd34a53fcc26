""""Send me the full answer": the asker alone gets the answer in a DM, with their own permissions.

The offer (the question and who asked) was kept in Redis when the channel answer was
posted; only the asker's click is honoured. Steps are recorded like a question's.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from bot import blocks
from bot.dm_offer import offer as offers
from bot.dm_offer.blocks import dm_offer_done
from bot.dm_offer.task import ANSWER_IN_DM
from bot.questions.handler import answer_of, asker, post_answer
from bot.services import Services, slack_required
from bot.steps import ProgressFor, report_failure, working_message
from usecases.answering import Answering
from usecases.ask import Question
from usecases.people import Refusal
from usecases.threads import Exchange

log = logging.getLogger(__name__)

EXPIRED = "That offer has expired; ask me again."
NOT_YOURS = "Only the person who asked can get this answer."


@dataclass(kw_only=True)
class DmOfferHandler:
    gateway: Any
    state: Any
    people: Any
    answering: Answering
    progress_for: ProgressFor
    link_hosts: tuple[str, ...] = ()

    def handle(self, payload: dict) -> None:
        gateway = self.gateway
        progress = self.progress_for(ANSWER_IN_DM.kind, payload)
        offer = offers.find(self.state, payload.get("offer_id") or "")
        user, channel = payload.get("user"), payload.get("channel")
        if offer is None or offer.get("asker") != user:
            if offer is not None:
                log.warning("someone else clicked a private answer offer; refused", extra={"user": user})
            if channel and user:
                gateway.post_ephemeral(channel, user, dm_offer_done(EXPIRED if offer is None else NOT_YOURS))
            return
        dm = progress.get("dm") or gateway.open_dm(user)
        progress.mark("dm", dm)
        q = Question(text=offer["question"], asker_slack_id=user, channel=dm, channel_type="im",
                     history=[Exchange.from_record(h) for h in offer.get("history") or []], allow_actions=False)
        placeholder = working_message(gateway, progress, dm, None)
        if progress.done("posted"):
            return
        try:
            asker(self.people, q)
            answer = answer_of(self.answering, q, progress)
        except Refusal as refusal:
            gateway.update(dm, placeholder, blocks.refusal_message(str(refusal)))
            progress.mark("posted")
            return
        answer_id = progress.get("answer_id") or secrets.token_hex(8)
        progress.mark("answer_id", answer_id)
        post_answer(gateway, dm, placeholder, None, answer, q, self.link_hosts, answer_id=answer_id)
        progress.mark("posted")
        if not progress.done("recorded"):
            self.answering.record(q, answer, answer_id=answer_id, correlation_id=payload.get("cid"),
                                  stages=progress.get_json("stages"))
            progress.mark("recorded")

    def failed(self, payload: dict, reference: str, detail: str = "") -> None:
        report_failure(self.gateway, self.progress_for(ANSWER_IN_DM.kind, payload), user=payload.get("user"),
                       channel=payload.get("channel"), thread_ts=None, reference=reference, detail=detail)


def build(services: Services) -> DmOfferHandler:
    return DmOfferHandler(gateway=slack_required(services), state=services.state, people=services.people,
                          answering=services.answering, progress_for=services.progress_for,
                          link_hosts=services.settings.link_hosts)
