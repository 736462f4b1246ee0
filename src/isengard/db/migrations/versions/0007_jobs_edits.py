"""images.edit: a dataset photo's non-destructive edit (rotation, crop) over the kept original

Revision ID: 0007_jobs_edits
Revises: 0004_evaluation
Create Date: 2026-12-07 07:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_jobs_edits"
down_revision = "0004_evaluation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("edit", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))


def downgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.drop_column("edit")
