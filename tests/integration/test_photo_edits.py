"""Dataset photos edited in place: rotate, crop, crop to the face, undo. The original is kept; the edit is what the
grid, the thumbnails and the trainer see; undo restores the upload byte for byte."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session

from isengard.db.models import Job
from isengard.domain import TrainingInput
from isengard.plugins.training.flux_lora_data import read_dataset
from tests.image_samples import encode, jpeg_with_orientation, photo
from tests.portraits import astronaut


def _upload(client: TestClient, name: str, data: bytes) -> dict[str, Any]:
    character = client.post("/api/characters", json={"name": f"Edit {name}", "trigger_word": "edtx"}).json()
    answer = client.post(
        f"/api/characters/{character['id']}/images", files=[("files", (name, data, "application/octet-stream"))]
    )
    assert answer.status_code == 201, answer.text
    image: dict[str, Any] = answer.json()["results"][0]["image"]
    return image


def _pixels(client: TestClient, url: str) -> np.ndarray:
    answer = client.get(url)
    assert answer.status_code == 200
    return np.asarray(Image.open(io.BytesIO(answer.content)).convert("RGB"))


def _image_files(data_dir: Path, image: dict[str, Any]) -> list[str]:
    """The image files a trainer reading the character's upload folder would see (not the captions)."""
    folder = data_dir / "uploads" / image["character_id"]
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix != ".txt")


def test_rotate_crop_and_undo(client: TestClient, data_dir: Path) -> None:
    # Seen upright: 600 wide, 400 high, a red marker top-left (the phone stored it sideways, EXIF orientation 6).
    upright = photo(21, (600, 400))
    upright.paste((255, 0, 0), (0, 0, 60, 60))
    image = _upload(client, "sideways.jpg", jpeg_with_orientation(upright.rotate(90, expand=True), 6))
    assert (image["width"], image["height"]) == (600, 400) and image["edit"] is None
    original_bytes = client.get(image["url"]).content

    turned = client.put(f"/api/images/{image['id']}/edit", json={"rotate": 90})
    assert turned.status_code == 200, turned.text
    edited = turned.json()
    assert (edited["width"], edited["height"]) == (400, 600)
    assert edited["edit"]["rotate"] == 90 and edited["url"] != image["url"]
    red = _pixels(client, edited["url"])[..., 0]
    assert red[5, 395] > 200 and red[5, 5] < 200  # turned clockwise: the marker is top-right
    thumb = Image.open(io.BytesIO(client.get(edited["thumbnail_url"]).content))
    assert thumb.height > thumb.width
    # The grid lists the edit; the original waits outside the folder trainers read.
    listed = client.get("/api/images", params={"character_id": image["character_id"]}).json()["items"]
    assert listed[0]["url"] == edited["url"]
    assert client.get(f"/api/characters/{image['character_id']}").json()["cover_url"] == edited["thumbnail_url"]
    assert _image_files(data_dir, image) == [f"{image['id']}.jpg"]

    # A crop after the turn (the whole edit is sent again, drawn from the original).
    cropped = client.put(f"/api/images/{image['id']}/edit", json={"rotate": 90, "crop": [200, 0, 400, 300]}).json()
    assert (cropped["width"], cropped["height"]) == (200, 300)
    red = _pixels(client, cropped["url"])[..., 0]
    assert red[5, 195] > 200

    # Undo: the upload as it was, byte for byte.
    undone = client.delete(f"/api/images/{image['id']}/edit")
    assert undone.status_code == 200
    assert undone.json()["edit"] is None and (undone.json()["width"], undone.json()["height"]) == (600, 400)
    assert client.get(undone.json()["url"]).content == original_bytes
    assert not (data_dir / "uploads" / image["character_id"] / "originals" / f"{image['id']}.jpg").exists()
    assert client.delete(f"/api/images/{image['id']}/edit").status_code == 200  # nothing to undo: no error


def test_bad_edits_are_refused_and_change_nothing(client: TestClient) -> None:
    image = _upload(client, "plain.png", encode(photo(22, (200, 100)), "PNG"))
    before = client.get(image["url"]).content
    cases = [
        ({"rotate": 45}, 422),
        ({"crop": [0, 0, 300, 100]}, 422),  # wider than the photo
        ({"rotate": 90, "crop": [0, 0, 200, 100]}, 422),  # turned, the photo is 100 wide
        ({"crop": [0, 0, 8, 8]}, 422),  # too small to train on
        ({"crop": [0, 0, 10]}, 422),
        ({"flip": True}, 422),
    ]
    for body, status in cases:
        answer = client.put(f"/api/images/{image['id']}/edit", json=body)
        assert answer.status_code == status, (body, answer.text)
        assert isinstance(answer.json()["detail"], str | list)
    assert client.get(f"/api/images/{image['id']}").json()["edit"] is None
    assert client.get(image["url"]).content == before
    assert client.put("/api/images/" + "f" * 32 + "/edit", json={"rotate": 90}).status_code == 404


def test_crop_to_the_face(client: TestClient) -> None:
    # A portrait with room around it: the crop keeps head and shoulders at the ratio asked.
    canvas = Image.new("RGB", (900, 700), (40, 90, 60))
    canvas.paste(astronaut(), (400, 300))
    image = _upload(client, "portrait.png", encode(canvas, "PNG"))
    answer = client.post(f"/api/images/{image['id']}/edit/face", json={"aspect": 0.75})
    assert answer.status_code == 200, answer.text
    edited = answer.json()
    assert abs(edited["width"] / edited["height"] - 0.75) < 0.02
    left, top, right, bottom = edited["edit"]["crop"]
    # The astronaut's face is in the pasted picture, not in the green around it.
    assert 400 <= (left + right) / 2 <= 760 and 300 <= (top + bottom) / 2 <= 600

    faceless = _upload(client, "faceless.png", encode(photo(23, (300, 300)), "PNG"))
    refused = client.post(f"/api/images/{faceless['id']}/edit/face", json={})
    assert refused.status_code == 422 and "no face" in refused.json()["detail"]


def test_the_trainer_reads_the_edited_photo(client: TestClient, data_dir: Path) -> None:
    image = _upload(client, "wide.png", encode(photo(24, (320, 160)), "PNG"))
    client.patch(f"/api/images/{image['id']}", json={"caption": "a photo of [trigger]"})
    edited = client.put(f"/api/images/{image['id']}/edit", json={"rotate": 270, "crop": [0, 40, 160, 280]}).json()
    run = client.post(
        "/api/training", json={"character_id": image["character_id"], "config": {"steps": 5, "resolutions": [64]}}
    )
    assert run.status_code == 202, run.text
    with Session(client.app.state.services.engine) as session:  # type: ignore[attr-defined]
        job = session.get(Job, run.json()["id"])
        assert job is not None
        training_input = TrainingInput.model_validate(job.payload["input"])
    assert (training_input.dataset[0].width, training_input.dataset[0].height) == (160, 240)
    dataset = read_dataset(training_input, data_dir, resolutions=[64], allow_empty_captions=False)
    assert dataset.images[0].size == (160, 240)
    assert np.array_equal(np.asarray(dataset.images[0]), _pixels(client, edited["url"]))

    # While the run waits, its photo stays as it was submitted; once it has ended the photo can change again.
    refused = client.delete(f"/api/images/{image['id']}/edit")
    assert refused.status_code == 409 and "trains on this photo" in refused.json()["detail"]
    assert client.put(f"/api/images/{image['id']}/edit", json={"rotate": 90}).status_code == 409
    assert client.get(edited["url"]).content == client.get(f"/api/images/{image['id']}/file").content
    client.post(f"/api/jobs/{run.json()['id']}/cancel")
    assert client.delete(f"/api/images/{image['id']}/edit").status_code == 200
