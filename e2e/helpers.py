"""Small helpers the browser tests share: API calls to set up state, test images, screenshots."""

from __future__ import annotations

import io
import random
import time
from pathlib import Path

import httpx
from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-results" / "e2e"


def photo_bytes(seed: int, size: int = 320, *, blur: bool = False) -> bytes:
    """A distinct, sharp-edged test photo (shapes on a gradient) as PNG; different seeds are not near duplicates."""
    rng = random.Random(seed)
    image = Image.new("RGB", (size, size), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    draw = ImageDraw.Draw(image)
    for _ in range(14):
        x0, y0 = rng.randrange(size), rng.randrange(size)
        x1, y1 = x0 + rng.randrange(20, size // 2), y0 + rng.randrange(20, size // 2)
        color = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        if rng.random() < 0.5:
            draw.rectangle((x0, y0, x1, y1), fill=color)
        else:
            draw.ellipse((x0, y0, x1, y1), fill=color)
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(8))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def write_photos(folder: Path, count: int, *, start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(start, start + count):
        path = folder / f"photo_{index:02d}.png"
        path.write_bytes(photo_bytes(index))
        paths.append(path)
    return paths


def create_character(base_url: str, name: str, trigger: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {"name": name, "description": ""}
    if trigger:
        body["trigger_word"] = trigger
    response = httpx.post(f"{base_url}/api/characters", json=body, timeout=10)
    response.raise_for_status()
    return dict(response.json())


def upload_photos(base_url: str, character_id: str, count: int, *, start: int = 0) -> None:
    files = [("files", (f"p{i}.png", photo_bytes(i), "image/png")) for i in range(start, start + count)]
    response = httpx.post(f"{base_url}/api/characters/{character_id}/images", files=files, timeout=60)
    response.raise_for_status()


def screenshot_path(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{name}.png"


def caption_all(base_url: str, character_id: str, caption: str = "a photo of [trigger]") -> None:
    httpx.post(
        f"{base_url}/api/characters/{character_id}/captions/bulk",
        json={"action": "set_missing", "caption": caption},
        timeout=10,
    ).raise_for_status()


def start_run(base_url: str, character_id: str, name: str = "", **config: object) -> dict[str, object]:
    """A small real training run on the fast-test model; `config` overrides the tiny defaults."""
    body = {
        "character_id": character_id,
        "plugin": "flux-lora",
        "name": name,
        "config": {"steps": 6, "resolutions": [64], "sample_every": 0, "checkpoint_every": 0, **config},
    }
    response = httpx.post(f"{base_url}/api/training", json=body, timeout=30)
    response.raise_for_status()
    return dict(response.json())


def queue_generation(base_url: str, prompt: str, *, seed: int = 7) -> dict[str, object]:
    """A one-step 64 px generation job, without a LoRA; its record as submitted."""
    response = httpx.post(
        f"{base_url}/api/generation",
        json={"prompt": prompt, "width": 64, "height": 64, "steps": 1, "seed": seed},
        timeout=30,
    )
    response.raise_for_status()
    return dict(response.json())


def wait_for_job(base_url: str, job_id: str, *, timeout_s: float = 300) -> dict[str, object]:
    """Poll a job until it ends; its final record."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = httpx.get(f"{base_url}/api/jobs/{job_id}", timeout=10).json()
        if job["status"] in {"succeeded", "failed", "cancelled"}:
            return dict(job)
        time.sleep(0.5)
    raise TimeoutError(f"job {job_id} did not end in {timeout_s} s")


def trained_character(
    base_url: str, name: str, trigger: str, *, seed: int = 200, **config: object
) -> dict[str, object]:
    """A character with captioned photos and one finished training run; the run's record under `run`."""
    character = create_character(base_url, name, trigger)
    upload_photos(base_url, str(character["id"]), 4, start=seed)
    caption_all(base_url, str(character["id"]))
    job = start_run(base_url, str(character["id"]), **config)
    done = wait_for_job(base_url, str(job["id"]))
    assert done["status"] == "succeeded", done
    return {**character, "run": done}
