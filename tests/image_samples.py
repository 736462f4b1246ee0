"""Crafted image files for the upload and dataset tests: photos-like textures, damaged files, bombs, archives."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
from PIL import Image, ImageFilter


def photo(seed: int, size: tuple[int, int] = (640, 800)) -> Image.Image:
    """A sharp, detailed RGB image unique to its seed: random shapes over a textured background."""
    rng = np.random.default_rng(seed)
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = []
    for _ in range(3):
        fx, fy = rng.uniform(0.005, 0.05, size=2)
        phase = rng.uniform(0, 6.28)
        channels.append(127 + 80 * np.sin(xs * fx + ys * fy + phase))
    pixels = np.stack(channels, axis=-1)
    # Hard-edged blocks: what makes a photo "sharp" to a Laplacian, and its layout unique to the seed.
    for _ in range(120):
        x0, y0 = int(rng.integers(0, width - 8)), int(rng.integers(0, height - 8))
        w, h = int(rng.integers(8, max(9, width // 5))), int(rng.integers(8, max(9, height // 5)))
        pixels[y0 : y0 + h, x0 : x0 + w] = rng.uniform(0, 255, size=3)
    pixels += rng.normal(0, 10, size=pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def blurred(image: Image.Image, radius: float = 6.0) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(radius))


def encode(image: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        options.setdefault("quality", 92)
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A few hundred bytes whose header declares width x height RGB pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    # Only the first rows' worth of (zero) data: the file is tiny, the declared image is enormous.
    idat = zlib.compress(b"\0" * (1 + 3 * min(width, 1024)), 9)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def jpeg_with_orientation(image: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", exif=exif.tobytes())


def make_zip(entries: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return buffer.getvalue()


def zip_bomb(uncompressed_bytes: int, entries: int = 1) -> bytes:
    """Entries of zeros: each deflates about a thousandfold, and declares its real size."""
    return make_zip({f"bomb{i}.png": b"\0" * uncompressed_bytes for i in range(entries)})


def lying_zip(real_bytes: int, declared_bytes: int) -> bytes:
    """One entry whose headers claim `declared_bytes` while its compressed stream expands to `real_bytes`."""
    data = make_zip({"liar.png": b"\0" * real_bytes})
    patched = bytearray(data)
    local = patched.find(b"PK\x03\x04")
    central = patched.find(b"PK\x01\x02")
    struct.pack_into("<I", patched, local + 22, declared_bytes)  # uncompressed size, local header
    struct.pack_into("<I", patched, central + 24, declared_bytes)  # uncompressed size, central directory
    return bytes(patched)


def zip_with_symlink(name: str, target: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo(name)
        info.external_attr = (0o120777 << 16) | 0
        archive.writestr(info, target)
    return buffer.getvalue()
