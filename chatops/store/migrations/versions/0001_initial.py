"""Initial schema: questions, proposals, audit_events.

Revision ID: 0001
Revises:
Create Date: 2024-11-27
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# Frozen copies of the column types (migrations must not import the models).
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "questions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", UTC, nullable=False),
        sa.Column("correlation_id", sa.String(64), nullable=True),
        sa.Column("team", sa.String(32), nullable=True),
        sa.Column("channel", sa.String(32), nullable=True),
        sa.Column("channel_type", sa.String(16), nullable=True),
        sa.Column("asker_slack_id", sa.String(32), nullable=True),
        sa.Column("asker_email", sa.String(320), nullable=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("cited", sa.JSON(), nullable=False),
        sa.Column("audience", sa.String(200), nullable=True),
        sa.Column("hidden_documents", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
    )

    op.create_table(
        "proposals",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("arguments", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requested_by_slack", sa.String(32), nullable=True),
        sa.Column("requested_by_email", sa.String(320), nullable=True),
        sa.Column("approvers", sa.JSON(), nullable=False),
        sa.Column("allow_self_approval", sa.Boolean(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=True),
        sa.Column("thread_ts", sa.String(32), nullable=True),
        sa.Column("message_ts", sa.String(32), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.Column("decided_at", UTC, nullable=True),
        sa.Column("decided_by_slack", sa.String(32), nullable=True),
        sa.Column("decided_by_email", sa.String(320), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("correlation_id", sa.String(64), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_proposals_state", "proposals", ["state"])
    op.create_index("ix_proposals_created_at", "proposals", ["created_at"])

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", UTC, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("proposal_id", sa.String(32), nullable=True),
        sa.Column("question_id", sa.Integer(), nullable=True),
        sa.Column("actor_slack_id", sa.String(32), nullable=True),
        sa.Column("actor_email", sa.String(320), nullable=True),
        sa.Column("correlation_id", sa.String(64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_proposal_id", "audit_events", ["proposal_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_proposal_id", table_name="audit_events")
    op.drop_index("ix_audit_events_at", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index("ix_proposals_created_at", table_name="proposals")
    op.drop_index("ix_proposals_state", table_name="proposals")
    op.drop_table("proposals")
    op.drop_table("questions")
