"""The demo's live tool, without a language model: a PagerDuty-like MCP server on loopback
(``standins/fake_mcp.py``, built with the official MCP SDK), reviewed and approved by an operator,
listed, and called as two people, one in the tool's groups and one not, through the ``chatops
tools`` commands themselves (each its own process, with the demo's settings)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from standins.fake_mcp import FakeMCP

TOKEN_ENV = "CHATOPS_DEMO_MCP_TOKEN"

TOOLS_YAML = """\
tools:
  - name: pagerduty
    kind: mcp
    title: PagerDuty
    url: {url}
    auth: {{bearer_env: {token_env}}}
    allow: [get_oncall, list_incidents]
    groups: [sre]
    results: public
"""


def start(environ, config: Path) -> FakeMCP:
    """The loopback MCP server, and the ``tools:`` entry for it added to the demo's configuration."""
    token = environ.setdefault(TOKEN_ENV, secrets.token_hex(16))
    server = FakeMCP(bearer=token).start()
    with config.open("a") as f:
        f.write(TOOLS_YAML.format(url=server.url, token_env=TOKEN_ENV))
    return server


def run(out, env: dict[str, str], failures: list[str]) -> None:
    """The operator's commands and two people's calls, each printed with what it answered."""
    def chatops(*args: str) -> subprocess.CompletedProcess:
        out.line("$ chatops " + " ".join(f"'{a}'" if " " in a or "{" in a else a for a in args))
        done = subprocess.run([sys.executable, "-m", "chatops_app.cli", *args], capture_output=True, text=True,
                              env={**os.environ, **env}, timeout=120)
        for line in (done.stdout + done.stderr).strip().splitlines():
            out.line(line, indent="    ")
        return done

    out.line("An MCP server (PagerDuty-like, on loopback) offers get_oncall, list_incidents and the "
             "destructive create_incident; CHATOPS_CONFIG allows the first two to the sre group. "
             "Nothing is offered before an operator has read and approved the definitions:")
    if chatops("tools", "approve", "pagerduty", "--by", "demo-operator").returncode != 0:
        failures.append("chatops tools approve pagerduty failed")
    listed = chatops("tools", "list")
    if "get_oncall" not in listed.stdout or "offered" not in listed.stdout:
        failures.append("chatops tools list does not show get_oncall offered")
    out.line("Ana (sre) asks who is on call for billing, through the tool:")
    ana = chatops("tools", "call", "pagerduty", "get_oncall", "--as", "ana@northwind.example",
                  "--args", '{"service": "billing"}')
    if ana.returncode == 0 and "Dana Reyes" in ana.stdout:
        out.line("✓ answered from the live system, and recorded in the audit trail", indent="    ")
    else:
        failures.append("Ana's call of pagerduty get_oncall did not answer")
        out.line("✗ Ana's call did not answer", indent="    ")
    out.line("Ben (engineering, not sre) tries the same:")
    ben = chatops("tools", "call", "pagerduty", "get_oncall", "--as", "ben@northwind.example",
                  "--args", '{"service": "billing"}')
    if ben.returncode != 0 and "may not use" in ben.stderr and "Dana" not in ben.stdout:
        out.line("✓ refused: the tool is never offered to him, and the refusal is recorded", indent="    ")
    else:
        failures.append("Ben's call of pagerduty get_oncall was not refused")
        out.line("✗ Ben's call was not refused", indent="    ")
