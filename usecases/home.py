"""What a person sees of the bot on their own: the App Home tab and the prompts suggested when they
open the agent's Messages tab. Slack-free; the bot turns it into Block Kit (``bot/home/``).

Everything is for one resolved person (a ``Principal``), and shows only what is theirs or what they
may see:

* the configured sources with at least one document this person may read now (the access rule,
  ``Principal.can_see``, on the permissions the last sync recorded; a source whose permissions are
  out of date counts only its public documents, as answers do), with how fresh each is;
* their own recent questions and how each went (by their Slack id: nobody else's);
* the pending proposals they may approve (the proposal service's own rule, ``may_approve``), with
  what each would run with (the bot puts Approve / Reject beside each);
* the tools they connected with their own account (by their stable id, ``caller_of``).

Suggested prompts are the deployment's own (``assistant.prompts`` in CHATOPS_CONFIG), or else the
questions most often answered helpfully that this person may be shown: their own, or asked in a
public channel whose answer's audience included them. A question from anyone else's direct
message, group DM or private channel is never one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from chatops.access import Principal
from chatops.store.asked import AskedRecords, AskedRow
from chatops.store.sources import SourceStates
from usecases.answer_cache import normalise
from usecases.freshness import SourceStatus, statuses
from usecases.proposals import ProposalService
from usecases.tools import caller_of

log = logging.getLogger(__name__)

PROMPTS_MAX = 4                     # Slack shows up to four suggested prompts
PROMPT_TITLE_MAX = 75
PROMPT_MESSAGE_MAX = 1000
ANSWERED = ("llm", "extractive", "cached")
NOT_PUBLIC_TYPES = ("im", "mpim", "group", "private")

IsPublic = Callable[[str | None, str | None], bool]     # (channel, channel_type): a public channel now


class Connections(Protocol):
    def connected(self, person_id: str) -> list[str]: ...


@dataclass(frozen=True)
class Prompt:
    title: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"title": self.title, "message": self.message}


@dataclass(frozen=True)
class SourceSeen:
    name: str
    kind: str
    last_sync: datetime | None          # the latest content sync (incremental or full)
    permissions_at: datetime | None     # the ACL watermark: permissions read as of then
    stale: bool                         # permissions too old: only public documents are used
    running: bool


@dataclass(frozen=True)
class Asked:
    at: datetime
    question: str
    outcome: str                        # answered | no_evidence | refused | failed | …
    where: str                          # dm | channel
    channel: str | None
    helpful: int
    not_helpful: int
    escalated: bool
    resolved: bool


@dataclass(frozen=True)
class Approval:
    proposal_id: str
    action: str
    description: str
    requested_by: str | None            # Slack user id
    channel: str | None
    expires_at: datetime
    arguments: dict[str, Any] = field(default_factory=dict)    # what it would run with, shown before approving


@dataclass(frozen=True)
class ConnectedTool:
    name: str
    label: str


@dataclass(frozen=True)
class HomeView:
    sources: list[SourceSeen] = field(default_factory=list)
    asked: list[Asked] = field(default_factory=list)
    approvals: list[Approval] = field(default_factory=list)
    tools: list[ConnectedTool] = field(default_factory=list)


def _outcome(mode: str) -> str:
    if mode in ANSWERED:
        return "answered"
    return mode.replace("-", "_")


def may_show_question(row: AskedRow, slack_id: str, is_public: IsPublic) -> bool:
    """A question's text may be shown to ``slack_id``: they asked it, or it was asked in a public
    channel and its answer was made for an audience that included them."""
    if row.asker_slack_id == slack_id:
        return True
    if row.channel_type in NOT_PUBLIC_TYPES or not row.channel or not row.channel.startswith("C"):
        return False
    if row.audience_members is None or slack_id not in row.audience_members:
        return False
    return is_public(row.channel, row.channel_type)


def suggested_prompts(asked: AskedRecords, slack_id: str, *, is_public: IsPublic,
                      configured: Sequence[Prompt] = (), since: datetime | None = None,
                      limit: int = PROMPTS_MAX) -> list[Prompt]:
    """The deployment's prompts, or the questions most often answered helpfully this person may be
    shown (most helpful votes first, then the most recent); at most ``limit`` (Slack shows four)."""
    limit = min(limit, PROMPTS_MAX)
    if configured:
        return list(configured)[:limit]
    since = since or datetime.now(timezone.utc) - timedelta(days=90)
    tally: dict[str, list[Any]] = {}     # normalised -> [helpful votes, latest text, latest at]
    for row in asked.helpful(since):
        if row.mode not in ANSWERED or not row.question.strip():
            continue
        if not may_show_question(row, slack_id, is_public):
            continue
        key = normalise(row.question)
        if not key:
            continue
        entry = tally.setdefault(key, [0, row.question.strip(), row.at])
        entry[0] += row.helpful
    ranked = sorted(tally.values(), key=lambda e: (-e[0], -e[2].timestamp()))
    return [Prompt(title=_cut(text, PROMPT_TITLE_MAX), message=_cut(text, PROMPT_MESSAGE_MAX))
            for _, text, _ in ranked[:limit]]


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Home:
    """The App Home of one person."""

    def __init__(self, *, asked: AskedRecords, source_states: SourceStates,
                 configured: Mapping[str, tuple[str, str]], max_acl_age: float,
                 proposals: ProposalService | None = None, connections: Connections | None = None,
                 tool_labels: Mapping[str, str] | None = None, recent: int = 5, scan_limit: int = 5000,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.asked = asked
        self.source_states = source_states
        self.configured = dict(configured)
        self.max_acl_age = max_acl_age
        self.proposals = proposals
        self.connections = connections
        self.tool_labels = dict(tool_labels or {})
        self.recent = recent
        self.scan_limit = scan_limit       # items read per source at most before giving up (not shown)
        self.clock = clock

    def view(self, person: Principal) -> HomeView:
        return HomeView(sources=self.sources(person), asked=self.asked_by(person),
                        approvals=self.approvals(person), tools=self.tools(person))

    # -- what the bot can answer from, for this person ------------------------------------

    def sources(self, person: Principal) -> list[SourceSeen]:
        now = self.clock()
        out = []
        for status in statuses(self.source_states, self.configured, max_acl_age=self.max_acl_age, now=now):
            if status.synced and self._sees_some(status, person):
                out.append(SourceSeen(name=status.name, kind=status.kind, last_sync=_latest(status),
                                      permissions_at=status.acl_watermark, stale=status.stale,
                                      running=status.running))
        return out

    def _sees_some(self, status: SourceStatus, person: Principal) -> bool:
        """At least one indexed document of the source this person may read now. Reading stops at
        the first one, or after ``scan_limit`` items (then the source is not shown: fail closed)."""
        marker, read = "", 0
        while read < self.scan_limit:
            items, marker_next = self.source_states.documents_after(status.name, marker, 500)
            for item in items:
                if item.state != "indexed" or item.acl is None:
                    continue
                if item.acl.public or (not status.stale and person.can_see(item.acl)):
                    return True
            read += len(items) or 500
            if marker_next is None:
                return False
            marker = marker_next
        log.info("home: source too large to tell within the scan limit; not shown",
                 extra={"source": status.name, "scan_limit": self.scan_limit})
        return False

    # -- their own questions ---------------------------------------------------------------

    def asked_by(self, person: Principal, *, days: int = 30) -> list[Asked]:
        if not person.slack_user_id:
            return []
        rows = self.asked.recent(person.slack_user_id, self.clock() - timedelta(days=days), limit=self.recent)
        return [Asked(at=r.at, question=r.question, outcome=_outcome(r.mode),
                      where="dm" if r.channel_type == "im" or (r.channel or "").startswith("D") else "channel",
                      channel=r.channel, helpful=r.helpful, not_helpful=r.not_helpful, escalated=r.escalated,
                      resolved=r.resolved)
                for r in rows if r.asker_slack_id == person.slack_user_id]

    # -- proposals waiting for them ----------------------------------------------------------

    def approvals(self, person: Principal, *, limit: int = 10) -> list[Approval]:
        if self.proposals is None or (person.email is None and not person.slack_user_id):
            return []
        now = self.clock()
        out = []
        for proposal in self.proposals.store.list_proposals(state="proposed", limit=200):
            if proposal.is_expired(now):
                continue
            allowed, _ = self.proposals.may_approve(proposal, person)
            if not allowed:
                continue
            spec = self.proposals.catalogue.specs.get(proposal.action)
            out.append(Approval(proposal_id=proposal.id, action=proposal.action,
                                description=spec.description if spec is not None else "",
                                requested_by=proposal.requested_by_slack, channel=proposal.channel,
                                expires_at=proposal.expires_at, arguments=dict(proposal.arguments or {})))
            if len(out) >= limit:
                break
        return out

    # -- their own accounts for tools --------------------------------------------------------

    def tools(self, person: Principal) -> list[ConnectedTool]:
        if self.connections is None or person.email is None:
            return []
        names = self.connections.connected(caller_of(person).person_id)
        return [ConnectedTool(name=n, label=self.tool_labels.get(n, n)) for n in sorted(names)]


def _latest(status: SourceStatus) -> datetime | None:
    times = [t for t in (status.last_incremental_at, status.last_full_at) if t is not None]
    return max(times) if times else None
