"""Migrations build the schema the models describe, on SQLite and on PostgreSQL, and go down again."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from isengard.db.migrate import downgrade, upgrade
from isengard.db.models import Base, Character
from isengard.db.session import make_engine, make_sessionmaker, session_scope

EXPECTED_TABLES = {
    "characters",
    "images",
    "jobs",
    "job_events",
    "job_artifacts",
    "loras",
    "generations",
    "training_presets",
    "client_logs",
    "embeddings",
    "evaluations",
    "sample_scores",
}


def _check(url: str) -> None:
    upgrade(url)
    engine = make_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert tables >= EXPECTED_TABLES
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
        with session_scope(make_sessionmaker(engine)) as session:
            session.add(Character(name="Ada", name_key="ada", trigger_word="ada"))
        with session_scope(make_sessionmaker(engine)) as session:
            assert session.query(Character).one().created_at.tzinfo is not None
    finally:
        engine.dispose()
    downgrade(url, "base")
    engine = make_engine(url)
    try:
        assert not (EXPECTED_TABLES & set(inspect(engine).get_table_names()))
    finally:
        engine.dispose()


def test_migrations_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    _check(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


@pytest.mark.postgres
def test_migrations_on_postgres(postgres_url: str) -> None:
    _check(postgres_url)
