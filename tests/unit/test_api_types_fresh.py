"""The web client's API types are generated from web/openapi.json; that file must match the live schema."""

from __future__ import annotations

import json
from pathlib import Path

from isengard.api.openapi_export import openapi_schema

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "web" / "openapi.json"
GENERATED_TYPES = ROOT / "web" / "src" / "api" / "schema.d.ts"


def test_committed_openapi_matches_the_app() -> None:
    live = json.loads(json.dumps(openapi_schema(), sort_keys=True))
    committed = json.loads(COMMITTED.read_text())
    assert committed == live, (
        "web/openapi.json is stale: run `make api-types` (exports the schema and regenerates web/src/api/schema.d.ts)"
    )


def test_generated_types_cover_every_path() -> None:
    # schema.d.ts is made by openapi-typescript from the JSON above; a path missing there means it was not rerun.
    types = GENERATED_TYPES.read_text()
    missing = [path for path in json.loads(COMMITTED.read_text())["paths"] if f'"{path}"' not in types]
    assert not missing, f"web/src/api/schema.d.ts lacks {missing}: run `make api-types`"
