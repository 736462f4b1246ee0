"""Bases: the base model of each run, LoRA and preset (jobs.base, loras.base, training_presets.base)

Revision ID: 0003_bases
Revises: 0002_flow_run_number
Create Date: 2026-12-07 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_bases"
down_revision = "0002_flow_run_number"
branch_labels = None
depends_on = None

# Everything made before bases existed was made on FLUX.1 [dev], the only base there was.
EARLIER_BASE = "flux1-dev"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("base", sa.String(40), nullable=True))
    with op.batch_alter_table("loras") as batch:
        batch.add_column(sa.Column("base", sa.String(40), nullable=False, server_default=EARLIER_BASE))
        batch.create_index("ix_loras_base", ["base"])
    with op.batch_alter_table("training_presets") as batch:
        batch.add_column(sa.Column("base", sa.String(40), nullable=False, server_default=EARLIER_BASE))
    jobs = sa.table("jobs", sa.column("kind", sa.String), sa.column("base", sa.String))
    op.get_bind().execute(sa.update(jobs).where(jobs.c.kind.in_(("training", "generation"))).values(base=EARLIER_BASE))


def downgrade() -> None:
    with op.batch_alter_table("training_presets") as batch:
        batch.drop_column("base")
    with op.batch_alter_table("loras") as batch:
        batch.drop_index("ix_loras_base")
        batch.drop_column("base")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("base")
