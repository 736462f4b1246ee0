"""The free-space reserve holds while an upload is written, whatever its framing: a body sent chunked (no
Content-Length for the disk guard to check up front) below the reserve is refused with 507 and leaves nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from isengard.api.app import create_app
from isengard.db.migrate import upgrade
from isengard.diskspace import free_bytes
from tests.conftest import make_settings
from tests.image_samples import encode, photo

BOUNDARY = "isengardboundary"
GIB = 1024**3


def _multipart(name: str, data: bytes) -> bytes:
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
    head += "Content-Type: image/jpeg\r\n\r\n"
    return head.encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def _chunked(body: bytes, size: int = 16 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize("route", ["images", "lora-import"])
def test_a_chunked_upload_below_the_reserve_is_refused(data_dir: Path, redis_url: str, route: str) -> None:
    # The reserve is above what the disk has free: every write must be refused, announced or not.
    settings = make_settings(data_dir, redis_url=redis_url, min_free_bytes=free_bytes(data_dir) + GIB)
    upgrade(settings.sqlalchemy_url)
    with TestClient(create_app(settings)) as client:
        if route == "images":
            character = client.post("/api/characters", json={"name": "Full"})
            assert character.status_code == 201, character.text
            path = f"/api/characters/{character.json()['id']}/images"
        else:
            path = "/api/loras/import"
        body = _multipart("photo.jpg", encode(photo(1, (256, 256))))
        response = client.post(
            path,
            content=_chunked(body),
            headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
        assert response.status_code == 507, response.text
        assert "free disk space" in response.json()["detail"]
    assert not [p for p in (data_dir / "uploads").rglob("*") if p.is_file()]
    assert not [p for p in (data_dir / "loras").rglob("*") if p.is_file()]
    assert list((data_dir / "tmp").iterdir()) == []
