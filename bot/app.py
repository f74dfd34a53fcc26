"""The Bolt app: request verification, listeners, nothing slow."""

from __future__ import annotations

import logging
from typing import Callable

from slack_bolt import App

from bot.gateway import make_client
from bot.listeners import actions, events
from chatops.settings import ConfigError, Settings
from chatops.state import State

Dispatch = Callable[[str, dict], None]


def build_app(settings: Settings, *, state: State, dispatch: Dispatch) -> App:
    if not settings.slack_bot_token or not settings.slack_signing_secret:
        raise ConfigError("SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET must be set to serve Slack")
    client = make_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    app = App(
        token=settings.slack_bot_token.get_secret_value(),
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        client=client,
        process_before_response=True,  # the ack means "queued", not merely "received"
        logger=logging.getLogger("chatops.bolt"),
    )
    events.register(app, state=state, dispatch=dispatch)
    actions.register(app, state=state, dispatch=dispatch)
    return app
