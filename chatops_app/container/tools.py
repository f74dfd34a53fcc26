"""Live tools: the ``tools:`` of CHATOPS_CONFIG built into a ``Toolbox`` (``usecases/tools.py``),
each kind found in ``connectors.tools.registry``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import requests

from chatops.store.tools import ToolRecords
from chatops.tools import load_specs
from connectors.tools.base import ToolDeps
from chatops_app.container.core import once
from usecases.tools import ConfiguredTool, Toolbox

if TYPE_CHECKING:
    from chatops_app.container import Container


class ToolParts:
    @once
    def tool_records(self: Container) -> ToolRecords:
        return ToolRecords(self.store)

    @once
    def toolbox(self: Container) -> Toolbox:
        """Every configured tool (none: an empty toolbox, and no tool is ever offered)."""
        # The kinds (the MCP SDK among them) are imported here, where they are built: the web
        # process never builds the toolbox (imports measured in ARCHITECTURE.md).
        from connectors.tools.registry import KINDS, build_tool

        s = self.settings
        specs = load_specs(s.file.tools, s.group_names, known_kinds=lambda: KINDS)
        deps = ToolDeps(http=self._http_client or requests.Session(), secret=s.secret,
                        open_source=self.open_sync_source, source_id=lambda name: self.source_ids[name][1],
                        tokens=self.tool_connections if specs else None)
        tools = []
        for spec, policy in specs:
            kind = build_tool(spec, deps)
            tools.append(ConfiguredTool(spec, policy, kind, per_person=bool(getattr(kind, "per_person", False))))
        return Toolbox(tools, self.tool_records if tools else None, timeout=s.tool_timeout,
                       max_chars=s.tool_max_result_chars, listing_ttl=s.tool_listing_ttl)
