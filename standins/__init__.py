"""Loopback stand-ins for the services chatops talks to (Slack's Web API, Entra and Microsoft
Graph, SharePoint REST, Confluence and Jira Cloud, OpenAI, ServiceNow, a webhook receiver, an
OTLP collector). Each is an HTTP server on 127.0.0.1 that speaks the real protocol, paging,
throttling and error shapes included, so the real SDKs and HTTP clients talk to it unchanged.

Shipped with the package for ``make demo`` and the benchmarks; the tests use them too. They
import nothing else of ours, and no production code imports them (the import contract in
``pyproject.toml``)."""
