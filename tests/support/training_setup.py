"""A character with captioned images, made through the API, and a training config small enough for the tiny model:
the starting point of the training API, CLI, availability and crash tests."""

from __future__ import annotations

import io
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

# 40 steps at 64 px on the tiny model: a few seconds, yet with samples, checkpoints and pruning all exercised.
SMALL = {
    "steps": 40, "rank": 4, "alpha": 8.0, "learning_rate": 3e-3, "resolutions": [64], "batch_size": 2,
    "sample_every": 20, "sample_prompts": ["[trigger] portrait"], "sample_resolution": 64, "sample_steps": 2,
    "checkpoint_every": 10, "keep_checkpoints": 2, "max_sequence_length": 32, "caption_dropout": 0.0,
}  # fmt: skip


def png(index: int, size: tuple[int, int] = (96, 96)) -> bytes:
    """A small PNG whose colour and shape depend on `index` (uploads are deduplicated by content)."""
    image = Image.new("RGB", size, (20 * index % 255, 90, 160))
    ImageDraw.Draw(image).ellipse((20 + index, 20, 70, 70), fill=(230, 40, 40))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def photo_folder(folder: Path, count: int = 3) -> Path:
    """A folder of `count` photos as a person would point the CLI at, the first with a hand-written caption."""
    folder.mkdir()
    for index in range(count):
        (folder / f"p{index}.png").write_bytes(png(index))
    (folder / "p0.txt").write_text("close-up of [trigger] smiling")
    return folder


def make_character(client: TestClient, name: str, images: int, *, captions: bool = True) -> str:
    """Create a character with `images` uploaded photos, captioned unless `captions` is False; returns its id."""
    response = client.post("/api/characters", json={"name": name, "trigger_word": "zxq"})
    assert response.status_code == 201, response.text
    character_id: str = response.json()["id"]
    if images:
        files = [("files", (f"photo{i}.png", png(i), "image/png")) for i in range(images)]
        upload = client.post(f"/api/characters/{character_id}/images", files=files)
        assert upload.status_code == 201, upload.text
        for index, result in enumerate(upload.json()["results"]):
            caption = f"a photo of [trigger], number {index}" if captions else ""
            assert client.patch(f"/api/images/{result['image']['id']}", json={"caption": caption}).status_code == 200
    return character_id
