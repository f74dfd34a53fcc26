"""Connecting a person's own account to a tool (per-person OAuth): the Connect and Disconnect buttons."""
