"""The web app's trigger-word preview and the API agree: the names in the web's shared cases file get, from the
server's rule, exactly the trigger word the preview shows (its Vitest checks the same file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from isengard.api.services.dataset.characters import trigger_slug

CASES = json.loads(
    (Path(__file__).parents[2] / "web/src/features/characters/triggerCases.json").read_text(encoding="utf-8")
)


@pytest.mark.parametrize("case", CASES, ids=[case["trigger"] or "none" for case in CASES])
def test_the_server_gives_the_previewed_trigger_word(case: dict[str, str]) -> None:
    assert trigger_slug(case["name"]) == case["trigger"]


def test_the_cases_cover_other_scripts() -> None:
    assert sum(1 for case in CASES if not case["name"].isascii() and case["trigger"]) >= 4
