"""Opening the App Home, on the worker.

The Home tab: who opened it (by their Slack id, resolved through the directory like an asker; if
that cannot be done, the tab says so and shows nothing of theirs), then ``views.publish`` of what
``usecases/home.py`` gives for them. The Messages tab (the agent view): its suggested prompts with
``assistant.threads.setSuggestedPrompts`` on the conversation the event names, without
``thread_ts`` (Slack: "The thread_ts parameter should only be used in the legacy assistant
messaging experience. Including it in a call for an agent app will cause the call to silently
fail."; without it the prompts are set for the latest message in the channel).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from slack_sdk.errors import SlackApiError

from bot.gateway import _call
from bot.home.blocks import home_view, suggested_prompts as prompts_arguments, unresolved_view
from bot.public_channels import PublicChannels
from bot.services import Services, slack_required
from chatops import metrics
from chatops.access import Principal
from chatops.errors import IdentityUnavailable
from chatops.store.asked import AskedRecords
from chatops.store.sources import SourceStates
from usecases.home import Home, IsPublic, Prompt, suggested_prompts
from usecases.people import IDENTITY_DOWN, Refusal, Someone, resolve

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class HomeHandler:
    gateway: Any                  # bot.gateway.SlackGateway
    people: Any                   # bot.people.SlackPeople
    identity: Any                 # connectors.identity.base.IdentityProvider
    home: Home
    asked: AskedRecords
    is_public: IsPublic
    prompts: list[Prompt] = field(default_factory=list)      # assistant.prompts of CHATOPS_CONFIG
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)

    def handle(self, payload: dict) -> None:
        user = payload.get("user")
        if not isinstance(user, str) or not user:
            return
        if payload.get("tab") == "messages":
            self._suggest(user, payload.get("channel"))
        else:
            self._publish_home(user)

    def failed(self, payload: dict, reference: str, detail: str = "") -> None:
        """A Home tab that could not be made says so there; a Messages tab's prompts are only logged."""
        user = payload.get("user")
        log.error("home: could not finish", extra={"tab": payload.get("tab"), "reference": reference})
        if payload.get("tab") == "messages" or not user:
            return
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

    def _publish_home(self, user: str) -> None:
        try:
            person = self.person(user)
        except Refusal as refusal:
            metrics.SLACK_EVENTS.labels(kind="home", outcome="refused").inc()
            self._publish(user, unresolved_view(str(refusal)))
            return
        self._publish(user, home_view(self.home.view(person), self.clock()))

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
                                for p in services.settings.file.assistant.prompts])
