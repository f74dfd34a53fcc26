"""The issue's restart_service action (a signed webhook), shared by the action tests.

The entry itself is the one the demo runs (``chatops_app.demo.actions.ACTIONS_YAML``), so the
tests and the demo cannot drift apart.
"""

from chatops_app.demo.actions import ACTIONS_YAML


def catalogue(url: str, extra: str = "", secret_env: str = "RESTART_HOOK_SECRET") -> str:
    """``actions:`` with restart_service, then ``extra`` (more items, same indentation)."""
    return ACTIONS_YAML.format(url=url, secret_env=secret_env) + extra
