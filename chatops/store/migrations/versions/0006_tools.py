"""Live tools: the operators' pins of tool definitions, every tool call, people's sealed credentials.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tool_pins",
        sa.Column("tool", sa.String(64), primary_key=True),
        sa.Column("function", sa.String(128), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("approved_by", sa.String(320), nullable=True),
        sa.Column("approved_at", _AT, nullable=False),
    )
    op.create_table(
        "tool_calls",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", _AT, nullable=False),
        sa.Column("correlation_id", sa.String(64), nullable=True),
        sa.Column("answer_id", sa.String(32), nullable=True),
        sa.Column("person_email", sa.String(320), nullable=True),
        sa.Column("person_slack_id", sa.String(32), nullable=True),
        sa.Column("tool", sa.String(64), nullable=False),
        sa.Column("function", sa.String(128), nullable=False),
        sa.Column("arguments", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.Column("result_chars", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
    )
    op.create_index("ix_tool_calls_at", "tool_calls", ["at"])
    op.create_index("ix_tool_calls_answer_id", "tool_calls", ["answer_id"])
    op.create_index("ix_tool_calls_correlation_id", "tool_calls", ["correlation_id"])
    op.create_table(
        "tool_tokens",
        sa.Column("tool", sa.String(64), primary_key=True),
        sa.Column("person_id", sa.String(320), primary_key=True),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("expires_at", _AT, nullable=True),
        sa.Column("updated_at", _AT, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tool_tokens")
    op.drop_index("ix_tool_calls_correlation_id", "tool_calls")
    op.drop_index("ix_tool_calls_answer_id", "tool_calls")
    op.drop_index("ix_tool_calls_at", "tool_calls")
    op.drop_table("tool_calls")
    op.drop_table("tool_pins")
