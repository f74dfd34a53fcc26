"""A source item remembers its failed tries: a file that fails twice is skipped, not retried forever.

``tries`` counts the tries at reading ``tried_version`` that did not succeed (the one under way
included: it is written before the file is read, so a worker killed while reading it counts it).
The first failure leaves the file to the next sync, the second skips it with its reason; a new
version of the file starts afresh.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("source_items") as batch:
        batch.add_column(sa.Column("tries", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("tried_version", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("source_items") as batch:
        batch.drop_column("tried_version")
        batch.drop_column("tries")
