"""characters.default_lora_id: the LoRA a person chose as the character's default (none: the automatic choice)

Revision ID: 0008_default_lora
Revises: 0007_jobs_edits
Create Date: 2026-12-07 08:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_default_lora"
down_revision = "0007_jobs_edits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("characters") as batch:
        batch.add_column(sa.Column("default_lora_id", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("characters") as batch:
        batch.drop_column("default_lora_id")
