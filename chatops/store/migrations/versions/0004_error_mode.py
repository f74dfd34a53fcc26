"""A source's last error remembers the kind of pass that recorded it (content or permissions).

A complete permission pass clears only an error a permission pass recorded: a content sync
stopped by a configured project the site does not show stays in ``sources status`` until a
content sync gets through, instead of disappearing every fifteen minutes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("source_state") as batch:
        batch.add_column(sa.Column("last_error_pass", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("source_state") as batch:
        batch.drop_column("last_error_pass")
