"""Opening the App Home, on the worker.

The Home tab: who opened it (by their Slack id, resolved through the directory like an asker; if
that cannot be done, the tab says so and shows nothing of theirs), then ``views.publish`` of what
``usecases/home.py`` gives for them. The Messages tab (the agent view): its suggested prompts with
``assistant.threads.setSuggestedPrompts`` on the conversation the event names, without
``thread_ts`` (Slack: "The thread_ts parameter should only be used in the legacy assistant
messaging experience. Including it in a call for an agent app will cause the call to silently
fail."; without it the prompts are set for the latest message in the channel).

Each opening of the Home tab is recorded (``bot/home/refresh.py``); a ``home`` task naming a
proposal (queued when one is made, decided or expires) republishes, coalesced, the Home tabs of
the recent openers who may approve it; a task with ``refresh`` is one such republication.
``publish_home`` with a ``notice`` is what a decision taken on the Home tab shows there
(``bot/decisions/handler.py``); the notice is kept ``NOTICE_TTL`` seconds, so a refresh queued by
the same decision (or another change) shows it too rather than taking it away.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from slack_sdk.errors import SlackApiError

from bot.gateway import _call
from bot.home.blocks import home_view, suggested_prompts as prompts_arguments, unresolved_view
from bot.home.refresh import COALESCE_S, FANOUT_MAX, Openings, refresh_payload
from bot.home.task import HOME
from bot.public_channels import PublicChannels
from bot.services import Services, slack_required
from chatops import keys, metrics
from chatops.access import Principal
from chatops.errors import IdentityUnavailable
from chatops.store.asked import AskedRecords
from chatops.store.sources import SourceStates
from usecases.home import Home, IsPublic, Prompt, suggested_prompts
from usecases.people import IDENTITY_DOWN, Refusal, Someone, resolve

log = logging.getLogger(__name__)

NOTICE_TTL = 120          # seconds a decision's outcome stays on top of the person's Home tab


@dataclass(kw_only=True)
class HomeHandler:
    gateway: Any                  # bot.gateway.SlackGateway
    people: Any                   # bot.people.SlackPeople
    identity: Any                 # connectors.identity.base.IdentityProvider
    home: Home
    asked: AskedRecords
    is_public: IsPublic
    prompts: list[Prompt] = field(default_factory=list)      # assistant.prompts of CHATOPS_CONFIG
    state: Any = None             # chatops.state.State: the coalescing claims
    openings: Openings | None = None
    dispatch: Callable[[str, dict], None] | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)

    def handle(self, payload: dict) -> None:
        if payload.get("proposal_id"):
            self._refresh_approvers(str(payload["proposal_id"]))
            return
        user = payload.get("user")
        if not isinstance(user, str) or not user:
            return
        if payload.get("tab") == "messages":
            self._suggest(user, payload.get("channel"))
        else:
            self.publish_home(user, opened=not payload.get("refresh"))

    def failed(self, payload: dict, reference: str, detail: str = "") -> None:
        """A Home tab someone opened that could not be made says so there; the rest is only logged."""
        user = payload.get("user")
        log.error("home: could not finish", extra={"tab": payload.get("tab"), "reference": reference})
        if payload.get("tab") == "messages" or payload.get("refresh") or not user:
            return          # prompts, a fan-out, a refresh nobody asked for: the tab stays as it was
        try:
            self._publish(user, unresolved_view("Something went wrong on my side while making this page. "
                                                f"Please open it again in a minute. Reference: {reference}"))
        except Exception:  # noqa: BLE001 - nothing more to tell them with
            log.exception("home: could not publish the failure")

    def person(self, user: str) -> Principal:
        """The person who opened the tab (Refusal: they cannot be told)."""
        try:
            who = self.people.someone(user)
        except IdentityUnavailable:
            raise Refusal(IDENTITY_DOWN) from None
        return resolve(self.identity, Someone(chat_id=user, email=who.email, external=who.external))

    def publish_home(self, user: str, *, person: Principal | None = None, notice: str | None = None,
                     opened: bool = False) -> None:
        """Publish ``user``'s Home tab as it is now (``person``: already resolved; ``notice``: a line
        shown first; ``opened``: they opened it, so it is kept current for a while)."""
        if person is None:
            try:
                person = self.person(user)
            except Refusal as refusal:
                metrics.SLACK_EVENTS.labels(kind="home", outcome="refused").inc()
                self._publish(user, unresolved_view(str(refusal)))
                return
        if opened and self.openings is not None:
            try:
                self.openings.record(user)
            except Exception as exc:  # noqa: BLE001 - the tab is shown; it is only not kept current
                log.warning("could not record a Home tab's opening", extra={"error": type(exc).__name__})
        notice = self._notice(user, notice)
        self._publish(user, home_view(self.home.view(person), self.clock(), notice=notice))

    def _notice(self, user: str, notice: str | None) -> str | None:
        """Keep a new notice for a while, or take the one kept (a Redis failure: no notice kept)."""
        if self.state is None:
            return notice
        try:
            if notice:
                self.state.set_json(notice, NOTICE_TTL, keys.CACHE_HOME_NOTICE, user)
                return notice
            kept = self.state.get_json(keys.CACHE_HOME_NOTICE, user)
        except Exception as exc:  # noqa: BLE001 - the notice is a courtesy
            log.warning("could not keep a Home tab's notice", extra={"error": type(exc).__name__})
            return notice
        return kept if isinstance(kept, str) else None

    def publish_unresolved(self, user: str, reason: str) -> None:
        self._publish(user, unresolved_view(reason))

    def _refresh_approvers(self, proposal_id: str) -> None:
        """A proposal changed: queue a coalesced refresh of the Home tab of each recent opener its
        approver policy admits (``bot/home/refresh.py``)."""
        proposals = self.home.proposals
        if proposals is None or self.openings is None or self.state is None or self.dispatch is None:
            return
        proposal = proposals.store.get_proposal(proposal_id)
        if proposal is None:
            return
        queued = 0
        for user in self.openings.recent(FANOUT_MAX):
            try:
                person = self.person(user)
            except Refusal:
                continue
            if not proposals.may_approve(proposal, person)[0]:
                continue
            if not self.state.claim(keys.CLAIM_HOME_REFRESH, user, ttl=COALESCE_S):
                continue          # a refresh is already queued; it runs after this change
            try:
                self.dispatch(HOME.kind, refresh_payload(user))
            except Exception:
                self.state.release(keys.CLAIM_HOME_REFRESH, user)
                raise
            queued += 1
        log.info("home tabs to refresh", extra={"proposal_id": proposal_id, "state": proposal.state,
                                                "queued": queued})

    def _publish(self, user: str, view: dict) -> None:
        _call(self.gateway.client.views_publish, user_id=user, view=view)

    def _suggest(self, user: str, channel: Any) -> None:
        if not isinstance(channel, str) or not channel:
            log.info("home: the Messages tab was opened with no conversation named; no prompts")
            return
        prompts = suggested_prompts(self.asked, user, is_public=self.is_public, configured=self.prompts)
        if not prompts:
            return
        try:
            _call(self.gateway.client.assistant_threads_setSuggestedPrompts, channel_id=channel,
                  **prompts_arguments(prompts))
        except SlackApiError as exc:   # not an agent app, the tab off: the tab works without prompts
            log.warning("could not set the suggested prompts",
                        extra={"error": (exc.response or {}).get("error") if exc.response is not None else None})


def build(services: Services) -> HomeHandler:
    store = services.answers.store
    toolbox = services.toolbox
    labels = {name: tool.label for name, tool in toolbox.tools.items()} if toolbox is not None else {}
    asked = AskedRecords(store)
    home = Home(asked=asked, source_states=SourceStates(store), configured=services.source_ids,
                max_acl_age=services.settings.max_acl_age, proposals=services.proposals,
                connections=services.tool_connections, tool_labels=labels)
    gateway = slack_required(services)
    return HomeHandler(gateway=gateway, people=services.people, identity=services.identity, home=home,
                       asked=asked, is_public=PublicChannels(gateway),
                       prompts=[Prompt(title=p.title, message=p.message)
                                for p in services.settings.file.assistant.prompts],
                       state=services.state, openings=Openings(services.state),
                       dispatch=lambda kind, payload: services.dispatch(kind, payload))
