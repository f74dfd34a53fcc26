"""A Disconnect click on the worker: who clicked (by their stable id, never the button's word for
it), their credential for that tool deleted, and the answer to them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bot import blocks
from bot.services import Services, slack_required
from bot.steps import report_failure
from bot.tool_connections.blocks import disconnected_message
from chatops.errors import IdentityUnavailable
from usecases.people import IDENTITY_DOWN, Refusal, Someone, resolve
from usecases.tools import Toolbox, caller_of

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class ToolConnectionHandler:
    gateway: Any                  # bot.gateway.SlackGateway
    people: Any                   # bot.people.SlackPeople
    identity: Any                 # connectors.identity.base.IdentityProvider
    toolbox: Toolbox | None
    connections: Any              # usecases.tool_auth.ToolConnections (None: no per-person tools)

    def handle(self, payload: dict) -> None:
        user, name = payload.get("user"), str(payload.get("tool") or "")
        where = self.gateway.open_dm(user)
        tool = self.toolbox.tools.get(name) if self.toolbox is not None else None
        if tool is None or not tool.per_person or self.connections is None:
            self.gateway.post(where, blocks.refusal_message(f"There is no tool named {name!r} to disconnect."))
            return
        try:
            who = self.people.someone(user)
            person = resolve(self.identity, Someone(chat_id=user, email=who.email, external=who.external))
        except IdentityUnavailable:
            self.gateway.post(where, blocks.refusal_message(IDENTITY_DOWN))
            return
        except Refusal as refusal:
            self.gateway.post(where, blocks.refusal_message(str(refusal)))
            return
        was = self.connections.disconnect(name, caller_of(person).person_id)
        log.info("tool disconnected", extra={"tool": name, "had_credential": was})
        self.gateway.post(where, disconnected_message(tool.label, was))

    def failed(self, payload: dict, reference: str, detail: str = "") -> None:
        report_failure(self.gateway, None, user=payload.get("user"), channel=None, thread_ts=None,
                       reference=reference, detail=detail)


def build(services: Services) -> ToolConnectionHandler:
    return ToolConnectionHandler(gateway=slack_required(services), people=services.people,
                                 identity=services.identity, toolbox=services.toolbox,
                                 connections=services.tool_connections)
