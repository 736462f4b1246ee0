"""Property-based fuzzing of the whole API from its own OpenAPI schema: no 5xx, and every response conforms.

Schemathesis generates valid and invalid requests for every operation the schema lists and checks each answer:
no server error, a documented status code and content type, a body that matches the documented model. The
operations are read from the app's schema when the tests are collected, so new routes are fuzzed without
touching this file. SSE streams never end on their own and are excluded here (their own tests cover them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig

from isengard.api.app import create_app
from isengard.db.migrate import upgrade
from tests.conftest import make_settings

TOKEN = "fuzzing-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES_PER_MODE = {"sqlite": 20, "postgresql": 6}  # modest on PostgreSQL: it repeats every operation there

# Every operation is fuzzed on SQLite and on PostgreSQL (which refuses NUL and over-long text SQLite stores).
pytestmark = pytest.mark.databases

# A schema-valid request may still be refused for what its values mean: an opaque cursor that is not one we
# issued (400), a name already taken (409), an unknown id (404), a plugin that cannot run here or a referenced
# character that does not exist (422 with one sentence). The token is always sent (AUTH): generating the declared
# security parameters would only make "invalid" credentials that AUTH then replaces; the auth tests cover them.
FUZZ_CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {"expected-statuses": ["2XX", "400", "401", "403", "404", "409", "422"]}
        },
        "generation": {"with-security-parameters": False},
    }
)


def _is_stream(path: str, operation: dict[str, Any]) -> bool:
    for response in (operation.get("responses") or {}).values():
        if "text/event-stream" in (response.get("content") or {}):
            return True
    return path.endswith(("/events", "/stream"))


def _operation_labels() -> list[str]:
    # Building the app is side-effect free (services are made in the lifespan): enough to read its schema.
    schema = create_app(make_settings(Path("/nonexistent-isengard-data"), redis_url="redis://127.0.0.1:1")).openapi()
    labels = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method.upper() in {"GET", "POST", "PUT", "PATCH", "DELETE"} and not _is_stream(path, operation):
                labels.append(f"{method.upper()} {path}")
    return labels


@pytest.fixture()
def fuzz_app(data_dir: Path, redis_url: str) -> Iterator[FastAPI]:
    app_settings = make_settings(
        data_dir,
        redis_url=redis_url,
        api_token=TOKEN,
        # Fuzzing sends hundreds of requests a minute: limits are tested elsewhere and would only add 429s here.
        rate_limit_generation=1_000_000,
        rate_limit_training=1_000_000,
        rate_limit_uploads=1_000_000,
        rate_limit_logs=1_000_000,
        rate_limit_login=1_000_000,
        rate_limit_auth_failures=1_000_000,
        min_free_bytes=0,
    )
    upgrade(app_settings.sqlalchemy_url)
    app = create_app(app_settings)
    # Entering the client runs the lifespan, which builds the services the routes need.
    with TestClient(app):
        yield app


@pytest.mark.parametrize("label", _operation_labels())
def test_operation_conforms_to_its_schema(label: str, fuzz_app: FastAPI, database: str) -> None:
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", fuzz_app, headers=AUTH, config=FUZZ_CONFIG)
    operation = schema.find_operation_by_label(label)
    assert operation is not None, label
    strategy = st.one_of(
        operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(schemathesis.GenerationMode.NEGATIVE),
    )

    @given(case=strategy)
    @settings(
        max_examples=2 * EXAMPLES_PER_MODE[database],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any) -> None:
        case.call_and_validate(headers=AUTH)

    fuzz()
