"""The Bolt app: request verification, every feature's listeners (bot/features.py), nothing slow."""

from __future__ import annotations

import logging
import time

from slack_bolt import App

from bot.enqueue import Dispatch, ListenerDeps
from bot.errors import answer_error
from bot.features import FEATURES
from bot.gateway import make_client
from bot.settings import SlackSettings
from bot.tenancy import only_ours
from chatops import metrics
from chatops.settings import ConfigError, Settings
from chatops.state import State


def _timed_ack(next):  # noqa: A002 - Bolt passes the next middleware by this name
    """Socket Mode's acknowledgement goes out when the listener returns (process_before_response)."""
    started = time.perf_counter()
    try:
        return next()
    finally:
        metrics.ACK_SECONDS.observe(time.perf_counter() - started)


def build_app(settings: Settings, *, state: State, dispatch: Dispatch, socket_mode: bool = False,
              rate=None) -> App:
    """The Bolt app. Over HTTP every request's signature and age are verified; Socket Mode
    connections are authenticated by the app token instead."""
    slack = settings.of(SlackSettings)
    if not slack.slack_bot_token:
        raise ConfigError("SLACK_BOT_TOKEN must be set to serve Slack")
    if not socket_mode and not slack.slack_signing_secret:
        raise ConfigError("SLACK_SIGNING_SECRET must be set to serve Slack over HTTP")
    client = make_client(slack.slack_bot_token.get_secret_value(), slack.slack_api_url)
    app = App(
        token=slack.slack_bot_token.get_secret_value(),
        signing_secret=slack.slack_signing_secret.get_secret_value() if slack.slack_signing_secret else None,
        request_verification_enabled=not socket_mode,
        client=client,
        process_before_response=True,  # the ack means "queued", not merely "received"
        logger=logging.getLogger("chatops.bolt"),
    )
    if not slack.slack_app_id:
        logging.getLogger(__name__).warning(
            "SLACK_APP_ID is not set: requests are not checked against this app's id")
    app.error(answer_error)
    if socket_mode:
        app.middleware(_timed_ack)     # over HTTP bot/web.py times the whole request instead
    app.middleware(only_ours(app_id=slack.slack_app_id, team_ids=slack.slack_team_ids))
    deps = ListenerDeps(state=state, dispatch=dispatch, rate=rate)
    for feature in FEATURES:
        if feature.listen is not None:
            feature.listen(app, deps)
    return app
