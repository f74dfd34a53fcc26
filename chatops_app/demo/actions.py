"""The demo's action part: a proposal, a refused approval, an approval that runs once.

A small HTTP receiver on 127.0.0.1 stands in for the operations team's restart
hook; it checks the HMAC signature of what it receives. The proposal is made
the way the model would make it (validated against the catalogue), and the
decisions go through the same service the Slack buttons use.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from usecases.people import by_email
from usecases.proposals import Decided, Invalid, Refused

SECRET_ENV = "CHATOPS_DEMO_HOOK_SECRET"

# The demo's groups by readable name. With Entra the values are the groups' object ids (a group's
# display name can be chosen by anyone who creates a group); the demo's directory file lists the
# same names, which resolve through this table on both sides.
GROUPS_YAML = """\
groups:
  engineering: 3f6d2c1e-8a4b-4c7d-9e21-5b0a7c3d1e01
  sre: 7f0c2a4e-3c1d-4b8e-9a51-0d2f6c7b8e91
  hr: 0b7e5d1c-2f4a-4e6b-8c3d-9a1f2e3d4c5b
  finance: c2d4e6f8-1a3b-4c5d-8e7f-9a0b1c2d3e4f
"""

ACTIONS_YAML = """\
actions:
  - name: restart_service
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


class Receiver:
    """The stand-in restart hook: records each request and whether its signature is valid."""

    def __init__(self, secret: str):
        self.secret = secret.encode()
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def setup(self):
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle stall

            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                expected = "sha256=" + hmac.new(receiver.secret, body, hashlib.sha256).hexdigest()
                signed = hmac.compare_digest(self.headers.get("X-Chatops-Signature", ""), expected)
                receiver.received.append({"body": json.loads(body or b"{}"), "signed": signed,
                                          "key": self.headers.get("Idempotency-Key")})
                self.send_response(202 if signed else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):  # keep the demo's terminal clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/restart"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def prepare(data_dir: Path, environ) -> tuple[Receiver, Path]:
    """Start the receiver and write the configuration the demo's settings will point at (group
    aliases and the catalogue), and ``groups.yml`` with the aliases alone, for asking the demo
    index afterwards (the receiver is gone then)."""
    secret = environ.setdefault(SECRET_ENV, secrets.token_hex(16))
    receiver = Receiver(secret)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "groups.yml").write_text(GROUPS_YAML)
    config = data_dir / "config.yml"
    config.write_text(GROUPS_YAML + ACTIONS_YAML.format(url=receiver.url, secret_env=SECRET_ENV))
    return receiver, config


def run(out, container, receiver: Receiver, failures: list[str]) -> None:
    service = container.proposals

    def person(email: str):
        return by_email(container.identity, email)

    ben, ana = person("ben@northwind.example"), person("ana@northwind.example")
    out.line("Ben (engineering) asks the bot to restart billing in staging; the model proposes "
             "restart_service. Approvers: the sre group; self-approval is off.")
    outcome = service.propose("restart_service", '{"service": "billing", "env": "staging"}', ben,
                              channel=None, thread_ts=None, correlation_id=None)
    if isinstance(outcome, Invalid):
        failures.append(f"the demo proposal was refused: {outcome.message()}")
        out.line(f"✗ {outcome.message()}", indent="    ")
        return
    p = outcome.proposal
    out.line(f"Proposal {p.id[:8]}: restart_service {json.dumps(p.arguments)} — {p.state}, "
             f"approvers: {container.catalogue.describe(outcome.policy)}", indent="    ")

    out.line("Ben clicks Approve:")
    refused = service.decide(p.id, "approve", ben, via="demo")
    if isinstance(refused, Refused) and not receiver.received:
        out.line(f"✓ refused: {refused.message} Nothing ran.", indent="    ")
    else:
        failures.append("Ben's approval was not refused")
        out.line("✗ Ben's approval was not refused", indent="    ")

    out.line("Ana (sre) clicks Approve:")
    decided = service.decide(p.id, "approve", ana, via="demo")
    final = decided.executed if isinstance(decided, Decided) else None
    if final is not None and final.state == "succeeded" and len(receiver.received) == 1 \
            and receiver.received[0]["signed"]:
        got = receiver.received[0]
        out.line(f"✓ {final.state}: {final.result.get('summary')}", indent="    ")
        out.line(f"the hook received {json.dumps(got['body']['arguments'])} requested by "
                 f"{got['body']['requested_by']}, approved by {got['body']['approved_by']}, "
                 f"signature valid, Idempotency-Key {got['key'][:8]}…", indent="    ")
    else:
        failures.append("Ana's approval did not run the action exactly once")
        out.line("✗ the approved action did not run exactly once", indent="    ")

    out.line("Ana clicks Approve again:")
    again = service.decide(p.id, "approve", ana, via="demo")
    message = again.message if isinstance(again, Refused) else "accepted"
    out.line(f"{'✓' if len(receiver.received) == 1 else '✗'} {message} The hook was called "
             f"{len(receiver.received)} time(s) in all.", indent="    ")

    out.line("Audit trail for this proposal:")
    for event in container.store.events(p.id):
        who = event.get("actor_email") or "-"
        out.line(f"{event['at']:%H:%M:%S}  {event['kind']:16s} {who}", indent="    ")
