"""Feedback on answers and escalations: 👍 / 👎, the "what was wrong" form, Needs a human and
Resolved (``listener``), recorded and posted by a worker (``handler``); their Block Kit
(``blocks``); the ``feedback`` task (``task``). Escalation is one of feedback's operations: the
same task, handler and records."""
