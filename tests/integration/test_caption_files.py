"""Each character's upload folder is a trainer-ready dataset: every image with a caption has a same-named .txt."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from isengard.config import Settings
from isengard.db.models import Image
from tests.image_samples import encode, make_zip, photo


def _folder_matches_database(settings: Settings, character_id: str) -> dict[str, str]:
    """Assert the folder holds exactly the originals plus one .txt per captioned image; return {image id: text}."""
    with Session(create_engine(settings.sqlalchemy_url)) as db:
        rows = list(db.scalars(select(Image).where(Image.character_id == character_id)))
    folder = settings.data_path / "uploads" / character_id
    on_disk = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    expected = sorted(
        [row.filename for row in rows] + [f"{Path(row.filename).stem}.txt" for row in rows if row.caption]
    )
    assert on_disk == expected
    return {row.id: (folder / f"{row.id}.txt").read_text(encoding="utf-8") for row in rows if row.caption}


def test_captions_are_mirrored_beside_the_images_through_every_edit(client: TestClient, settings: Settings) -> None:
    character_id = client.post("/api/characters", json={"name": "Frodo", "trigger_word": "frd"}).json()["id"]
    archive = make_zip({"set/ring.png": encode(photo(41), "PNG"), "set/ring.txt": b"[trigger] holding a ring\n"})
    response = client.post(
        f"/api/characters/{character_id}/images",
        files=[
            ("files", ("dataset.zip", archive, "application/zip")),
            ("files", ("shire.jpg", encode(photo(42)), "image/jpeg")),
            ("files", ("shire.txt", "[trigger] in the Shire, smiling ✓".encode(), "text/plain")),
            ("files", ("plain.jpg", encode(photo(43)), "image/jpeg")),
        ],
    )
    assert response.status_code == 201, response.text
    ids = {r["name"]: r["image"]["id"] for r in response.json()["results"]}
    ring, shire, plain = ids["dataset.zip/set/ring.png"], ids["shire.jpg"], ids["plain.jpg"]
    assert _folder_matches_database(settings, character_id) == {
        ring: "[trigger] holding a ring",
        shire: "[trigger] in the Shire, smiling ✓",
    }

    # One caption edited, one cleared (its file goes: no caption means no .txt to a trainer).
    assert client.patch(f"/api/images/{plain}", json={"caption": "  a  hobbit  "}).status_code == 200
    assert client.patch(f"/api/images/{ring}", json={"caption": ""}).status_code == 200
    assert _folder_matches_database(settings, character_id) == {
        shire: "[trigger] in the Shire, smiling ✓",
        plain: "a hobbit",
    }

    # Bulk edits rewrite the files of the images they change, and only those.
    url = f"/api/characters/{character_id}/captions/bulk"
    assert client.post(url, json={"action": "set_missing", "caption": "a ring"}).json()["image_ids"] == [ring]
    assert client.post(url, json={"action": "prepend_trigger"}).json()["updated"] == 2
    assert _folder_matches_database(settings, character_id) == {
        ring: "[trigger], a ring",
        shire: "[trigger] in the Shire, smiling ✓",
        plain: "[trigger], a hobbit",
    }

    # Deleting an image takes its caption file along; no temporary files are left anywhere.
    assert client.delete(f"/api/images/{shire}").status_code == 204
    assert set(_folder_matches_database(settings, character_id)) == {ring, plain}
    assert not list(settings.data_path.rglob("*.part*"))

    # Deleting the character removes the whole folder.
    assert client.delete(f"/api/characters/{character_id}").status_code == 204
    assert not (settings.data_path / "uploads" / character_id).exists()


def test_a_duplicate_s_caption_follows_the_kept_image_or_the_person_is_told(
    client: TestClient, settings: Settings
) -> None:
    character = client.post("/api/characters", json={"name": "Twin Caption", "trigger_word": "twcx"}).json()["id"]
    same = encode(photo(77), "JPEG")
    files = [
        ("files", ("copy_of_photo_01.jpg", same, "image/jpeg")),
        ("files", ("photo_01.jpg", same, "image/jpeg")),
        ("files", ("photo_01.txt", b"[trigger] reading on a train", "text/plain")),
    ]
    response = client.post(f"/api/characters/{character}/images", files=files)
    assert response.status_code == 201, response.text
    results = {r["name"]: r for r in response.json()["results"]}
    kept = results["copy_of_photo_01.jpg"]["image"]["id"]
    assert results["photo_01.jpg"]["status"] == "duplicate"
    # The caption that came with the duplicate now belongs to the image that was kept, database and .txt alike.
    assert client.get(f"/api/images/{kept}").json()["caption"] == "[trigger] reading on a train"
    assert _folder_matches_database(settings, character)[kept] == "[trigger] reading on a train"
    assert (
        "caption" in results["photo_01.jpg"]["reason"] and "copy_of_photo_01.jpg" in results["photo_01.jpg"]["reason"]
    )

    # When the kept image has a caption of its own, it keeps it, and the upload says the duplicate's was not used.
    again = client.post(
        f"/api/characters/{character}/images",
        files=[
            ("files", ("photo_01.jpg", same, "image/jpeg")),
            ("files", ("photo_01.txt", b"other words", "text/plain")),
        ],
    )
    (result,) = [r for r in again.json()["results"] if r["name"] == "photo_01.jpg"]
    assert result["status"] == "duplicate" and "caption was not used" in result["reason"]
    assert client.get(f"/api/images/{kept}").json()["caption"] == "[trigger] reading on a train"
