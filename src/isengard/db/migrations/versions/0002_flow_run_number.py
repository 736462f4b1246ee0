"""jobs.run_number: the ordinal of a training run among its character's runs (run 1, run 2, ...)

Revision ID: 0002_flow_run_number
Revises: 0001
Create Date: 2026-12-01 03:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_flow_run_number"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("run_number", sa.Integer(), nullable=True))
    # Runs made before the column existed are numbered in the order they were created, per character.
    jobs = sa.table(
        "jobs",
        sa.column("id", sa.String),
        sa.column("kind", sa.String),
        sa.column("character_id", sa.String),
        sa.column("created_at", sa.DateTime),
        sa.column("run_number", sa.Integer),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(jobs.c.id, jobs.c.character_id)
        .where(jobs.c.kind == "training")
        .order_by(jobs.c.created_at, jobs.c.id)
    ).all()
    counters: dict[str | None, int] = {}
    for job_id, character_id in rows:
        counters[character_id] = counters.get(character_id, 0) + 1
        bind.execute(sa.update(jobs).where(jobs.c.id == job_id).values(run_number=counters[character_id]))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("run_number")
