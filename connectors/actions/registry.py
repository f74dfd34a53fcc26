"""Connector kinds by name, and building one from an action's catalogue settings."""

from __future__ import annotations

from connectors.actions.base import ActionConnector, ConnectorConfigError, ConnectorDeps
from connectors.actions.entra_group import EntraGroupConnector
from connectors.actions.jira import JiraConnector
from connectors.actions.servicenow import ServiceNowConnector
from connectors.actions.webhook import WebhookConnector

CONNECTORS = {
    WebhookConnector.kind: WebhookConnector,
    JiraConnector.kind: JiraConnector,
    ServiceNowConnector.kind: ServiceNowConnector,
    EntraGroupConnector.kind: EntraGroupConnector,
}


def build_connector(kind: str, settings: dict, deps: ConnectorDeps) -> ActionConnector:
    """A connector of ``kind`` from its settings. Raises ConnectorConfigError naming the bad key."""
    cls = CONNECTORS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ConnectorConfigError("kind", f"unknown connector kind {kind!r} (known: {', '.join(sorted(CONNECTORS))})")
    return cls.from_settings(settings, deps)


def connector_builder(deps: ConnectorDeps):
    """``build(kind, settings)`` for ``Catalogue.load``, with these dependencies."""
    return lambda kind, settings: build_connector(kind, settings, deps)
