"""Document sources: sync state, scopes (cursors), items, and the members of sources' own groups.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "source_state",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("source_id", sa.String(500), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("last_incremental_at", UTC, nullable=True),
        sa.Column("last_full_at", UTC, nullable=True),
        sa.Column("acl_watermark", UTC, nullable=True),
        sa.Column("changes_started_at", UTC, nullable=True),
        sa.Column("full_started_at", UTC, nullable=True),
        sa.Column("perm_started_at", UTC, nullable=True),
        sa.Column("perm_marker", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", UTC, nullable=True),
        sa.Column("throttled_until", UTC, nullable=True),
        sa.Column("findings", sa.Text, nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", UTC, nullable=True),
    )
    op.create_table(
        "source_scopes",
        sa.Column("source", sa.String(100), primary_key=True),
        sa.Column("scope", sa.String(200), primary_key=True),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("run_cursor", sa.Text(), nullable=True),
        sa.Column("run_mode", sa.String(16), nullable=True),
        sa.Column("run_id", sa.String(32), nullable=True),
    )
    op.create_table(
        "source_items",
        sa.Column("source", sa.String(100), primary_key=True),
        sa.Column("doc_id", sa.String(500), primary_key=True),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("parent", sa.String(500), nullable=True),
        sa.Column("folder", sa.Boolean(), nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("acl", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("pending", sa.String(16), nullable=True),
        sa.Column("seen_run", sa.String(32), nullable=True),
        sa.Column("acl_read_at", UTC, nullable=True),
    )
    op.create_index("ix_source_items_scope", "source_items", ["source", "scope"])
    op.create_index("ix_source_items_parent", "source_items", ["source", "parent"])
    op.create_index("ix_source_items_pending", "source_items", ["source", "pending"])
    op.create_table(
        "source_group_members",
        sa.Column("source", sa.String(100), primary_key=True),
        sa.Column("token", sa.String(300), primary_key=True),
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("member", sa.String(320), primary_key=True),
    )
    op.create_index("ix_source_group_members_member", "source_group_members", ["member"])


def downgrade() -> None:
    op.drop_index("ix_source_group_members_member", table_name="source_group_members")
    op.drop_table("source_group_members")
    op.drop_index("ix_source_items_pending", table_name="source_items")
    op.drop_index("ix_source_items_parent", table_name="source_items")
    op.drop_index("ix_source_items_scope", table_name="source_items")
    op.drop_table("source_items")
    op.drop_table("source_scopes")
    op.drop_table("source_state")
