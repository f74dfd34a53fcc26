"""The scheduler's periodic work (``chatops beat``), run by a worker: expire proposals and take
their buttons off, post the daily report, clean the answer cache.

One ``maintenance`` task kind, its job named in the payload. Each job is idempotent: two
runs at once do the work once (proposals expire by compare-and-set; the report is posted once
a day, by a claim in Redis).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from bot.decisions.blocks import proposal_message
from bot.maintenance.blocks import report_message
from bot.public_channels import PublicChannels
from bot.services import Services
from chatops import keys
from chatops.privacy import PrivacyMode
from usecases.report import report
from usecases.report_quotes import quotes

log = logging.getLogger(__name__)

JOBS = ("expire_proposals", "daily_report", "cache_cleanup")


def expire_proposals(proposals, gateway, catalogue) -> tuple[int, int]:
    """Mark overdue proposals expired and take the buttons off their Slack messages: (expired, updated)."""
    expired = proposals.expire_overdue()
    updated = 0
    for p in expired:
        if gateway is not None and p.channel and p.message_ts:
            try:
                gateway.update(p.channel, p.message_ts, proposal_message(p, catalogue))
                updated += 1
            except Exception as exc:  # noqa: BLE001 - the state change stands; the message keeps dead buttons
                log.warning("could not take an expired proposal's buttons off",
                            extra={"proposal_id": p.id, "error": type(exc).__name__})
    return len(expired), updated


@dataclass(kw_only=True)
class MaintenanceHandler:
    gateway: Any
    proposals: Any                   # usecases.proposals.ProposalService
    catalogue: Any
    answers: Any                     # chatops.store.answers.Answers
    cache: Any                       # usecases.answer_cache.AnswerCache | None
    state: Any                       # chatops.state.State
    report_channel: str | None = None
    console_url: str | None = None
    privacy: Callable[[], str] = lambda: "off"      # the privacy mode now (chatops.privacy.PrivacyMode.current)
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)

    def handle(self, payload: dict) -> None:
        job = payload.get("job")
        if job == "expire_proposals":
            expired, updated = expire_proposals(self.proposals, self.gateway, self.catalogue)
            log.info("proposals expired", extra={"expired": expired, "messages_updated": updated})
        elif job == "daily_report":
            self.daily_report()
        elif job == "cache_cleanup":
            checked, dropped = self.cache.sweep() if self.cache is not None else (0, 0)
            log.info("answer cache cleaned", extra={"checked": checked, "dropped": dropped})
        else:
            log.warning("unknown maintenance job", extra={"job": job})

    def daily_report(self) -> None:
        now = self.clock()
        result = report(self.answers, now - timedelta(days=1), now)
        log.info("daily report", extra={"questions": result.questions, "answered_rate": result.answered_rate,
                                        "cost": result.cost, "not_helpful": result.not_helpful})
        if not self.report_channel or self.gateway is None:
            return
        # Quoted: only questions asked in public channels, and only when the privacy mode shows text.
        privacy = self.privacy()
        quoted = quotes(self.answers.questions(now - timedelta(days=1), now), privacy=privacy,
                        public=PublicChannels(self.gateway))
        log.info("daily report: unanswered questions", extra={"privacy": privacy, "quoted": len(quoted.questions),
                                                               "not_quoted": quoted.withheld})
        if not self.state.claim(keys.CLAIM_DAILY_REPORT, now.date().isoformat(), ttl=2 * 86400):
            return      # already posted today
        self.gateway.post(self.report_channel, report_message(result, quotes=quoted, console_url=self.console_url))

    def failed(self, payload: dict, reason: str) -> None:
        log.error("maintenance job failed", extra={"job": payload.get("job"), "reason": reason})


def build(services: Services) -> MaintenanceHandler:
    s = services.settings
    return MaintenanceHandler(gateway=services.gateway, proposals=services.proposals, catalogue=services.catalogue,
                              answers=services.answers, cache=services.answer_cache, state=services.state,
                              report_channel=s.report_channel,
                              privacy=PrivacyMode(services.redis, s.key_prefix, s.console_privacy).current,
                              console_url=f"{(s.public_url or 'http://127.0.0.1:3000').rstrip('/')}/admin")
