"""Settings: defaults, environment and .env, and one-line errors naming the bad setting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from isengard.config import Mode, Settings, SettingsError, load_settings


def test_defaults_are_loopback_and_sqlite_under_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.sqlalchemy_url == f"sqlite:///{tmp_path / 'data' / 'isengard.db'}"
    assert settings.embedded_redis
    # No GPU on the machines the tests run on: fast-test is the default there.
    import torch

    if not torch.cuda.is_available():
        assert settings.resolved_mode == Mode.FAST_TEST


def test_environment_and_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("ISENGARD_PORT=9123\nREDIS_URL=redis://127.0.0.1:6390/0\n")
    monkeypatch.setenv("ISENGARD_MODE", "production")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db/isengard")
    settings = load_settings()
    assert settings.port == 9123
    assert settings.redis_url == "redis://127.0.0.1:6390/0"
    assert settings.resolved_mode == Mode.PRODUCTION
    assert settings.sqlalchemy_url == "postgresql+psycopg://u:p@db/isengard"
    assert not settings.is_sqlite


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"ISENGARD_PORT": "eighty"}, "invalid setting ISENGARD_PORT"),
        ({"ISENGARD_PORT": "70000"}, "invalid setting ISENGARD_PORT"),
        ({"ISENGARD_MODE": "turbo"}, "invalid setting ISENGARD_MODE"),
        ({"DATABASE_URL": "mysql://x"}, "invalid setting DATABASE_URL"),
        ({"REDIS_URL": "http://x"}, "invalid setting REDIS_URL"),
        ({"ISENGARD_LOG_LEVEL": "LOUD"}, "invalid setting ISENGARD_LOG_LEVEL"),
        ({"ISENGARD_MAX_UPLOAD_BYTES": "-5"}, "invalid setting ISENGARD_MAX_UPLOAD_BYTES"),
        # An empty token would lock every route while the login page says none is needed.
        ({"ISENGARD_API_TOKEN": ""}, "invalid setting ISENGARD_API_TOKEN"),
        ({"ISENGARD_API_TOKEN": "  "}, "invalid setting ISENGARD_API_TOKEN"),
        # A guessable token on an address other machines reach.
        ({"ISENGARD_HOST": "0.0.0.0", "ISENGARD_API_TOKEN": "a"}, "invalid settings: ISENGARD_API_TOKEN is too short"),
    ],
)
def test_invalid_settings_name_the_setting(
    env: dict[str, str], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(expected)
    assert "\n" not in message


def test_exposed_bind_requires_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ISENGARD_HOST", "0.0.0.0")
    with pytest.raises(SettingsError, match="ISENGARD_API_TOKEN"):
        load_settings()
    monkeypatch.setenv("ISENGARD_API_TOKEN", "s3cret-token-value")
    assert load_settings().host == "0.0.0.0"
    assert Settings(_env_file=None, host="::1").host == "::1"  # type: ignore[call-arg]


def test_cli_prints_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "ISENGARD_PORT": "not-a-port", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "isengard.cli", "migrate"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "isengard: invalid setting ISENGARD_PORT: Input should be a valid integer, unable to parse string as an integer"
    )
    assert "Traceback" not in result.stderr


def test_log_lines_are_json_unless_written_to_a_terminal(tmp_path: Path) -> None:
    import io
    import logging
    import os
    import pty

    from isengard.logging import configure_logging

    piped = io.StringIO()
    configure_logging("INFO", None, stream=piped)
    logging.getLogger("isengard.test").info("hello", extra={"n": 1})
    assert json.loads(piped.getvalue())["message"] == "hello"

    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as terminal:
        configure_logging("INFO", None, stream=terminal)
        logging.getLogger("isengard.test").info("hello there")
        terminal.flush()
        written = os.read(leader, 4096).decode()
    os.close(leader)
    assert "hello there" in written and not written.lstrip().startswith("{")
    configure_logging("INFO", True)
