"""Slack and the web process: the gateway (paced per channel), Slack's people and channels, the
channels' settings, the Bolt app, and the web app with Graph's notifications and the console."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.app import build_app
from bot.channels import CachedChannelDirectory
from bot.gateway import SlackGateway, make_client
from bot.graph_notify import graph_notify_route
from bot.pacing import ChannelPacer
from bot.people import SlackPeople
from bot.policies import ChannelPolicyLookup
from bot.settings import SlackSettings
from bot.web import create_web_app
from chatops_app.container.core import once
from connectors.identity.settings import IdentitySettings
from workers.health import queue_depths, web_ready

if TYPE_CHECKING:
    from chatops_app.container import Container


class SlackParts:
    @once
    def gateway(self: Container) -> SlackGateway | None:
        slack = self.settings.of(SlackSettings)
        if not slack.slack_bot_token:
            return None
        return SlackGateway(make_client(slack.slack_bot_token.get_secret_value(), slack.slack_api_url),
                            pacer=ChannelPacer(self.redis, self.settings.key_prefix, slack.slack_channel_pace,
                                               burst=slack.slack_channel_burst))

    @once
    def people(self: Container) -> SlackPeople | None:
        """Slack users as the directory needs them (None without a Slack token)."""
        if self.gateway is None:
            return None
        slack = self.settings.of(SlackSettings)
        return SlackPeople(self.gateway, self.state, team_ids=slack.slack_team_ids, guests=slack.slack_guests,
                           ttl=self.settings.of(IdentitySettings).identity_cache_ttl, trusted_bots=slack.trusted_bots)

    @once
    def channel_directory(self: Container) -> CachedChannelDirectory | None:
        if self.gateway is None:
            return None
        return CachedChannelDirectory(self.gateway, self.people, self.state, ttl=self.settings.channel_cache_ttl)

    @once
    def channel_policies(self: Container) -> ChannelPolicyLookup:
        return ChannelPolicyLookup(self.settings.channel_policies, self.gateway, self.state)

    def bolt_app(self: Container, *, socket_mode: bool = False):
        return build_app(self.settings, state=self.state, dispatch=self.dispatch, socket_mode=socket_mode,
                         rate=self.rate_limit)

    def web_app(self: Container):
        """The web process: POST /slack/events, /healthz, /livez. Fails at start-up on bad settings."""
        s = self.settings
        self.catalogue  # noqa: B018 - an invalid action catalogue stops the start, with its reason
        self.sources  # noqa: B018 - so do invalid sources
        self.tool_connections  # noqa: B018 - and tools: their shared keys, per-person sign-in's settings
        bolt = self.bolt_app()
        routes = ()
        if self.notifications_configured:
            routes = (graph_notify_route(secret=self.notify_secret, sources=frozenset(self.sources),
                                         ask=self.request_sync, max_body_bytes=s.max_body_bytes),)
        routes = (*routes, *self.console_routes(), *self.tool_oauth_routes())
        return create_web_app(bolt, ready=lambda: web_ready(self.redis, s.key_prefix, s.queue_name, s.worker_stale_after),
                              max_body_bytes=s.max_body_bytes,
                              metrics_token=s.metrics_token.get_secret_value() if s.metrics_token else None,
                              signing_secret=s.of(SlackSettings).slack_signing_secret.get_secret_value(), routes=routes,
                              refresh_metrics=self.refresh_web_metrics, can_queue=self.redis.ping)

    def refresh_web_metrics(self: Container) -> None:
        """Gauges read when the web process is scraped: queue depth."""
        s = self.settings
        queue_depths(self.redis, (s.queue_name, s.ingest_queue))
