"""SQLAlchemy 2 models. The database is the source of truth; Redis only carries work and live events.

Ids are 32-character hex strings made by the server. Timestamps are timezone-aware UTC.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from isengard.domain import utcnow


def new_id() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware UTC datetimes; SQLite drops the zone, so it is put back on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            from datetime import UTC

            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime}


class Character(Base):
    __tablename__ = "characters"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    # Lower-cased name: uniqueness is case-insensitive on every database.
    name_key: Mapped[str] = mapped_column(String(200), unique=True)
    trigger_word: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    # The LoRA the person chose as the character's default; None: the automatic choice (api/services/loras/default.py).
    # No foreign key (loras already point here): a chosen LoRA that is gone falls back to the automatic choice.
    default_lora_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Image(Base):
    __tablename__ = "images"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    character_id: Mapped[str] = mapped_column(ForeignKey("characters.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(100))  # server-made, under uploads/{character_id}/
    original_name: Mapped[str] = mapped_column(String(255), default="")
    format: Mapped[str] = mapped_column(String(10), default="")
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    phash: Mapped[str] = mapped_column(String(32), default="")
    blur_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    caption: Mapped[str] = mapped_column(Text, default="")
    # Quality flags as a comma-wrapped string (",small,blurry,") so a LIKE filter can use it on any database.
    flags: Mapped[str] = mapped_column(String(200), default="")
    near_duplicate_of: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # A non-destructive edit ({"rotate", "crop", "original_width", "original_height"}; empty: none): the stored file
    # is the edited photo, the original is kept beside it (see dataset.image_files) and undo restores it.
    edit: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_images_character_sha", "character_id", "sha256", unique=True),
        Index("ix_images_created", "created_at", "id"),
        Index("ix_images_character_created", "character_id", "created_at", "id"),
    )


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    plugin: Mapped[str] = mapped_column(String(100))
    character_id: Mapped[str | None] = mapped_column(ForeignKey("characters.id", ondelete="SET NULL"), nullable=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # Training runs are numbered per character (run 1, run 2, ...): the names and file names people tell apart.
    run_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The base model a training run trains on or a generation generates with (models/bases); None for other kinds.
    base: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # The plugin's validated config and the full input snapshot the plugin runs from.
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    worker_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    stream_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    correlation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_kind_created", "kind", "created_at"),
        Index("ix_jobs_character", "character_id"),
    )


class JobEventRecord(Base):
    """Persisted events (progress with loss, logs, samples, status) so a finished job's page needs no Redis."""

    __tablename__ = "job_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(20))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_job_events_job_type", "job_id", "type", "id"),)


class JobArtifact(Base):
    __tablename__ = "job_artifacts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    path: Mapped[str] = mapped_column(String(500))  # relative to the data dir
    name: Mapped[str] = mapped_column(String(255))
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_job_artifacts_job", "job_id", "kind"),)


class Lora(Base):
    __tablename__ = "loras"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    character_id: Mapped[str | None] = mapped_column(ForeignKey("characters.id", ondelete="CASCADE"), nullable=True)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(String(500))  # relative to the data dir
    source: Mapped[str] = mapped_column(String(20), default="trained")  # trained | checkpoint | imported
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rank: Mapped[int | None] = mapped_column(Integer, nullable=True)
    alpha: Mapped[float | None] = mapped_column(Float, nullable=True)
    base_model: Mapped[str] = mapped_column(String(200), default="")
    # The registry base it works with (models/bases), or "unknown" for an imported file that cannot tell.
    base: Mapped[str] = mapped_column(String(40), default="flux1-dev", server_default="flux1-dev")
    trigger_word: Mapped[str | None] = mapped_column(String(100), nullable=True)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_loras_character", "character_id", "created_at"),
        Index("ix_loras_job", "job_id"),
        Index("ix_loras_base", "base"),
    )


class Generation(Base):
    __tablename__ = "generations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True)
    character_id: Mapped[str | None] = mapped_column(ForeignKey("characters.id", ondelete="CASCADE"), nullable=True)
    path: Mapped[str] = mapped_column(String(500))
    thumbnail_path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    prompt: Mapped[str] = mapped_column(Text)
    seed: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    steps: Mapped[int] = mapped_column(Integer)
    guidance: Mapped[float] = mapped_column(Float)
    plugin: Mapped[str] = mapped_column(String(100))
    loras: Mapped[list[Any]] = mapped_column(default=list)  # [{lora_id, name, weight}]
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_generations_created", "created_at", "id"),
        Index("ix_generations_character", "character_id", "created_at"),
        # A worker finds a job's gallery rows by job and path (a retried attempt updates them, see records_generation).
        Index("ix_generations_job", "job_id"),
    )


class TrainingPreset(Base):
    __tablename__ = "training_presets"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    plugin: Mapped[str] = mapped_column(String(100))
    base: Mapped[str] = mapped_column(String(40), default="flux1-dev", server_default="flux1-dev")
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ClientLog(Base):
    """Errors reported by the web client, stored after redaction."""

    __tablename__ = "client_logs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    level: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(Text, default="")
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    correlation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Embedding(Base):
    """An image's embedding by one evaluator, keyed by the image's sha256: a character's references are embedded
    once, and a changed dataset (new photos, a photo replaced) simply has other keys."""

    __tablename__ = "embeddings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    evaluator: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(20))  # ok | no_face | several_faces | unreadable
    vector: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    faces: Mapped[list[Any]] = mapped_column(default=list)  # [[left, top, right, bottom], ...]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_embeddings_evaluator_sha", "evaluator", "sha256", unique=True),)


class Evaluation(Base):
    """How a job's samples are scored: the evaluators chosen, why, and why scores are not available if they are
    not."""

    __tablename__ = "evaluations"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    identity_evaluator: Mapped[str | None] = mapped_column(String(100), nullable=True)
    text_evaluator: Mapped[str | None] = mapped_column(String(100), nullable=True)
    choice: Mapped[str] = mapped_column(Text, default="")  # why this identity evaluator, in words
    unavailable: Mapped[str | None] = mapped_column(Text, nullable=True)  # why there are no identity scores
    references: Mapped[int] = mapped_column(Integer, default=0)  # usable reference images
    skipped: Mapped[int] = mapped_column(Integer, default=0)  # references that could not be decoded
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SampleScoreRecord(Base):
    """One sample's scores; a NULL score was not available (the subject or the evaluation says why)."""

    __tablename__ = "sample_scores"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    artifact_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    step: Mapped[int] = mapped_column(Integer)
    index: Mapped[int] = mapped_column(Integer, default=0)
    prompt: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(String(20))
    identity: Mapped[float | None] = mapped_column(Float, nullable=True)
    adherence: Mapped[float | None] = mapped_column(Float, nullable=True)
    copying: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_sample_scores_job_step", "job_id", "step"),
        Index("ix_sample_scores_artifact", "job_id", "artifact_id", unique=True),
    )
