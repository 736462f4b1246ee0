"""Evaluation: cached image embeddings, each job's evaluation setup, and every sample's scores

Revision ID: 0004_evaluation
Revises: 0003_bases
Create Date: 2026-12-07 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_evaluation"
down_revision = "0003_bases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "embeddings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("evaluator", sa.String(100), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(20), nullable=False),
        sa.Column("vector", sa.JSON(), nullable=True),
        sa.Column("faces", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_embeddings_evaluator_sha", "embeddings", ["evaluator", "sha256"], unique=True)
    op.create_table(
        "evaluations",
        sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("identity_evaluator", sa.String(100), nullable=True),
        sa.Column("text_evaluator", sa.String(100), nullable=True),
        sa.Column("choice", sa.Text(), nullable=False),
        sa.Column("unavailable", sa.Text(), nullable=True),
        sa.Column("references", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "sample_scores",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("artifact_id", sa.String(32), nullable=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(20), nullable=False),
        sa.Column("identity", sa.Float(), nullable=True),
        sa.Column("adherence", sa.Float(), nullable=True),
        sa.Column("copying", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_sample_scores_job_step", "sample_scores", ["job_id", "step"])
    op.create_index("ix_sample_scores_artifact", "sample_scores", ["job_id", "artifact_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_sample_scores_artifact", table_name="sample_scores")
    op.drop_index("ix_sample_scores_job_step", table_name="sample_scores")
    op.drop_table("sample_scores")
    op.drop_table("evaluations")
    op.drop_index("ix_embeddings_evaluator_sha", table_name="embeddings")
    op.drop_table("embeddings")
