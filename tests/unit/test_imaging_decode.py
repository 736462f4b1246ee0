"""Decoding untrusted files: accepted formats, normalization, and every way a file is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, features

from isengard.imaging import ImageRejectedError, decode_image, save_image, stored_extension
from tests.image_samples import encode, jpeg_with_orientation, photo, png_bomb

LIMIT = 50_000_000


def _write(tmp_path: Path, data: bytes, name: str = "upload") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"] + (["AVIF"] if features.check("avif") else []))
def test_accepted_formats_decode_to_rgb(tmp_path: Path, fmt: str) -> None:
    decoded = decode_image(_write(tmp_path, encode(photo(1, (120, 90)), fmt)), max_pixels=LIMIT)
    assert decoded.source_format == fmt
    assert decoded.image.mode == "RGB" and decoded.image.size == (120, 90)
    assert decoded.image.info == {}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (encode(photo(1, (40, 30)), "BMP"), "not an image in an accepted format"),
        (encode(photo(1, (40, 30)), "GIF"), "not an image in an accepted format"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not an image in an accepted format"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not an image in an accepted format"),
        (encode(photo(1, (200, 200)))[:900], "damaged or incomplete"),
        (encode(photo(1, (200, 200)), "PNG")[:-40], "damaged or incomplete"),
        (png_bomb(8000, 8000), "8000x8000 = 64,000,000 pixels; the limit is 50,000,000"),
    ],
)
def test_refused_files_say_why(tmp_path: Path, data: bytes, reason: str) -> None:
    with pytest.raises(ImageRejectedError, match=reason):
        decode_image(_write(tmp_path, data), max_pixels=LIMIT)


def test_decompression_bomb_warning_is_an_error_even_under_a_generous_limit(tmp_path: Path) -> None:
    # 100 M pixels passes a 1 G limit but trips Pillow's own bomb warning, which must refuse, not warn.
    with pytest.raises(ImageRejectedError, match="10000x10000 = 100,000,000 pixels; the limit is 89,478,485"):
        decode_image(_write(tmp_path, png_bomb(10_000, 10_000)), max_pixels=1_000_000_000)


def test_orientation_alpha_and_cmyk_are_normalized(tmp_path: Path) -> None:
    rotated = decode_image(_write(tmp_path, jpeg_with_orientation(photo(2, (300, 100)), 8), "r"), max_pixels=LIMIT)
    assert rotated.image.size == (100, 300)

    transparent = Image.new("P", (20, 20), 0)
    transparent.putpalette([255, 0, 0, 0, 255, 0])
    transparent.info["transparency"] = 0
    decoded = decode_image(_write(tmp_path, encode(transparent, "PNG"), "p"), max_pixels=LIMIT)
    assert decoded.image.mode == "RGBA" and decoded.image.getpixel((0, 0)) == (255, 0, 0, 0)
    assert stored_extension(decoded.source_format, decoded.image) == ("png", "PNG")

    cmyk = photo(3, (40, 40)).convert("CMYK")
    assert decode_image(_write(tmp_path, encode(cmyk, "JPEG"), "c"), max_pixels=LIMIT).image.mode == "RGB"


def test_embedded_colour_profile_is_applied_then_dropped(tmp_path: Path) -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = photo(4, (64, 64))
    with_srgb = decode_image(_write(tmp_path, encode(source, "PNG", icc_profile=srgb), "s"), max_pixels=LIMIT)
    # An sRGB profile leaves the pixels (nearly) as they were, and the stored file carries no profile.
    difference = np.abs(np.asarray(with_srgb.image, dtype=np.int16) - np.asarray(source, dtype=np.int16))
    assert difference.max() <= 2
    target = tmp_path / "out.png"
    save_image(with_srgb.image, target, "PNG")
    assert "icc_profile" not in Image.open(target).info


def test_save_writes_atomically_without_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "a.jpg"
    save_image(photo(5, (50, 50)).convert("RGBA"), target, "JPEG")
    assert Image.open(target).format == "JPEG"
    assert [p.name for p in target.parent.iterdir()] == ["a.jpg"]
    with pytest.raises(KeyError):  # a failed save leaves no temporary file behind
        save_image(photo(5, (50, 50)), tmp_path / "b.xyz", "NOT-A-FORMAT")
    assert not list(tmp_path.glob("*.part*")) and not (tmp_path / "b.xyz").exists()
