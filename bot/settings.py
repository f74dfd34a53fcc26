"""Slack's settings: the app's tokens and identity, whom it serves, and how fast it posts.

Read once per process like every plugin's (``settings.of(SlackSettings)``, chatops/settings.py).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator

from chatops.settings import PluginSettings, env


class SlackSettings(PluginSettings):
    slack_bot_token: SecretStr | None = env("SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = env("SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = env("SLACK_APP_TOKEN")
    slack_api_url: str = Field(
        default="https://slack.com/api/", validation_alias=AliasChoices("SLACK_API_URL")
    )
    # Only events and clicks for this app (``api_app_id``) and these workspaces are handled; people
    # of other workspaces (Slack Connect) are strangers. Teams default to the bot token's own.
    slack_app_id: str | None = env("SLACK_APP_ID")
    slack_team_ids_raw: str | None = Field(default=None,
                                           validation_alias=AliasChoices("SLACK_TEAM_IDS", "SLACK_TEAM_ID"))
    # Guests (Slack's is_restricted / is_ultra_restricted): "directory" resolves them like anyone
    # else, through the directory (a guest it does not know sees nothing private); "unknown"
    # treats every guest as unknown (public documents only).
    slack_guests: Literal["directory", "unknown"] = Field(
        default="directory", validation_alias=AliasChoices("CHATOPS_SLACK_GUESTS"))
    # Apps and bots in a channel read its answers: each counts as an unknown member (public documents
    # only) unless its bot id (B…) or app id (A…) is listed here, comma-separated, and it belongs to
    # our own workspaces. Another organisation's app is never trusted; chatops' own bot is left out.
    trusted_bots_raw: str | None = env("CHATOPS_TRUSTED_BOTS")

    # Slack takes about one message per second per channel, with short bursts: new messages to one
    # channel, across every worker, go out ``burst`` at once, then one per ``pace`` seconds (0: not paced).
    slack_channel_pace: float = Field(default=1.0, ge=0, validation_alias=AliasChoices("CHATOPS_SLACK_CHANNEL_PACE"))
    slack_channel_burst: int = Field(default=3, ge=1, validation_alias=AliasChoices("CHATOPS_SLACK_CHANNEL_BURST"))

    @property
    def configured(self) -> bool:
        """A bot token: chatops can post in Slack (and the worker answers there)."""
        return bool(self.slack_bot_token)

    @property
    def slack_team_ids(self) -> frozenset[str]:
        return frozenset(t.strip() for t in (self.slack_team_ids_raw or "").split(",") if t.strip())

    @property
    def trusted_bots(self) -> frozenset[str]:
        return frozenset(b.strip().upper() for b in (self.trusted_bots_raw or "").split(",") if b.strip())

    @field_validator("trusted_bots_raw")
    @classmethod
    def _slack_bot_ids(cls, raw: str | None) -> str | None:
        for item in (raw or "").split(","):
            if item.strip() and not re.fullmatch(r"[AB][A-Z0-9]{2,}", item.strip().upper()):
                raise ValueError(f"{item.strip()!r} is not a Slack bot id (B…) or app id (A…); list only "
                                 "those, comma-separated")
        return raw
