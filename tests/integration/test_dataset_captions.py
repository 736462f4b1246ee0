"""Captions: edit one, bulk edits (find/replace, prepend the trigger, fill missing), and the trainer's contract."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from isengard.captions.trigger import substitute_trigger
from isengard.config import Settings
from isengard.dataset.image_files import original_path
from isengard.db.models import Character, Image
from isengard.storage import DataTree
from tests.image_samples import encode, photo


def _dataset(client: TestClient, count: int = 3) -> tuple[str, list[str]]:
    character_id = client.post("/api/characters", json={"name": "Sam", "trigger_word": "smwise"}).json()["id"]
    response = client.post(
        f"/api/characters/{character_id}/images",
        files=[("files", (f"{i}.jpg", encode(photo(30 + i, (256, 320))), "image/jpeg")) for i in range(count)],
    )
    assert response.status_code == 201
    return character_id, [r["image"]["id"] for r in response.json()["results"]]


def _captions(client: TestClient, ids: list[str]) -> list[str]:
    return [client.get(f"/api/images/{image_id}").json()["caption"] for image_id in ids]


def test_edit_one_caption(client: TestClient) -> None:
    _character, ids = _dataset(client, 1)
    response = client.patch(f"/api/images/{ids[0]}", json={"caption": "  [trigger]  holding a   pan "})
    assert response.status_code == 200 and response.json()["caption"] == "[trigger] holding a pan"
    assert client.patch(f"/api/images/{ids[0]}", json={"caption": "x" * 4001}).status_code == 422
    assert client.patch(f"/api/images/{ids[0]}", json={"text": "x"}).status_code == 422
    assert client.patch("/api/images/" + "f" * 32, json={"caption": "x"}).status_code == 404


def test_bulk_caption_edits(client: TestClient) -> None:
    character_id, ids = _dataset(client)
    url = f"/api/characters/{character_id}/captions/bulk"
    client.patch(f"/api/images/{ids[0]}", json={"caption": "a man in a garden"})
    client.patch(f"/api/images/{ids[1]}", json={"caption": "smwise cooking"})

    filled = client.post(url, json={"action": "set_missing", "caption": "a portrait"})
    assert filled.json() == {"updated": 1, "image_ids": [ids[2]]}
    assert _captions(client, ids) == ["a man in a garden", "smwise cooking", "a portrait"]

    prepended = client.post(url, json={"action": "prepend_trigger"})
    assert prepended.json()["updated"] == 2  # the caption that names the trigger word already is left alone
    assert _captions(client, ids) == ["[trigger], a man in a garden", "smwise cooking", "[trigger], a portrait"]

    replaced = client.post(
        url, json={"action": "find_replace", "find": "SMWISE", "replace": "[trigger]", "case_sensitive": False}
    )
    assert replaced.json()["image_ids"] == [ids[1]]
    only_first = client.post(
        url, json={"action": "find_replace", "find": "a ", "replace": "one ", "image_ids": [ids[0]]}
    )
    assert only_first.json()["updated"] == 1
    assert _captions(client, ids) == ["[trigger], one man in one garden", "[trigger] cooking", "[trigger], a portrait"]

    assert client.post(url, json={"action": "find_replace", "find": ""}).status_code == 422
    assert client.post(url, json={"action": "shout"}).status_code == 422
    assert client.post(url, json={"action": "prepend_trigger", "image_ids": ["x"] * 2}).status_code == 422


def test_trainer_contract_path_and_substituted_caption(client: TestClient, settings: Settings) -> None:
    character_id, ids = _dataset(client, 1)
    client.patch(f"/api/images/{ids[0]}", json={"caption": "[trigger] smiling"})
    data = DataTree(settings.data_path)
    with Session(create_engine(settings.sqlalchemy_url)) as db:
        character = db.get_one(Character, character_id)
        image = db.scalars(select(Image)).one()
        path = data.uploads(character_id) / image.filename
        assert path == original_path(data, image) and path.is_file()
        assert substitute_trigger(image.caption, character.trigger_word) == "smwise smiling"
