"""Uploads are bounded per request and per process, not only per file: zip budgets, free space, decoded pixels,
the API's memory; and 16-bit images are scaled, not clipped."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from isengard.api.app import create_app
from isengard.config import Settings
from isengard.db.migrate import upgrade
from isengard.diskspace import free_bytes
from isengard.redis_server import free_port
from tests.conftest import make_settings
from tests.image_samples import encode, make_zip, photo, zip_bomb
from tests.integration.queue_support import REPO_ROOT, wait_for, worker_env

MB = 1024 * 1024


def _client(data_dir: Path, redis_url: str, **overrides: object) -> TestClient:
    settings = make_settings(data_dir, redis_url=redis_url, **overrides)
    upgrade(settings.sqlalchemy_url)
    return TestClient(create_app(settings))


def _character(client: TestClient) -> str:
    return str(client.post("/api/characters", json={"name": "Budget"}).json()["id"])


def _upload(client: TestClient, character_id: str, files: dict[str, bytes]) -> httpx.Response:
    parts = [("files", (name, content, "application/octet-stream")) for name, content in files.items()]
    return client.post(f"/api/characters/{character_id}/images", files=parts)


def test_the_zip_budget_holds_for_all_archives_of_a_request(data_dir: Path, redis_url: str) -> None:
    with _client(data_dir, redis_url, max_zip_uncompressed_bytes=4 * MB, max_upload_bytes=4 * MB) as client:
        character_id = _character(client)
        bombs = {f"bomb{i}.zip": zip_bomb(3 * MB) for i in range(4)}
        results = _upload(client, character_id, bombs).json()["results"]
        # The first archive fits the budget (its entry is then refused as no image); the others do not.
        assert results[0]["name"] == "bomb0.zip/bomb0.png" and "not an image" in results[0]["reason"]
        assert [r["name"] for r in results[1:]] == ["bomb1.zip", "bomb2.zip", "bomb3.zip"]
        assert all("for the archives of one request" in r["reason"] for r in results[1:])


def test_the_zip_entry_count_holds_for_all_archives_of_a_request(data_dir: Path, redis_url: str) -> None:
    with _client(data_dir, redis_url, max_zip_entries=4) as client:
        character_id = _character(client)
        archive = {f"set/{i}.jpg": encode(photo(i, (64, 64))) for i in range(3)}
        other = {f"more/{i}.jpg": encode(photo(10 + i, (64, 64))) for i in range(3)}
        body = _upload(client, character_id, {"a.zip": make_zip(archive), "b.zip": make_zip(other)}).json()
        assert body["stored"] == 3
        assert body["results"][-1]["name"] == "b.zip" and "at most 4 are accepted" in body["results"][-1]["reason"]


def test_extracted_entries_count_against_the_free_space_reserve(data_dir: Path, redis_url: str) -> None:
    # A 30 MB expansion must not fit: leave only 10 MB above the reserve (the compressed body is a few KB).
    reserve = free_bytes(data_dir) - 10 * MB
    limits = {"max_zip_uncompressed_bytes": 64 * MB, "max_upload_bytes": 64 * MB}
    with _client(data_dir, redis_url, min_free_bytes=reserve, **limits) as client:
        character_id = _character(client)
        response = _upload(client, character_id, {"big.zip": zip_bomb(30 * MB)})
        assert response.status_code == 507, response.text
        assert list((data_dir / "tmp").iterdir()) == []


def test_the_decoded_pixels_of_one_request_are_bounded(data_dir: Path, redis_url: str) -> None:
    side = 300
    with _client(data_dir, redis_url, max_request_pixels=int(2.5 * side * side)) as client:
        character_id = _character(client)
        files = {f"{i}.png": encode(photo(i, (side, side)), "PNG") for i in range(4)}
        body = _upload(client, character_id, files).json()
        assert body["stored"] == 2
        assert [r["status"] for r in body["results"]] == ["stored", "stored", "rejected", "rejected"]
        assert "at most 225,000 pixels together" in body["results"][2]["reason"]


def test_16_bit_greyscale_is_scaled_not_clipped(client: TestClient) -> None:
    ramp = np.tile(np.linspace(0, 65535, 256, dtype=np.uint16), (64, 1))
    source = Image.fromarray(ramp)
    assert source.mode == "I;16"
    character_id = _character(client)
    body = _upload(client, character_id, {"grey16.png": encode(source, "PNG")}).json()
    assert body["stored"] == 1, body
    stored = client.get(body["results"][0]["image"]["url"])
    pixels = np.asarray(Image.open(io.BytesIO(stored.content)).convert("L"), dtype=np.float64)
    assert abs(pixels.mean() - ramp.mean() / 257) < 1.0
    assert (pixels == 255).mean() < 0.01


# --- The API process' memory ---------------------------------------------------------------------------------

LARGE_SIDE = 5000  # 25 MP: 75 MB of RGB pixels once decoded, from a PNG of a few hundred KB
CONCURRENT = 4
# Measured: about 1100 MB of growth when every request decoded at once with several full-size copies each, about
# 450 MB with two decode slots (the default) holding at most two copies each. The bound sits between.
PEAK_BOUND_MB = 700
SETTLED_BOUND_MB = 150


def _memory_mb(pid: int) -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}


def _large_png(seed: int) -> bytes:
    image = Image.new("RGB", (LARGE_SIDE, LARGE_SIDE), (30 + seed * 40, 90, 160))
    image.paste((200, 40, 40), (seed * 100, 100, seed * 100 + 400, 500))
    return encode(image, "PNG")


@pytest.fixture()
def api_process(data_dir: Path, redis_url: str) -> Iterator[tuple[str, int]]:
    settings: Settings = make_settings(data_dir, redis_url=redis_url, port=free_port())
    upgrade(settings.sqlalchemy_url)
    env = worker_env(settings, log_level="WARNING") | {"ISENGARD_PORT": str(settings.port)}
    process = subprocess.Popen([sys.executable, "-m", "isengard.cli", "api"], env=env, cwd=REPO_ROOT)
    base = f"http://127.0.0.1:{settings.port}"
    try:
        wait_for(lambda: _up(base), 60, "the API answers")
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/api/characters", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow
def test_concurrent_large_uploads_keep_the_api_memory_bounded(api_process: tuple[str, int]) -> None:
    base, pid = api_process
    character_id = httpx.post(f"{base}/api/characters", json={"name": "Large"}).json()["id"]
    files = [_large_png(seed) for seed in range(CONCURRENT)]
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak (VmHWM) counts from here
    baseline = _memory_mb(pid)

    def send(content: bytes) -> int:
        parts = {"files": ("large.png", content, "image/png")}
        return httpx.post(f"{base}/api/characters/{character_id}/images", files=parts, timeout=300).status_code

    with ThreadPoolExecutor(CONCURRENT) as pool:
        assert list(pool.map(send, files)) == [201] * CONCURRENT
    time.sleep(0.5)
    after = _memory_mb(pid)
    peak_growth = after["VmHWM"] - baseline["VmRSS"]
    assert peak_growth < PEAK_BOUND_MB, f"peak RSS grew by {peak_growth:.0f} MB"
    assert after["VmRSS"] - baseline["VmRSS"] < SETTLED_BOUND_MB, f"RSS stayed {after} after, from {baseline}"
