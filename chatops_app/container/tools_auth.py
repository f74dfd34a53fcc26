"""People's own credentials for tools with per-person authorization: ``ToolConnections``
(``usecases/tool_auth.py``) and the web route their authorizations come back to."""

from __future__ import annotations

from typing import TYPE_CHECKING

import requests
from starlette.routing import Route

from bot.tool_oauth import tool_oauth_route
from chatops.store.tools import ToolRecords
from chatops.tools import load_specs
from chatops_app.container.core import once
from connectors.tools.mcp_config import per_user_targets
from connectors.tools.settings import ToolSettings
from usecases.tool_auth import ToolConnections

if TYPE_CHECKING:
    from chatops_app.container import Container


class ToolAuthParts:
    @once
    def tool_connections(self: Container) -> ToolConnections | None:
        """None when no configured tool uses each person's own account. A ``ConfigError`` (naming
        CHATOPS_TOOL_TOKEN_KEY or CHATOPS_PUBLIC_URL) when one does and they are not set."""
        s = self.settings
        specs = [spec for spec, _policy in load_specs(s.file.tools, s.group_names)]
        targets = per_user_targets(specs)
        if not targets:
            return None
        return ToolConnections(targets=targets, records=ToolRecords(self.store), redis_client=self.redis,
                               key_prefix=s.key_prefix, http=self._http_client or requests.Session(),
                               secret=s.secret, token_keys=s.of(ToolSettings).token_keys, public_url=s.public_url)

    def tool_oauth_routes(self: Container) -> tuple[Route, ...]:
        """``GET /tools/oauth/callback`` where some tool uses each person's own account; else none."""
        connections = self.tool_connections
        if connections is None:
            return ()
        s = self.settings
        labels = {spec.name: spec.label for spec, _policy in load_specs(s.file.tools, s.group_names)}
        return (tool_oauth_route(connections, labels, gateway=self.gateway),)
