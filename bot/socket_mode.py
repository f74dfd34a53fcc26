"""Socket Mode: the same Bolt app over a WebSocket (``SLACK_APP_TOKEN``)."""

from __future__ import annotations

from slack_bolt.adapter.socket_mode import SocketModeHandler

from chatops.settings import ConfigError


def run_socket_mode(bolt_app, app_token) -> None:
    if not app_token:
        raise ConfigError("SLACK_APP_TOKEN (xapp-...) must be set for Socket Mode")
    SocketModeHandler(bolt_app, app_token.get_secret_value()).start()
