"""Fixtures shared by the integration tests beyond those in tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from isengard.config import Settings
from tests.integration.queue_support import JobStore


@pytest.fixture()
def web_dist(tmp_path: Path) -> Path:
    """A minimal built web bundle (index.html and one asset) for tests of what the app serves besides the API."""
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>Isengard</title>")
    (dist / "assets" / "app.js").write_text("console.log('isengard')")
    return dist


@pytest.fixture()
def store(settings: Settings) -> Iterator[JobStore]:
    """Submits jobs and reads them back on the test's settings (each module picks the settings it needs)."""
    job_store = JobStore(settings)
    yield job_store
    job_store.close()
