"""Slack I/O: Bolt listeners, Block Kit builders, the Web API gateway, the web app."""
