"""The Slack side of ``chatops doctor``: the bot token, the scopes it was granted, how Slack
reaches the app (signing secret or Socket Mode), and that the app and workspace settings name
this token's app and workspace.

One ``auth.test`` serves the first two: its response carries the granted scopes
(``x-oauth-scopes``), which are held against what the code needs (bot/scopes.py).
"""

from __future__ import annotations

import re
from typing import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.scopes import granted_scopes, missing_scopes
from chatops.checks import CheckFailed, CheckWarning, NotConfigured
from bot.settings import SlackSettings
from chatops.settings import Settings

# auth.test's errors that mean the token itself is no good (Slack's method reference)
_BAD_TOKEN = {"not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired",
              "not_allowed_token_type", "no_permission", "team_access_not_granted"}
_SIGNING_SECRET = re.compile(r"^[0-9a-f]{32}$")


class SlackChecks:
    def __init__(self, settings: Settings, make_client: Callable[[str | None, str], WebClient]):
        self.settings = settings.of(SlackSettings)
        self._make_client = make_client
        self._auth: dict | None = None
        self._refused: str | None = None

    def checks(self) -> list[tuple[str, Callable[[], str]]]:
        return [("slack bot token", self.token), ("slack scopes", self.scopes),
                ("slack requests", self.requests), ("slack app and workspace", self.app_and_workspace)]

    # -- the token ------------------------------------------------------------------------

    def _client(self) -> WebClient:
        token = self.settings.slack_bot_token
        if not token:
            raise NotConfigured("needs SLACK_BOT_TOKEN")
        return self._make_client(token.get_secret_value(), self.settings.slack_api_url)

    def _auth_test(self) -> dict:
        if self._refused:
            raise NotConfigured(f"not checked: {self._refused}")
        if self._auth is None:
            client = self._client()
            try:
                resp = client.auth_test()
            except SlackApiError as exc:
                error = (exc.response.data or {}).get("error") if exc.response is not None else None
                status = getattr(exc.response, "status_code", 0)
                if error in _BAD_TOKEN:
                    self._refused = f"Slack refused the bot token ({error})"
                    raise CheckFailed(self._refused, "copy the Bot User OAuth Token (xoxb-…) of the installed app "
                                                     "into SLACK_BOT_TOKEN") from None
                self._refused = f"auth.test failed ({error or status})"
                raise CheckFailed(self._refused, "try again; if it persists, check Slack's status page") from None
            except OSError as exc:
                self._refused = f"cannot reach Slack at {self.settings.slack_api_url} ({type(exc).__name__})"
                raise CheckFailed(self._refused, "check the network path to Slack, or SLACK_API_URL") from None
            headers = {k.lower(): v for k, v in (resp.headers or {}).items()}
            scopes = headers.get("x-oauth-scopes")
            self._auth = {**resp.data, "_scopes": scopes if isinstance(scopes, str) else None}
        return self._auth

    def token(self) -> str:
        if not self.settings.slack_bot_token:
            raise NotConfigured("SLACK_BOT_TOKEN is not set (chatops serve, socket and worker need it)")
        auth = self._auth_test()
        return (f"bot {auth.get('user_id')} (@{auth.get('user')}) in {auth.get('team')} ({auth.get('team_id')})"
                + (f", organisation {auth['enterprise_id']}" if auth.get("enterprise_id") else ""))

    def scopes(self) -> str:
        header = self._auth_test()["_scopes"]
        if header is None:
            raise CheckWarning("Slack did not say which scopes the token has (no x-oauth-scopes header)",
                               "compare the app's OAuth & Permissions page with manifest.yml")
        granted = granted_scopes(header)
        missing = missing_scopes(granted)
        if missing:
            raise CheckFailed("the bot token lacks " + "; ".join(str(m) for m in missing),
                              "add the scopes to the app (as in manifest.yml), reinstall it to the workspace and "
                              "set SLACK_BOT_TOKEN to the token it then shows")
        return f"all {len(granted)} granted; every scope the code needs is among them"

    # -- how Slack reaches the app ------------------------------------------------------------

    def requests(self) -> str:
        s = self.settings
        if not s.slack_bot_token:
            raise NotConfigured("needs SLACK_BOT_TOKEN")
        said = []
        if s.slack_signing_secret:
            secret = s.slack_signing_secret.get_secret_value()
            if not _SIGNING_SECRET.match(secret):
                raise CheckFailed("SLACK_SIGNING_SECRET does not look like a Slack signing secret (32 hex digits)",
                                  "copy the Signing Secret from the app's Basic Information page")
            said.append("signing secret set (chatops serve)")
        if s.slack_app_token:
            said.append(self._socket_mode())
        if not said:
            raise CheckFailed("neither SLACK_SIGNING_SECRET (chatops serve, over HTTP) nor SLACK_APP_TOKEN "
                              "(chatops socket, Socket Mode) is set",
                              "set the one for how Slack reaches this deployment")
        return "; ".join(said)

    def _socket_mode(self) -> str:
        token = self.settings.slack_app_token.get_secret_value()
        if not token.startswith("xapp-"):
            raise CheckFailed("SLACK_APP_TOKEN is not an app-level token (xapp-…)",
                              "make one with the connections:write scope on the app's Basic Information page")
        client = self._make_client(None, self.settings.slack_api_url)
        try:
            client.apps_connections_open(app_token=token)
        except SlackApiError as exc:
            error = (exc.response.data or {}).get("error") if exc.response is not None else None
            raise CheckFailed(f"Slack refused SLACK_APP_TOKEN for Socket Mode ({error})",
                              "turn Socket Mode on for the app and give the app-level token connections:write") \
                from None
        return "the app token opens Socket Mode connections (chatops socket)"

    # -- the app and workspace settings ----------------------------------------------------------

    def app_and_workspace(self) -> str:
        s = self.settings
        auth = self._auth_test()
        team, enterprise = auth.get("team_id"), auth.get("enterprise_id")
        if s.slack_team_ids and team not in s.slack_team_ids and enterprise not in s.slack_team_ids:
            raise CheckFailed(f"SLACK_TEAM_IDS ({', '.join(sorted(s.slack_team_ids))}) does not include the bot "
                              f"token's workspace {team}: its own people would be treated as strangers",
                              f"add {team} to SLACK_TEAM_IDS, or leave it unset (the token's own workspace)")
        client = self._client()
        try:
            app_id = ((client.bots_info(bot=auth.get("bot_id")).get("bot")) or {}).get("app_id")
        except SlackApiError as exc:
            error = (exc.response.data or {}).get("error") if exc.response is not None else None
            raise CheckFailed(f"bots.info failed ({error}): the app id cannot be compared",
                              "see the scopes check") from None
        if not s.slack_app_id:
            raise CheckWarning("SLACK_APP_ID is not set: requests are not checked against this app's id",
                               f"set SLACK_APP_ID={app_id}")
        if s.slack_app_id != app_id:
            raise CheckFailed(f"SLACK_APP_ID is {s.slack_app_id} but the bot token belongs to app {app_id}: every "
                              "request from Slack would be dropped as another app's",
                              f"set SLACK_APP_ID={app_id}, or SLACK_BOT_TOKEN to app {s.slack_app_id}'s token")
        workspaces = ", ".join(sorted(s.slack_team_ids)) if s.slack_team_ids else f"{team} (the token's own)"
        return f"app {app_id}; workspaces {workspaces}"
