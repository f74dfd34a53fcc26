"""Durable records: questions, action proposals and the audit trail.

``Store.for_url(url)`` opens the database (SQLite file or PostgreSQL) and
applies the packaged Alembic migrations; see ``chatops.store.store``.
"""

from chatops.store.store import (
    DECISION_STATES,
    EVENT_KINDS,
    QUESTION_MODES,
    STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    Proposal,
    Store,
    alembic_config,
    check_transition,
)

__all__ = [
    "DECISION_STATES",
    "EVENT_KINDS",
    "QUESTION_MODES",
    "STATES",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "Proposal",
    "Store",
    "alembic_config",
    "check_transition",
]
