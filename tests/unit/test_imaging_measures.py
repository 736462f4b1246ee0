"""Measures taken at upload: blur, near-duplicate hashes, flags, thumbnails."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from isengard.imaging import (
    BLUR_THRESHOLD,
    NEAR_DUPLICATE_MAX_DISTANCE,
    blur_score,
    decode_flags,
    dhash,
    encode_flags,
    hamming_distance,
    make_thumbnail,
    pixel_sha256,
    quality_flags,
)
from tests.image_samples import blurred, photo


def test_blur_score_separates_sharp_from_blurred_at_any_resolution() -> None:
    for seed in range(3):
        sharp = photo(seed)
        assert blur_score(sharp) > 2 * BLUR_THRESHOLD
        assert blur_score(sharp.resize((2000, 2500))) > BLUR_THRESHOLD  # downscaled first: resolution-independent
        assert blur_score(blurred(sharp)) < BLUR_THRESHOLD / 4
    assert blur_score(Image.new("RGB", (2, 2))) == 0.0


def test_dhash_matches_copies_and_tells_different_images_apart() -> None:
    original = photo(20)
    copies = [original.resize((320, 400)), original.convert("L").convert("RGB"), blurred(original, 1.5)]
    for copy in copies:
        assert hamming_distance(dhash(original), dhash(copy)) <= NEAR_DUPLICATE_MAX_DISTANCE
    hashes = [dhash(photo(seed)) for seed in range(20, 32)]
    assert all(len(h) == 16 for h in hashes)
    assert min(hamming_distance(a, b) for a, b in itertools.combinations(hashes, 2)) > NEAR_DUPLICATE_MAX_DISTANCE


def test_pixel_hash_depends_on_pixels_only() -> None:
    image = photo(3, (50, 60))
    same = image.copy()
    same.info["exif"] = b"whatever"
    assert pixel_sha256(image) == pixel_sha256(same)
    assert pixel_sha256(image) != pixel_sha256(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))


def test_flags() -> None:
    assert quality_flags(1024, 1024, 500.0) == []
    assert quality_flags(400, 1000, 10.0, near_duplicate=True) == [
        "small",
        "blurry",
        "extreme_aspect",
        "near_duplicate",
    ]
    assert quality_flags(2048, 1024, None) == []  # exactly 2:1 is fine
    assert encode_flags(["small", "blurry"]) == ",small,blurry,"
    assert encode_flags([]) == ""
    assert decode_flags(",small,blurry,") == ["small", "blurry"] and decode_flags("") == []


def test_thumbnail_is_a_bounded_webp(tmp_path: Path) -> None:
    target = tmp_path / "thumbs" / "a.webp"
    make_thumbnail(photo(4, (1000, 500)), target)
    with Image.open(target) as thumb:
        assert thumb.format == "WEBP" and thumb.size == (256, 128)
    translucent = photo(4, (100, 50)).convert("RGBA")
    translucent.putalpha(128)
    make_thumbnail(translucent, target, size=64)
    with Image.open(target) as thumb:
        assert thumb.size == (64, 32) and thumb.mode == "RGBA"
    make_thumbnail(photo(4, (40, 20)), target)  # never enlarged
    with Image.open(target) as thumb:
        assert thumb.size == (40, 20)
    assert [p.name for p in target.parent.iterdir()] == ["a.webp"]


# Measured in a fresh interpreter: the source image is built first, then the kernel's high-water mark of resident
# memory is reset (clear_refs 5) so the peak read afterwards belongs to the measures alone.
_MEASURE_PEAK = """
import re, sys
import numpy as np
from PIL import Image
from isengard.imaging import analysis_gray, blur_score, dhash
def status_mb(key):
    with open("/proc/self/status") as status:
        return int(re.search(key + r":\\s+(\\d+)", status.read()).group(1)) / 1024
side = int(sys.argv[1])
pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
image = Image.fromarray(pixels)
del pixels
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")
before = status_mb("VmRSS")
gray = analysis_gray(image)
dhash(gray), blur_score(gray), dhash(image), blur_score(image)
print(status_mb("VmHWM") - before)
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's resettable peak RSS")
def test_measuring_a_large_image_never_holds_a_full_size_copy() -> None:
    side = 6000  # 36 M pixels: a full-size grayscale copy alone is 36 MB
    run = subprocess.run([sys.executable, "-c", _MEASURE_PEAK, str(side)], capture_output=True, text=True, check=True)
    grown_mb = float(run.stdout.strip())
    assert grown_mb < 12, f"measuring grew the peak by {grown_mb:.0f} MB for a {side}x{side} image"
