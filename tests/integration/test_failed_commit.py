"""A write the database refuses is answered 500, never 2xx, and leaves nothing of itself behind.

The refusal is the database's own: a trigger installed for the test raises on the table the route writes. On
PostgreSQL it is a deferred constraint trigger, so the refusal comes from COMMIT itself, after every statement of
the request succeeded: a route whose commit ran after its response started would have answered 2xx here. SQLite
has no deferred triggers; there the refusal comes from the statement the commit flushes. An upload answers with
each file's result, so a file the server failed to store is named in the 500's body; no file of it stays on disk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from isengard.config import Settings
from isengard.db.session import make_engine
from tests.support.training_setup import png

pytestmark = pytest.mark.databases

POSTGRES_REFUSE = """
CREATE OR REPLACE FUNCTION refuse_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'refused by the test'; END $$
"""


def refuse(engine: Engine, table: str, operation: str) -> None:
    """From now on the database refuses `operation` (INSERT, UPDATE or DELETE) on `table`."""
    name = f"refuse_{operation.lower()}_{table}"
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql(POSTGRES_REFUSE)
            connection.exec_driver_sql(
                f"CREATE CONSTRAINT TRIGGER {name} AFTER {operation} ON {table} "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_write()"
            )
        else:
            connection.exec_driver_sql(
                f"CREATE TRIGGER {name} BEFORE {operation} ON {table} BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )


Write = Callable[[TestClient], tuple[str, str, dict[str, Any]]]
Check = Callable[[TestClient], object]


def _preset(client: TestClient) -> str:
    body = {"name": "kept", "plugin": "flux-lora", "config": {"steps": 10}}
    return str(client.post("/api/training/presets", json=body).json()["id"])


def _character(client: TestClient) -> str:
    return str(client.post("/api/characters", json={"name": "Ada"}).json()["id"])


# (table, operation): how to set up and send the write, and what the API shows afterwards (must not change).
CASES: dict[str, tuple[str, str, Write, Check]] = {
    "client log": (
        "client_logs", "INSERT",
        lambda c: ("POST", "/api/logs", {"json": {"message": "boom"}}),
        lambda c: None,  # no read route: the table is checked directly below
    ),
    "new character": (
        "characters", "INSERT",
        lambda c: ("POST", "/api/characters", {"json": {"name": "Cy"}}),
        lambda c: sorted(row["name"] for row in c.get("/api/characters").json()),
    ),
    "renamed character": (
        "characters", "UPDATE",
        lambda c: ("PATCH", f"/api/characters/{_character(c)}", {"json": {"description": "tall"}}),
        lambda c: [row["description"] for row in c.get("/api/characters").json()],
    ),
    "uploaded image": (
        "images", "INSERT",
        lambda c: ("POST", f"/api/characters/{_character(c)}/images", {"files": [("files", ("a.png", png(3)))]}),
        lambda c: c.get("/api/images").json()["items"],
    ),
    "deleted preset": (
        "training_presets", "DELETE",
        lambda c: ("DELETE", f"/api/training/presets/{_preset(c)}", {}),
        lambda c: [row["name"] for row in c.get("/api/training/presets").json()],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_refused_commit_is_a_500_and_changes_nothing(client: TestClient, settings: Settings, case: str) -> None:
    table, operation, write, check = CASES[case]
    method, url, options = write(client)  # any setup the write needs happens before the database refuses
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with engine.connect() as connection:
            rows_before = connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()
        shown_before = check(client)
        refuse(engine, table, operation)

        response = client.request(method, url, **options)

        assert response.status_code == 500, f"{method} {url} answered {response.status_code}: {response.text}"
        body = response.json()
        if "results" in body:  # an upload: each file says what became of it
            assert [r["status"] for r in body["results"]] == ["rejected"] and body["failed"] == 1
            stored = [p for folder in ("uploads", "thumbnails") for p in (settings.data_path / folder).rglob("*")]
            assert not [p for p in stored if p.is_file()], "the refused image left files behind"
        else:
            assert body["correlation_id"] == response.headers["x-correlation-id"]
        with engine.connect() as connection:
            assert connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one() == rows_before
        assert check(client) == shown_before
    finally:
        engine.dispose()
