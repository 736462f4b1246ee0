"""Names that look the same are the same name: NFC, invisible and bidi characters dropped, control characters
refused, uniqueness checked after that; names in any script get a default trigger word."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.databases


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Zo\u00eb", "Zoe\u0308"),  # composed vs decomposed ë
        ("Aragorn", "Ara\u200bgorn"),  # a zero-width space
        ("Arwen", "\u202eArwen"),  # a bidi override
        ("Éowyn", "\ufeffÉowyn\u200d"),  # BOM, zero-width joiner
    ],
    ids=["nfc-nfd", "zero-width", "bidi-override", "bom-joiner"],
)
def test_names_that_look_identical_are_one_name(client: TestClient, first: str, second: str) -> None:
    created = client.post("/api/characters", json={"name": first})
    assert created.status_code == 201, created.text
    duplicate = client.post("/api/characters", json={"name": second})
    assert duplicate.status_code == 409, duplicate.text
    assert len(client.get("/api/characters").json()) == 1


def test_invisible_characters_are_dropped_from_the_stored_name(client: TestClient) -> None:
    created = client.post("/api/characters", json={"name": "Fro\u200bdo\u202e"})
    assert created.status_code == 201
    assert created.json()["name"] == "Frodo"
    decomposed = client.post("/api/characters", json={"name": "Zoe\u0308"})
    assert decomposed.json()["name"] == "Zo\u00eb"


@pytest.mark.parametrize("name", ["Sam\nwise", "Sam\twise", "Sam\x1b[31mwise", "\x7fSam"])
def test_control_characters_are_refused(client: TestClient, name: str) -> None:
    response = client.post("/api/characters", json={"name": name})
    assert response.status_code == 422, response.text
    assert "control characters" in response.text


@pytest.mark.parametrize(
    ("name", "trigger"), [("李雷", "lilei"), ("さくら", "sakura"), ("Ёжик", "ezhik"), ("محمد", "mhmd")]
)
def test_names_in_other_scripts_get_a_transliterated_trigger_word(client: TestClient, name: str, trigger: str) -> None:
    created = client.post("/api/characters", json={"name": name})
    assert created.status_code == 201, created.text
    assert created.json()["trigger_word"] == trigger
    assert created.json()["name"] == name
