"""The Slack side of the work the workers do: one handler per task kind.

Each is built (by the composition root) with exactly what it needs and has
``handle(payload)`` and ``failed(payload, reference, detail)``; the task runner
(``workers.celery_app``) calls them under the task's lease.
"""
