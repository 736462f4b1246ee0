"""POST /api/logs stores client errors redacted, refuses unbounded input and is rate limited."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from isengard.config import Settings
from isengard.db.models import ClientLog
from tests.conftest import make_settings


def _stored(settings: Settings) -> list[ClientLog]:
    engine = create_engine(settings.sqlalchemy_url)
    try:
        with Session(engine) as session:
            return list(session.scalars(select(ClientLog).order_by(ClientLog.id)))
    finally:
        engine.dispose()


def test_client_log_is_stored_redacted(client: TestClient, settings: Settings) -> None:
    response = client.post(
        "/api/logs",
        json={
            "level": "error",
            "message": "fetch failed for alice@example.com with Bearer abcdefghijklmnopqrst",
            "url": "http://127.0.0.1:8000/dataset?character=abc&token=xyz",
            "context": {"password": "hunter2", "stack": "at x (http://h/a?key=v)", "status": 500},
            "correlation_id": "c-1",
        },
    )
    assert response.status_code == 202, response.text
    [row] = _stored(settings)
    assert row.level == "error"
    assert "alice@example.com" not in row.message and "abcdefghijklmnopqrst" not in row.message
    assert row.url == "http://127.0.0.1:8000/dataset?character=[redacted]&token=[redacted]"
    assert row.context == {"password": "[redacted]", "stack": "at x (http://h/a?key=[redacted])", "status": 500}
    assert row.correlation_id == "c-1"
    assert response.json()["id"] == row.id


def test_oversized_or_malformed_entries_are_refused_with_a_message(client: TestClient, settings: Settings) -> None:
    too_long = client.post("/api/logs", json={"message": "x" * 5000})
    assert too_long.status_code == 422
    assert "message" in too_long.json()["message"]
    huge_context = client.post("/api/logs", json={"message": "m", "context": {"blob": "y" * 9000}})
    assert huge_context.status_code == 422
    unknown_level = client.post("/api/logs", json={"message": "m", "level": "fatal"})
    assert unknown_level.status_code == 422
    extra_field = client.post("/api/logs", json={"message": "m", "cookie": "x"})
    assert extra_field.status_code == 422
    assert _stored(settings) == []


def test_logs_are_rate_limited(tmp_path, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    from isengard.api.app import create_app
    from isengard.db.migrate import upgrade

    settings = make_settings(tmp_path, redis_url=redis_url, rate_limit_logs=3)
    upgrade(settings.sqlalchemy_url)
    with TestClient(create_app(settings)) as limited:
        codes = [limited.post("/api/logs", json={"message": f"m{i}"}).status_code for i in range(5)]
    assert codes == [202, 202, 202, 429, 429]
    assert len(_stored(settings)) == 3


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("aws key AKIAIOSFODNN7EXAMPLE in config", "AKIAIOSFODNN7EXAMPLE"),
        ("temporary ASIAY34FZKBOKMUTVV7A key", "ASIAY34FZKBOKMUTVV7A"),
        ("queue at redis://:hunter2secret@db:6379/0", "hunter2secret"),
        ("slack xoxb-123456789012-abcdefghijkl failed", "xoxb-123456789012-abcdefghijkl"),
        ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
        ("maps AIzaSyA-1234567890abcdefghijklmnopqrstu", "AIzaSyA-1234567890abcdefghijklmnopqrstu"),
        ("at /home/adalovelace/projects/app.js:12", "adalovelace"),
        ("at /Users/adalovelace/app.js", "adalovelace"),
        ("C:\\Users\\adalovelace\\app.js", "adalovelace"),
        ("call me at +1 415-555-0132", "415-555-0132"),
        ("phone (415) 555 0132", "555 0132"),
        ("github ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8 leaked", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"),
        ("//registry.npmjs.org/:_authToken=npm_" + "abcdefghijklmnopqrstuvwxyz0123456789", "klmnopqrstuvwxyz0123"),
        ("sendgrid SG." + "abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "abcdefghijklmno"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7x\n-----END RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEA7x"),
        ("anthropic sk-ant-api03-abcdefghijklmnopqrstuvwx in env", "abcdefghijklmnopqrstuvwx"),
        ("hub hf_abcdefghijklmnopqrstuvwxyz in env", "hf_abcdefghijklmnopqrstuvwxyz"),
        ("db postgresql://isengard:pa55word@db/isengard", "pa55word"),
    ],
)
def test_secret_shapes_are_redacted(text: str, secret: str) -> None:
    from isengard.api.redaction import redact_text

    assert secret not in redact_text(text)


def test_secret_shapes_come_from_the_maintained_set() -> None:
    """Shapes the project has no pattern of its own for are found through detect-secrets' plugins."""
    from detect_secrets.plugins.slack import SlackDetector

    from isengard.api.redaction import _maintained_patterns

    patterns = _maintained_patterns()
    assert all(regex in patterns for regex in SlackDetector().denylist)
    # A key longer than the plugin's pattern is redacted whole, not just the part the pattern spans.
    from isengard.api.redaction import redact_text

    key = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc" + "TAILPART0123456789"
    out = redact_text(f"stripe {key} end")
    assert "TAILPART" not in out and out == "stripe [redacted] end"


def test_redaction_keeps_ordinary_numbers() -> None:
    from isengard.api.redaction import redact_text

    text = "step 1200 of 3000 at 12:30:45 in v1.2.3 on 2026-12-07, job 0123456789abcdef"
    assert redact_text(text) == text
