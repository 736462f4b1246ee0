"""The PostgreSQL URL as the README and deploy/compose.yaml write it (`postgresql://user:password@host/db`, no driver
named) works: the driver it needs is installed, and `isengard migrate` runs with it."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import isengard
from isengard.config import Settings
from isengard.db.session import make_engine

REPO = Path(__file__).resolve().parents[2]


def _documented_urls() -> list[str]:
    compose = (REPO / "deploy" / "compose.yaml").read_text()
    readme = (REPO / "README.md").read_text()
    found = re.findall(r"DATABASE_URL[:=]\s*(postgresql://\S+)", compose + "\n" + readme)
    assert found, "the README and compose.yaml document a postgresql:// URL"
    return found


def test_the_documented_url_form_needs_only_installed_drivers() -> None:
    for documented in _documented_urls():
        url = re.sub(r"\$\{[^}]*\}|<[^>]*>", "secret", documented).rstrip("\\")
        settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
        # Creating the engine imports its driver (no connection is made): a missing driver fails here.
        engine = make_engine(settings.sqlalchemy_url)
        driver = engine.dialect.driver
        engine.dispose()
        # ... and a fresh install has it: it is one of the package's own dependencies, not only a dev tool's.
        dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
        assert any(re.match(rf"{driver}\b", dependency) for dependency in dependencies), driver


def test_migrate_runs_with_the_documented_url(postgres_url: str, tmp_path: Path) -> None:
    assert postgres_url.startswith("postgresql://"), "the test server's URL in the documented form"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(Path(isengard.__file__).resolve().parents[1]),
        "DATABASE_URL": postgres_url,
        "ISENGARD_DATA_DIR": str(tmp_path / "data"),
        "ISENGARD_MODE": "fast-test",
    }
    done = subprocess.run(
        [sys.executable, "-m", "isengard.cli", "migrate"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "database is up to date" in done.stdout
