"""The dataset identity check through the API, with the real face model on real photographs: one person's augmented
photos plus one photo of someone else gets exactly that photo flagged; no face, several faces and near-copies are
findings too, each with its image."""

from __future__ import annotations

import io

from fastapi.testclient import TestClient
from PIL import Image

from tests.image_samples import photo
from tests.portraits import astronaut, augmentations, grace_hopper, side_by_side


def jpeg(image: Image.Image, quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def upload(client: TestClient, name: str, photos: dict[str, bytes]) -> tuple[str, dict[str, str]]:
    character = client.post("/api/characters", json={"name": name, "trigger_word": "zxq"}).json()["id"]
    files = [("files", (f"{stem}.jpg", data, "image/jpeg")) for stem, data in photos.items()]
    response = client.post(f"/api/characters/{character}/images", files=files)
    assert response.status_code == 201, response.text
    ids = {r["image"]["original_name"].removesuffix(".jpg"): r["image"]["id"] for r in response.json()["results"]}
    return character, ids


def test_one_photo_of_someone_else_among_one_persons_photos_is_exactly_the_one_flagged(client: TestClient) -> None:
    photos = {name: jpeg(image) for name, image in augmentations(astronaut()).items()}
    photos["original"] = jpeg(astronaut())
    photos["stranger"] = jpeg(grace_hopper())
    character, ids = upload(client, "Eileen", photos)
    report = client.get(f"/api/characters/{character}/dataset/identity").json()
    assert report["status"] == "available" and report["evaluator"] == "face"
    assert report["faces_compared"] == len(photos)
    strangers = [f for f in report["findings"] if f["kind"] == "someone_else"]
    assert [f["image"]["id"] for f in strangers] == [ids["stranger"]]
    # Nothing else is said of the stranger; of the others, at most that a light change is a near-copy of a photo.
    assert {f["kind"] for f in report["findings"] if f["image"]["id"] != ids["stranger"]} <= {"near_copy"}
    finding = strangers[0]
    assert finding["distance"] > report["same_person_distance"]
    assert finding["image"]["thumbnail_url"]
    # One click excludes it (the image is removed from the dataset); the check is then clean.
    assert client.delete(f"/api/images/{ids['stranger']}").status_code == 204
    after = client.get(f"/api/characters/{character}/dataset/identity").json()["findings"]
    assert not [f for f in after if f["kind"] == "someone_else"]


def test_no_face_several_faces_and_near_copies_are_findings(client: TestClient) -> None:
    photos = {
        "a": jpeg(astronaut()),
        "a-again": jpeg(astronaut(), quality=80),  # the same photo saved again
        "a-flip": jpeg(augmentations(astronaut())["flip"]),
        "landscape": jpeg(photo(3, (320, 320))),
        "pair": jpeg(side_by_side(astronaut(), grace_hopper())),
    }
    character, ids = upload(client, "Mixed", photos)
    report = client.get(f"/api/characters/{character}/dataset/identity").json()
    kinds = {(f["kind"], f["image"]["id"]) for f in report["findings"]}
    assert ("no_face", ids["landscape"]) in kinds
    assert ("several_faces", ids["pair"]) in kinds
    copies = [f for f in report["findings"] if f["kind"] == "near_copy"]
    assert [(f["image"]["id"], f["other_image"]["id"]) for f in copies] == [(ids["a-again"], ids["a"])]


def test_the_check_of_an_empty_or_unknown_character(client: TestClient) -> None:
    character = client.post("/api/characters", json={"name": "Empty", "trigger_word": "zxq"}).json()["id"]
    report = client.get(f"/api/characters/{character}/dataset/identity").json()
    assert report["status"] == "not_available" and report["reason"] == "no images yet"
    assert client.get("/api/characters/nope/dataset/identity").status_code in (404, 422)
