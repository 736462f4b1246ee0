"""Uploads refuse every kind of bad file with its own reason, store the good ones, and leave nothing else on disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from isengard.api.app import create_app
from isengard.config import Settings
from isengard.db.migrate import upgrade
from isengard.db.models import Image
from tests.conftest import make_settings
from tests.image_samples import encode, lying_zip, make_zip, photo, png_bomb, zip_bomb, zip_with_symlink

MB = 1024 * 1024


@pytest.fixture()
def limited(data_dir: Path, redis_url: str) -> Iterator[tuple[TestClient, Settings]]:
    settings = make_settings(
        data_dir,
        redis_url=redis_url,
        max_upload_bytes=1 * MB,
        max_zip_uncompressed_bytes=4 * MB,
        max_files_per_request=20,
    )
    upgrade(settings.sqlalchemy_url)
    with TestClient(create_app(settings)) as client:
        yield client, settings


def _character(client: TestClient, name: str = "Arwen") -> str:
    response = client.post("/api/characters", json={"name": name})
    assert response.status_code == 201
    return str(response.json()["id"])


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_mixed_upload_stores_good_files_and_explains_each_bad_one(limited: tuple[TestClient, Settings]) -> None:
    client, settings = limited
    character_id = _character(client)
    good_jpeg = encode(photo(1))
    truncated = encode(photo(4))
    oversized = b"\xff\xd8\xff\xe0" + b"\x01" * (1 * MB + 10)
    evil_zip = make_zip(
        {
            "../evil.png": encode(photo(5), "PNG"),
            "/abs.png": encode(photo(7), "PNG"),
            "set/inside.jpg": encode(photo(6)),
            "set/inside.txt": b"[trigger] walking in a forest\n",
            "__MACOSX/set/._inside.jpg": b"resource fork",
            "set/.DS_Store": b"finder",
        }
    )
    files = [
        ("files", ("good.jpg", good_jpeg, "image/jpeg")),
        ("files", ("good.png", encode(photo(2, (320, 400)), "PNG"), "image/png")),
        ("files", ("good.webp", encode(photo(3), "WEBP"), "image/webp")),
        ("files", ("text.jpg", b"just some text, not a picture\n" * 20, "image/jpeg")),
        ("files", ("truncated.jpg", truncated[: len(truncated) // 2], "image/jpeg")),
        ("files", ("bomb.png", png_bomb(20_000, 20_000), "image/png")),
        ("files", ("wide.png", png_bomb(10_000, 6_000), "image/png")),
        ("files", ("huge.jpg", oversized, "image/jpeg")),
        ("files", ("dataset.zip", evil_zip, "application/zip")),
        ("files", ("bomb.zip", zip_bomb(5 * MB), "application/zip")),
        ("files", ("liar.zip", lying_zip(2 * MB, 1000), "application/zip")),
        ("files", ("link.zip", zip_with_symlink("link.png", "/etc/passwd"), "application/zip")),
        ("files", ("empty.jpg", b"", "image/jpeg")),
    ]
    response = client.post(f"/api/characters/{character_id}/images", files=files)
    assert response.status_code == 201, response.text
    body = response.json()
    by_name = {result["name"]: result for result in body["results"]}

    stored = {name for name, r in by_name.items() if r["status"] == "stored"}
    assert stored == {"good.jpg", "good.png", "good.webp", "dataset.zip/set/inside.jpg"}
    assert body["stored"] == 4 and body["rejected"] == len(body["results"]) - 4
    reasons = {name: r["reason"] for name, r in by_name.items() if r["status"] == "rejected"}
    assert "not an image" in reasons["text.jpg"]
    assert "damaged or incomplete" in reasons["truncated.jpg"]
    assert "more pixels than the limit of 50,000,000" in reasons["bomb.png"]
    assert "10000x6000 = 60,000,000 pixels" in reasons["wide.png"]
    assert "larger than the limit" in reasons["huge.jpg"]
    assert "`..`" in reasons["dataset.zip/../evil.png"]
    assert "absolute" in reasons["dataset.zip//abs.png"]
    assert "expands to" in reasons["bomb.zip"]
    assert (
        "more data than its header declares" in reasons["liar.zip/liar.png"]
        or "extracted" in reasons["liar.zip/liar.png"]
    )
    assert "links" in reasons["link.zip/link.png"]
    assert reasons["empty.jpg"] == "the file is empty"
    assert not any("__MACOSX" in name or ".DS_Store" in name for name in by_name)

    # The caption beside the image in the zip came along; the caption file is not itself a result.
    inside = by_name["dataset.zip/set/inside.jpg"]["image"]
    assert inside["caption"] == "[trigger] walking in a forest"
    assert inside["original_name"] == "inside.jpg"

    # On disk: exactly the four stored originals, the caption file of the one with a caption, and their
    # thumbnails, under server-made names; no temp files.
    with Session(create_engine(settings.sqlalchemy_url)) as db:
        rows = list(db.scalars(select(Image)))
    data = settings.data_path
    captioned = [row for row in rows if row.caption]
    assert [row.original_name for row in captioned] == ["inside.jpg"]
    assert [p.name for p in _files_under(data / "uploads")] == sorted(
        [row.filename for row in rows] + [f"{row.id}.txt" for row in captioned]
    )
    assert (data / "uploads" / character_id / f"{captioned[0].id}.txt").read_text() == "[trigger] walking in a forest"
    assert [p.name for p in _files_under(data / "thumbnails")] == sorted(f"{row.id}.webp" for row in rows)
    assert all(row.filename == f"{row.id}.{row.filename.rsplit('.', 1)[1]}" for row in rows)
    assert _files_under(data / "tmp") == []
    assert not list(data.rglob("evil*")) and not list(data.rglob("*.part*"))


def test_all_rejected_answers_422_with_every_reason(limited: tuple[TestClient, Settings]) -> None:
    client, settings = limited
    character_id = _character(client)
    response = client.post(
        f"/api/characters/{character_id}/images",
        files=[("files", ("a.jpg", b"nope", "image/jpeg")), ("files", ("b.png", png_bomb(), "image/png"))],
    )
    assert response.status_code == 422
    body = response.json()
    assert "none of the 2" in body["detail"]
    assert [r["status"] for r in body["results"]] == ["rejected", "rejected"]
    assert all(r["reason"] for r in body["results"])
    assert _files_under(settings.data_path / "uploads") == []
    assert _files_under(settings.data_path / "tmp") == []


def test_too_many_files_and_unmatched_captions(data_dir: Path, redis_url: str) -> None:
    settings = make_settings(data_dir, redis_url=redis_url, max_files_per_request=2)
    upgrade(settings.sqlalchemy_url)
    with TestClient(create_app(settings)) as client:
        character_id = _character(client)
        response = client.post(
            f"/api/characters/{character_id}/images",
            files=[
                ("files", ("one.jpg", encode(photo(1)), "image/jpeg")),
                ("files", ("stray.txt", b"a caption for nothing", "text/plain")),
                ("files", ("three.jpg", encode(photo(3)), "image/jpeg")),
            ],
        )
    assert response.status_code == 201
    results = {r["name"]: r for r in response.json()["results"]}
    assert results["one.jpg"]["status"] == "stored"
    assert results["stray.txt"]["reason"] == "caption file matches no image in this upload"
    assert "too many files" in results["three.jpg"]["reason"]
    assert len(_files_under(settings.data_path / "uploads")) == 1


def test_a_caption_file_beside_an_image_in_the_same_request(client: TestClient) -> None:
    character_id = _character(client)
    response = client.post(
        f"/api/characters/{character_id}/images",
        files=[
            ("files", ("portrait.JPG", encode(photo(8)), "image/jpeg")),
            ("files", ("portrait.txt", "\ufeff  [trigger]   smiling \r\n".encode(), "text/plain")),
        ],
    )
    assert response.status_code == 201
    [result] = response.json()["results"]
    assert result["image"]["caption"] == "[trigger] smiling"


def test_requests_that_are_not_uploads(client: TestClient) -> None:
    character_id = _character(client)
    url = f"/api/characters/{character_id}/images"
    wrong_type = client.post(url, content=b"{}", headers={"content-type": "application/json"})
    assert wrong_type.status_code == 415 and "multipart/form-data" in wrong_type.json()["detail"]
    no_files = client.post(url, data={"other": "field"}, files=[("note", ("n.txt", b"x", "text/plain"))])
    assert no_files.status_code == 422 and "no files" in no_files.json()["detail"]
    malformed = client.post(
        url, content=b"--b\r\nnot a header line\r\n\r\n", headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert malformed.status_code == 400 and "malformed" in malformed.json()["detail"]
    unknown = client.post(
        "/api/characters/" + "0" * 32 + "/images", files=[("files", ("a.jpg", encode(photo(1)), "image/jpeg"))]
    )
    assert unknown.status_code == 404


def test_uploads_are_rate_limited_and_documented(data_dir: Path, redis_url: str) -> None:
    settings = make_settings(data_dir, redis_url=redis_url, rate_limit_uploads=2)
    upgrade(settings.sqlalchemy_url)
    with TestClient(create_app(settings)) as client:
        character_id = _character(client)
        url = f"/api/characters/{character_id}/images"
        statuses = [client.post(url, files=[("files", ("a.jpg", b"x", "image/jpeg"))]).status_code for _ in range(3)]
        assert statuses == [422, 422, 429]
        schema = client.get("/api/openapi.json").json()
        body = schema["paths"]["/api/characters/{character_id}/images"]["post"]["requestBody"]
        assert body["content"]["multipart/form-data"]["schema"]["properties"]["files"]["type"] == "array"
