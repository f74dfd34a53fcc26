"""The issue's restart_service action (a signed webhook), shared by the action tests."""


def restart_service(url: str, secret_env: str = "RESTART_HOOK_SECRET") -> str:
    """One catalogue entry, indented as an item of ``actions:``."""
    return f"""  - name: restart_service
    kind: webhook
    description: Restart one service in one environment.
    url: {url}
    secret_env: {secret_env}
    parameters:
      type: object
      properties:
        service: {{type: string, enum: [billing, search]}}
        env: {{type: string, enum: [staging, production]}}
      required: [service, env]
      additionalProperties: false
    approvers: {{groups: [sre]}}
    allow_self_approval: false
    expires_after: 3600
"""


def catalogue(url: str, extra: str = "", secret_env: str = "RESTART_HOOK_SECRET") -> str:
    """``actions:`` with restart_service, then ``extra`` (more items, same indentation)."""
    return "actions:\n" + restart_service(url, secret_env) + extra
