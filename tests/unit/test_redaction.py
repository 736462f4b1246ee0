"""Server-side redaction of client logs: secrets, query values and e-mail addresses never reach the database."""

from __future__ import annotations

import pytest

from isengard.api.redaction import EMAIL_REDACTED, REDACTED, redact_text, redact_value


@pytest.mark.parametrize(
    ("raw", "secret"),
    [
        ("Authorization: Bearer abcdefghijklmnop123", "abcdefghijklmnop123"),
        ("failed with token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_part-xyz", "eyJhbGciOiJIUzI1NiJ9"),
        ("key sk-abcdefghijklmnopqrstuvwx leaked", "sk-abcdefghijklmnopqrstuvwx"),
        ("hf_abcdefghijklmnopqrstu in the env", "hf_abcdefghijklmnopqrstu"),
        ('body {"password": "hunter2", "name": "ok"}', "hunter2"),
        ("login password=hunter2&user=bob", "hunter2"),
        ("api_key: 12345secret", "12345secret"),
        ("GET http://alice:s3cret@example.com/x", "s3cret"),
        ("contact bob.smith+x@example.co.uk now", "bob.smith+x@example.co.uk"),
    ],
)
def test_secrets_are_removed(raw: str, secret: str) -> None:
    out = redact_text(raw)
    assert secret not in out
    assert REDACTED in out or EMAIL_REDACTED in out


def test_every_query_value_is_removed_but_keys_and_path_stay() -> None:
    out = redact_text("GET /api/images?character_id=abc123&cursor=zzz#top failed")
    assert out == f"GET /api/images?character_id={REDACTED}&cursor={REDACTED}#top failed"


def test_harmless_text_is_unchanged() -> None:
    text = "TypeError: cannot read properties of undefined (reading 'step') at LossChart.tsx:42"
    assert redact_text(text) == text
    job_id = "0f" * 16
    assert redact_text(f"job {job_id} failed") == f"job {job_id} failed"


def test_nested_values_and_sensitive_keys() -> None:
    value = {
        "stack": "at fetch (http://127.0.0.1:8000/api/x?token=abc)",
        "headers": {"Authorization": "Bearer qwertyuiopasdfgh", "accept": "json"},
        "user": ["someone@example.org", 3, None],
        "sessionToken": "opaque",
    }
    out = redact_value(value)
    assert out["stack"] == f"at fetch (http://127.0.0.1:8000/api/x?token={REDACTED})"
    assert out["headers"] == {"Authorization": REDACTED, "accept": "json"}
    assert out["user"] == [EMAIL_REDACTED, 3, None]
    assert out["sessionToken"] == REDACTED


def test_deep_nesting_is_cut() -> None:
    value: dict[str, object] = {}
    cursor = value
    for _ in range(20):
        nxt: dict[str, object] = {}
        cursor["a"] = nxt
        cursor = nxt
    out = redact_value(value)
    assert REDACTED in repr(out)
