"""The operator console (``/admin``, console/): its routes and what they read, signing in with
Entra where it is configured, one-time sign-in links where it is not."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatops_app.container.core import once
from connectors.identity.oidc import EntraSignIn
from connectors.microsoft.settings import EntraSettings
from console.app import ConsoleConfig, ConsoleDeps, console_alone, console_routes
from console.auth import sign_in_link

if TYPE_CHECKING:
    from chatops_app.container import Container


class ConsoleParts:
    @once
    def console_sign_in(self: Container) -> EntraSignIn | None:
        """Signing in to the console with Entra; None where Entra is not configured (then links)."""
        s = self.settings
        return EntraSignIn.from_settings(s, self._http_client) if s.of(EntraSettings).configured else None

    def console_routes(self: Container) -> tuple:
        """/admin (console/app.py) and what it reads; the store is opened on the first page view."""
        s = self.settings
        config = ConsoleConfig(base_url=s.console_url, key_prefix=s.key_prefix, session_ttl=s.admin_session_ttl,
                               privacy=s.console_privacy, admin_groups=s.admin_groups,
                               admin_secret=s.admin_secret.get_secret_value() if s.admin_secret else None,
                               queues=(s.queue_name, s.ingest_queue), worker_stale_after=s.worker_stale_after)
        return console_routes(ConsoleDeps(config=config, redis=self.redis, store=lambda: self.store,
                                          answers=lambda: self.answers, source_statuses=self.source_statuses,
                                          sign_in=self.console_sign_in))

    def console_app(self: Container):
        """The console on its own (`chatops admin serve`): /admin and /livez, no Slack."""
        return console_alone(self.console_routes())

    def console_link(self: Container, person: str, ttl: int) -> str:
        """A one-time sign-in link to the console for ``person`` (`chatops admin link --as`)."""
        s = self.settings
        return sign_in_link(self.redis, s.key_prefix, base_url=s.console_url, person=person, ttl=ttl,
                            configured_secret=s.admin_secret.get_secret_value() if s.admin_secret else None,
                            entra_signs_in=s.of(EntraSettings).configured)
