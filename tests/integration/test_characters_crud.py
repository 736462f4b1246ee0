"""Characters: create, list with counts and cover, get, update, the case-insensitive name rule, delete."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from isengard.config import Settings
from isengard.db.models import Image, Job, Lora
from tests.image_samples import encode, photo

pytestmark = pytest.mark.databases


def _create(client: TestClient, **body: object) -> dict[str, object]:
    response = client.post("/api/characters", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, object] = response.json()
    return data


def test_create_defaults_trigger_word_to_a_slug_of_the_name(client: TestClient) -> None:
    created = _create(client, name="  Zoë Kim-Park ", description="a test subject")
    assert created["name"] == "Zoë Kim-Park"
    assert created["trigger_word"] == "zoe_kim_park"
    assert created["description"] == "a test subject"
    assert created["image_count"] == 0 and created["lora_count"] == 0 and created["cover_url"] is None
    assert client.get(f"/api/characters/{created['id']}").json() == created


def test_a_name_in_another_script_gets_a_transliterated_trigger_word(client: TestClient) -> None:
    created = client.post("/api/characters", json={"name": "李雷"})
    assert created.status_code == 201, created.text
    assert created.json()["trigger_word"] == "lilei"
    refused = client.post("/api/characters", json={"name": "!!!"})
    assert refused.status_code == 422
    assert "no letters a-z" in refused.json()["detail"] and "trigger_word" in refused.json()["detail"]
    chosen = client.post("/api/characters", json={"name": "さくら", "trigger_word": "skr"})
    assert chosen.status_code == 201 and chosen.json()["trigger_word"] == "skr"


def test_names_are_unique_ignoring_case(client: TestClient) -> None:
    _create(client, name="Aragorn")
    response = client.post("/api/characters", json={"name": "ARAGORN"})
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"] and "ignoring case" in response.json()["detail"]
    other = _create(client, name="Legolas")
    renamed = client.patch(f"/api/characters/{other['id']}", json={"name": "aragorn"})
    assert renamed.status_code == 409
    # Changing only the case of one's own name is not a conflict.
    same = client.patch(f"/api/characters/{other['id']}", json={"name": "LEGOLAS"})
    assert same.status_code == 200 and same.json()["name"] == "LEGOLAS"


def test_request_bounds_are_enforced(client: TestClient) -> None:
    assert client.post("/api/characters", json={"name": ""}).status_code == 422
    assert client.post("/api/characters", json={"name": "x" * 101}).status_code == 422
    assert client.post("/api/characters", json={"name": "a", "trigger_word": "[trigger]"}).status_code == 422
    assert client.post("/api/characters", json={"name": "a", "unknown": 1}).status_code == 422
    assert client.get("/api/characters/not-an-id").status_code == 422
    assert client.get("/api/characters/" + "0" * 32).status_code == 404


def test_update_and_list_with_counts_and_cover(client: TestClient, settings: Settings) -> None:
    first = _create(client, name="Gimli", trigger_word="gml")
    second = _create(client, name="Boromir")
    upload = client.post(
        f"/api/characters/{first['id']}/images",
        files=[
            ("files", ("a.jpg", encode(photo(1)), "image/jpeg")),
            ("files", ("b.jpg", encode(photo(2)), "image/jpeg")),
        ],
    )
    assert upload.status_code == 201, upload.text
    newest = upload.json()["results"][1]["image"]["id"]
    with Session(create_engine(settings.sqlalchemy_url)) as db:
        db.add(Lora(character_id=first["id"], name="v1", path="loras/x.safetensors"))
        db.commit()

    updated = client.patch(f"/api/characters/{first['id']}", json={"trigger_word": "gimli_tok", "description": "dwarf"})
    assert updated.status_code == 200
    assert updated.json()["trigger_word"] == "gimli_tok" and updated.json()["description"] == "dwarf"

    listed = {c["name"]: c for c in client.get("/api/characters").json()}
    assert [name for name in listed] == ["Boromir", "Gimli"]
    assert listed["Gimli"]["image_count"] == 2 and listed["Gimli"]["lora_count"] == 1
    assert listed["Gimli"]["cover_url"] == f"/api/images/{newest}/thumbnail"
    assert listed["Boromir"]["image_count"] == 0 and listed["Boromir"]["id"] == second["id"]


def test_delete_removes_its_rows_and_folders_and_nothing_else(client: TestClient, settings: Settings) -> None:
    doomed = _create(client, name="Saruman")
    kept = _create(client, name="Gandalf")
    for character, seed in ((doomed, 1), (kept, 2)):
        response = client.post(
            f"/api/characters/{character['id']}/images",
            files=[("files", ("p.png", encode(photo(seed), "PNG"), "image/png"))],
        )
        assert response.status_code == 201
    data = settings.data_path
    for folder in ("loras", "outputs"):
        for character in (doomed, kept):
            (data / folder / str(character["id"])).mkdir(parents=True, exist_ok=True)
            (data / folder / str(character["id"]) / "file.bin").write_bytes(b"x")
    with Session(create_engine(settings.sqlalchemy_url)) as db:
        db.add(Job(kind="training", status="succeeded", plugin="flux-lora", character_id=doomed["id"]))
        db.commit()

    assert client.delete(f"/api/characters/{doomed['id']}").status_code == 204
    assert client.get(f"/api/characters/{doomed['id']}").status_code == 404
    for folder in ("uploads", "thumbnails", "loras", "outputs"):
        assert not (data / folder / str(doomed["id"])).exists()
        assert any((data / folder / str(kept["id"])).iterdir())
    with Session(create_engine(settings.sqlalchemy_url)) as db:
        assert {i.character_id for i in db.scalars(select(Image))} == {kept["id"]}
        finished = db.scalars(select(Job)).one()
        assert finished.character_id is None  # the job's history stays, detached
    assert client.delete(f"/api/characters/{doomed['id']}").status_code == 404


def test_delete_with_a_running_or_queued_job_is_refused(client: TestClient, settings: Settings) -> None:
    busy = _create(client, name="Frodo")
    for status in ("running", "queued"):
        with Session(create_engine(settings.sqlalchemy_url)) as db:
            job = Job(kind="training", status=status, plugin="flux-lora", character_id=busy["id"])
            db.add(job)
            db.commit()
            job_id = job.id
        response = client.delete(f"/api/characters/{busy['id']}")
        assert response.status_code == 409
        assert "queued or running" in response.json()["detail"]
        assert client.get(f"/api/characters/{busy['id']}").status_code == 200
        assert (Path(settings.data_path) / "uploads").exists()
        with Session(create_engine(settings.sqlalchemy_url)) as db:
            db.get_one(Job, job_id).status = "failed"
            db.commit()
    assert client.delete(f"/api/characters/{busy['id']}").status_code == 204
