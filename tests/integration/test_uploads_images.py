"""What a stored upload looks like: orientation applied, metadata gone, duplicates caught, thumbnails cached."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pillow_heif
from fastapi.testclient import TestClient
from PIL import Image

from isengard.config import Settings
from tests.image_samples import encode, jpeg_with_orientation, photo


def _character(client: TestClient) -> str:
    return str(client.post("/api/characters", json={"name": "Eowyn"}).json()["id"])


def _upload(client: TestClient, character_id: str, *files: tuple[str, bytes]) -> dict[str, Any]:
    response = client.post(
        f"/api/characters/{character_id}/images",
        files=[("files", (name, data, "application/octet-stream")) for name, data in files],
    )
    body: dict[str, Any] = response.json()
    # 201 when something was stored; 200 is only for a request that brought nothing but duplicates.
    assert response.status_code == (201 if body["stored"] else 200), response.text
    assert body["stored"] or body["duplicates"], response.text
    return body


def test_exif_orientation_is_applied_and_metadata_stripped(client: TestClient) -> None:
    character_id = _character(client)
    # 600 wide, 400 high, with a red marker at the top-left; orientation 6 means "rotate 90° clockwise to view".
    source = photo(11, (600, 400))
    source.paste((255, 0, 0), (0, 0, 60, 60))
    body = _upload(client, character_id, ("sideways.jpg", jpeg_with_orientation(source, 6)))
    image = body["results"][0]["image"]
    assert (image["width"], image["height"]) == (400, 600)

    stored = Image.open(io.BytesIO(client.get(image["url"]).content))
    assert stored.size == (400, 600)
    # Rotated clockwise, the top-left marker ends up top-right.
    red = np.asarray(stored.convert("RGB"))[..., 0]
    assert red[5, 395] > 200 and red[5, 5] < 200
    assert len(stored.getexif()) == 0
    assert "icc_profile" not in stored.info and "exif" not in stored.info


def _heic(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    pillow_heif.from_pillow(image).save(buffer, quality=90, **options)
    return buffer.getvalue()


def test_heic_from_a_phone_is_stored_converted(client: TestClient) -> None:
    character_id = _character(client)
    source = photo(16, (480, 360))
    transparent = source.convert("RGBA")
    transparent.putalpha(Image.new("L", source.size, 255))
    transparent.paste((0, 0, 0, 0), (0, 0, 40, 40))
    sideways = Image.Exif()
    sideways[0x0112] = 6
    body = _upload(
        client,
        character_id,
        ("IMG_0001.HEIC", _heic(source)),
        ("IMG_0002.heic", _heic(transparent)),
        ("IMG_0003.heic", _heic(photo(17, (480, 360)), exif=sideways.tobytes())),
    )
    assert [r["status"] for r in body["results"]] == ["stored"] * 3, body["results"]
    plain, alpha, rotated = (r["image"] for r in body["results"])

    # Stored in a format every trainer reads: JPEG, or PNG where there is transparency to keep.
    response = client.get(plain["url"])
    assert response.headers["content-type"] == "image/jpeg"
    stored = Image.open(io.BytesIO(response.content))
    assert stored.format == "JPEG" and stored.size == (480, 360) and (plain["width"], plain["height"]) == (480, 360)
    # The same picture (HEIC is lossy): far closer to its source than to another photo.
    pixels = np.asarray(stored.convert("RGB"), dtype=np.float32)
    assert np.abs(pixels - np.asarray(source, dtype=np.float32)).mean() < 15
    assert np.abs(pixels - np.asarray(photo(18, (480, 360)), dtype=np.float32)).mean() > 40

    with_alpha = Image.open(io.BytesIO(client.get(alpha["url"]).content))
    assert with_alpha.format == "PNG" and with_alpha.mode == "RGBA"
    opacity = np.asarray(with_alpha)[..., 3]
    assert opacity[5, 5] == 0 and opacity[200, 200] == 255

    # The orientation a phone records is applied once, as for JPEG.
    assert (rotated["width"], rotated["height"]) == (360, 480)
    assert Image.open(io.BytesIO(client.get(rotated["url"]).content)).size == (360, 480)


def test_exact_duplicates_are_not_stored_twice_even_in_another_container(client: TestClient) -> None:
    character_id = _character(client)
    original = photo(12, (320, 400))
    first = _upload(client, character_id, ("a.png", encode(original, "PNG")))
    first_id = first["results"][0]["image"]["id"]
    # Same pixels, lossless WebP and a PNG with text metadata: both are the same image.
    again = _upload(
        client,
        character_id,
        ("b.webp", encode(original, "WEBP", lossless=True)),
        ("c.png", encode(original, "PNG", optimize=True)),
    )
    assert [r["status"] for r in again["results"]] == ["duplicate", "duplicate"]
    assert {r["duplicate_of"] for r in again["results"]} == {first_id}
    assert client.get(f"/api/characters/{character_id}").json()["image_count"] == 1
    # Only duplicates: 200, not 422, and not 201.
    response = client.post(
        f"/api/characters/{character_id}/images", files=[("files", ("d.png", encode(original, "PNG"), "image/png"))]
    )
    assert response.status_code == 200
    # Another character may hold the same photo.
    other = client.post("/api/characters", json={"name": "Faramir"}).json()["id"]
    assert _upload(client, other, ("a.png", encode(original, "PNG")))["stored"] == 1


def test_near_duplicates_are_flagged(client: TestClient) -> None:
    character_id = _character(client)
    original = photo(13)
    body = _upload(
        client,
        character_id,
        ("original.jpg", encode(original, quality=95)),
        ("smaller.jpg", encode(original.resize((480, 600)), quality=70)),
        ("different.jpg", encode(photo(14))),
    )
    results = {r["name"]: r for r in body["results"]}
    original_id = results["original.jpg"]["image"]["id"]
    near = results["smaller.jpg"]["image"]
    assert near["near_duplicate_of"] == original_id and "near_duplicate" in near["flags"]
    assert results["different.jpg"]["image"]["near_duplicate_of"] is None
    assert "near_duplicate" not in results["original.jpg"]["image"]["flags"]

    # Deleting the original clears the link and the flag.
    assert client.delete(f"/api/images/{original_id}").status_code == 204
    after = client.get(f"/api/images/{near['id']}").json()
    assert after["near_duplicate_of"] is None and "near_duplicate" not in after["flags"]


def test_thumbnails_are_webp_and_cached(client: TestClient, settings: Settings) -> None:
    character_id = _character(client)
    body = _upload(client, character_id, ("tall.jpg", encode(photo(15, (500, 1000)))))
    image = body["results"][0]["image"]
    response = client.get(image["thumbnail_url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/webp"
    assert "immutable" in response.headers["cache-control"]
    thumb = Image.open(io.BytesIO(response.content))
    assert thumb.format == "WEBP" and thumb.size == (128, 256)
    etag = response.headers["etag"]
    assert client.get(image["thumbnail_url"], headers={"If-None-Match": etag}).status_code == 304
    original = client.get(image["url"])
    assert original.headers["content-type"] == "image/jpeg" and original.headers["etag"] != etag

    # Deleting the image removes both files; the routes then answer 404.
    thumb_path = settings.data_path / "thumbnails" / character_id / f"{image['id']}.webp"
    assert thumb_path.exists()
    assert client.delete(f"/api/images/{image['id']}").status_code == 204
    assert not thumb_path.exists() and not any((settings.data_path / "uploads" / character_id).iterdir())
    assert client.get(image["thumbnail_url"]).status_code == 404
    assert client.get(image["url"]).status_code == 404
