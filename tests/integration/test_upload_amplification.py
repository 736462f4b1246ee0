"""Requests that cost the server far more than they cost the sender are refused while they stream: parts of a
multipart body and entries of a zip are counted before anything is kept per part or per entry, and LoRA imports
(each holds a whole file in memory) take turns."""

from __future__ import annotations

import contextlib
import io
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import save

from isengard.api.app import create_app
from isengard.api.services.dataset.archive import ZipLimits, ZipRejectedError, central_directory, expand_zip
from isengard.api.services.loras.importer import import_slot
from isengard.db.migrate import upgrade
from tests.conftest import make_settings
from tests.image_samples import encode, make_zip, photo

BOUNDARY = "isengardboundary"


@contextlib.contextmanager
def _client(data_dir: Path, redis_url: str, **overrides: object) -> Iterator[TestClient]:
    settings = make_settings(data_dir, redis_url=redis_url, **overrides)
    upgrade(settings.sqlalchemy_url)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture()
def client(data_dir: Path, redis_url: str) -> Iterator[TestClient]:
    with _client(data_dir, redis_url, max_files_per_request=20) as test_client:
        yield test_client


def _character(client: TestClient) -> str:
    response = client.post("/api/characters", json={"name": "Amp"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _empty_parts(count: int) -> bytes:
    part = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="x"\r\n\r\n\r\n'.encode()
    return part * count + f"--{BOUNDARY}--\r\n".encode()


def test_a_body_of_many_empty_parts_is_refused_at_the_part_limit(client: TestClient, data_dir: Path) -> None:
    character_id = _character(client)
    response = client.post(
        f"/api/characters/{character_id}/images",
        content=_empty_parts(20_000),
        headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert response.status_code == 413, response.text[:500]
    assert "too many parts" in response.json()["detail"]
    assert len(response.content) < 1000, "no per-part answer for parts past the limit"
    assert list((data_dir / "tmp").iterdir()) == []


def test_a_few_files_over_the_limit_are_still_reported_one_by_one(client: TestClient) -> None:
    character_id = _character(client)
    files = [("files", (f"{i}.jpg", encode(photo(i, (64, 64))), "image/jpeg")) for i in range(22)]
    response = client.post(f"/api/characters/{character_id}/images", files=files)
    assert response.status_code == 201
    reasons = [r["reason"] or "" for r in response.json()["results"]]
    assert sum("too many files" in reason for reason in reasons) == 2


def test_a_zip_of_many_entries_is_refused_from_its_end_record(tmp_path: Path) -> None:
    entries = {f"{i}.txt": b"" for i in range(5000)}
    archive = tmp_path / "many.zip"
    archive.write_bytes(make_zip(entries, compression=zipfile.ZIP_STORED))
    assert central_directory(archive) is not None and central_directory(archive)[0] == 5000  # type: ignore[index]
    limits = ZipLimits(max_entries=10, max_uncompressed_bytes=1024 * 1024, max_entry_bytes=1024 * 1024)
    with pytest.raises(ZipRejectedError, match="lists 5,000 entries"):
        expand_zip(archive, "many.zip", tmp_path / "out", limits, "e")
    assert not (tmp_path / "out").exists()


def test_a_zip_of_many_entries_is_refused_over_http(data_dir: Path, redis_url: str) -> None:
    with _client(data_dir, redis_url, max_zip_entries=10) as client:
        character_id = _character(client)
        many = make_zip({f"{i}.txt": b"" for i in range(3000)}, compression=zipfile.ZIP_STORED)
        response = client.post(
            f"/api/characters/{character_id}/images",
            files=[("files", ("many.zip", io.BytesIO(many), "application/zip"))],
        )
        assert response.status_code == 422, response.text[:300]
        assert "lists 3,000 entries" in response.json()["results"][0]["reason"]


def test_lora_imports_take_turns(data_dir: Path, redis_url: str) -> None:
    d = 32  # the tiny model's attention width
    gen = torch.Generator().manual_seed(5)
    lora = save(
        {
            "transformer.transformer_blocks.0.attn.to_k.lora_A.weight": torch.randn(4, d, generator=gen),
            "transformer.transformer_blocks.0.attn.to_k.lora_B.weight": torch.randn(d, 4, generator=gen),
        }
    )
    with _client(data_dir, redis_url, max_concurrent_lora_imports=1) as client:
        answers: list[int] = []

        def send() -> None:
            files = {"files": ("t.safetensors", io.BytesIO(lora), "application/octet-stream")}
            answers.append(client.post("/api/loras/import", files=files, params={"base": "flux1-dev"}).status_code)

        with import_slot(1):  # another import holds the only slot
            sender = threading.Thread(target=send)
            sender.start()
            sender.join(timeout=3)
            assert sender.is_alive() and answers == [], "the import waited for the slot"
        sender.join(timeout=120)
        assert answers == [201]
