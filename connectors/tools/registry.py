"""Tool kinds by name, and building one from a ``tools:`` entry."""

from __future__ import annotations

from typing import Protocol

from chatops.errors import ConfigError
from chatops.settings import PluginSettings
from chatops.tools import ToolSpec
from connectors.tools.base import ToolConfigError, ToolDeps, ToolKind
from connectors.tools.jira_search import JiraSearchTool
from connectors.tools.mcp import McpTool
from connectors.tools.prometheus import PrometheusTool
from connectors.tools.settings import ToolSettings

class KindClass(Protocol):
    """What a registry entry is: a kind's class, built from a ``tools:`` entry."""

    kind: str

    def from_config(self, spec: ToolSpec, deps: ToolDeps) -> ToolKind: ...


KINDS: dict[str, KindClass] = {
    PrometheusTool.kind: PrometheusTool,
    JiraSearchTool.kind: JiraSearchTool,
    McpTool.kind: McpTool,
}

SETTINGS: tuple[type[PluginSettings], ...] = (ToolSettings,)   # the registry's own: the token sealing key


def build_tool(spec: ToolSpec, deps: ToolDeps) -> ToolKind:
    """A configured tool of its kind. Raises ``ConfigError`` naming the tool and the bad key."""
    cls = KINDS.get(spec.kind)
    if cls is None:
        raise ConfigError(f"tool {spec.name!r}: kind: unknown tool kind {spec.kind!r} "
                          f"(known: {', '.join(sorted(KINDS))})")
    try:
        tool: ToolKind = cls.from_config(spec, deps)
    except ToolConfigError as exc:
        raise ConfigError(f"tool {spec.name!r}: {exc}") from None
    return tool
