"""Answers measured and judged: per-answer facts on ``questions``, feedback, escalations.

``questions`` gains the answer's public id (what Slack buttons carry), its route (the model),
stage timings, retrieval and citation counts, token usage and cost, the answer text, what was
retrieved, who the audience was, and the escalation's state. ``feedback`` holds one vote per
person per answer (the last click). The mode "none" is called "no-evidence" from now on.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from typing import Any, Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

UTC = sa.DateTime(timezone=True)

def _columns() -> tuple[sa.Column[Any], ...]:
    """Fresh Column objects each time (a Column belongs to one table once added)."""
    return (
        sa.Column("answer_id", sa.String(32), nullable=True),
        sa.Column("thread_ts", sa.String(32), nullable=True),
        sa.Column("route", sa.String(100), nullable=True),
        sa.Column("stages", sa.JSON(), nullable=True),
        sa.Column("top_similarity", sa.Float(), nullable=True),
        sa.Column("sources_count", sa.Integer(), nullable=True),
        sa.Column("citations_kept", sa.Integer(), nullable=True),
        sa.Column("citations_dropped", sa.Integer(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("retrieved", sa.JSON(), nullable=True),
        sa.Column("audience_members", sa.JSON(), nullable=True),
        sa.Column("escalated_at", UTC, nullable=True),
        sa.Column("escalated_by", sa.String(32), nullable=True),
        sa.Column("escalation_ts", sa.String(32), nullable=True),
        sa.Column("resolved_at", UTC, nullable=True),
        sa.Column("resolved_by", sa.String(32), nullable=True),
    )


def upgrade() -> None:
    with op.batch_alter_table("questions") as batch:
        for column in _columns():
            batch.add_column(column)
    op.create_index("ix_questions_answer_id", "questions", ["answer_id"], unique=True)
    op.create_index("ix_questions_at", "questions", ["at"])
    op.execute("UPDATE questions SET mode = 'no-evidence' WHERE mode = 'none'")
    op.create_table(
        "feedback",
        sa.Column("answer_id", sa.String(32), primary_key=True),
        sa.Column("voter", sa.String(32), primary_key=True),          # Slack user id
        sa.Column("vote", sa.String(16), nullable=False),             # helpful | not_helpful
        sa.Column("reason", sa.Text(), nullable=True),
        # False: the voter was not in the answer's audience; the vote counts, nothing else is kept
        sa.Column("in_audience", sa.Boolean(), nullable=False),
        sa.Column("at", UTC, nullable=False),
    )
    op.create_index("ix_feedback_at", "feedback", ["at"])


def downgrade() -> None:
    op.drop_index("ix_feedback_at", "feedback")
    op.drop_table("feedback")
    op.execute("UPDATE questions SET mode = 'none' WHERE mode = 'no-evidence'")
    op.drop_index("ix_questions_at", "questions")
    op.drop_index("ix_questions_answer_id", "questions")
    with op.batch_alter_table("questions") as batch:
        for column in reversed(_columns()):
            batch.drop_column(column.name)
