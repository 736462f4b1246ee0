"""Image helpers: decode untrusted files, normalize them, and measure what matters for a training dataset.

Every uploaded file goes through `decode_image`: Pillow opens it with only the allowed formats enabled (so no
other decoder, e.g. EPS through Ghostscript, is ever reached), the declared size is checked against the pixel
limit before any pixel is decoded, the file is verified, then fully loaded. Decompression-bomb warnings are
errors. The result has its EXIF orientation applied, its colours converted to sRGB and no metadata left.

Measures:
- `pixel_sha256`: exact-duplicate key. It hashes the decoded, normalized pixels (mode, size, bytes), not the file,
  so the same photo with different metadata or a different container is still caught.
- `dhash`: a 64-bit difference hash for near-duplicates (resized, recompressed, lightly edited copies).
  Two images are near-duplicates when their hashes differ in at most `NEAR_DUPLICATE_MAX_DISTANCE` bits.
- `blur_score`: variance of the Laplacian of a grayscale copy downscaled to fit `ANALYSIS_SIDE` px, so the
  score does not depend on the upload's resolution. Below `BLUR_THRESHOLD` an image is flagged blurry: sharp
  photos at that scale score in the hundreds or thousands; an out-of-focus or heavily smoothed one scores tens.
Both read `analysis_gray`, a small copy reduced straight from the source: measuring never copies a large image at
full size.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageCms, ImageOps, features

from isengard.storage import atomic_path

log = logging.getLogger(__name__)

# Formats accepted for upload (Pillow format names) and what each is stored as (extension, Pillow format).
# AVIF only where this Pillow build decodes it; HEIF (HEIC from phones) through the pillow-heif plugin. Formats
# without an entry in _STORED_AS are stored converted (see `stored_extension`).
_BASE_FORMATS = ("JPEG", "PNG", "WEBP")
_STORED_AS = {"JPEG": ("jpg", "JPEG"), "PNG": ("png", "PNG"), "WEBP": ("webp", "WEBP")}

THUMBNAIL_SIDE = 256
ANALYSIS_SIDE = 512
BLUR_THRESHOLD = 100.0
NEAR_DUPLICATE_MAX_DISTANCE = 8
# Shorter side under this is flagged "small" at upload; the report checks against the chosen training resolution.
SMALL_SIDE = 512
# Longer side over shorter side beyond this crops badly into training buckets.
EXTREME_ASPECT_RATIO = 2.0

FLAG_SMALL = "small"
FLAG_BLURRY = "blurry"
FLAG_EXTREME_ASPECT = "extreme_aspect"
FLAG_NEAR_DUPLICATE = "near_duplicate"
QUALITY_FLAGS = (FLAG_SMALL, FLAG_BLURRY, FLAG_EXTREME_ASPECT, FLAG_NEAR_DUPLICATE)


class ImageRejectedError(ValueError):
    """The file is not an image Isengard accepts; the message says why, for the person who uploaded it."""


@dataclass
class DecodedImage:
    image: Image.Image  # RGB or RGBA, orientation applied, no metadata
    source_format: str  # Pillow format name of the upload

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height


def pixel_limit(max_pixels: int) -> int:
    """The stricter of the setting and Pillow's own bomb threshold.

    An image Pillow would warn about (DecompressionBombWarning) is refused outright, by this explicit check
    rather than a process-wide warnings filter, which threads and test runners can reset under our feet.
    """
    pillow_limit = Image.MAX_IMAGE_PIXELS
    return min(max_pixels, int(pillow_limit)) if pillow_limit else max_pixels


@functools.cache
def _heif_opener_registered() -> bool:
    """Register pillow-heif's HEIC/HEIF opener with Pillow once per process (phones save photos as HEIC)."""
    try:  # a dependency, but without a wheel for some platform the other formats must still work
        import pillow_heif
    except ImportError:
        log.warning("pillow-heif is not installed: HEIC/HEIF uploads are refused")
        return False
    pillow_heif.register_heif_opener()
    return True


def accepted_formats() -> tuple[str, ...]:
    formats = list(_BASE_FORMATS)
    if features.check("avif"):
        formats.append("AVIF")
    if _heif_opener_registered():
        formats.append("HEIF")
    return tuple(formats)


def accepted_formats_text() -> str:
    return ", ".join(accepted_formats())


def decode_image(path: Path, *, max_pixels: int) -> DecodedImage:
    """Open an untrusted file and return the normalized image, or raise ImageRejectedError with the reason."""
    allowed = accepted_formats()
    limit = pixel_limit(max_pixels)
    try:
        with Image.open(path, formats=allowed) as probe:
            source_format = str(probe.format)
            width, height = probe.size
            _check_pixels(width, height, limit)
            probe.verify()
        # verify() leaves the object unusable: open again for the full decode.
        with Image.open(path, formats=allowed) as opened:
            opened.load()
            image = _normalize(opened)
    except ImageRejectedError:
        raise
    except Image.UnidentifiedImageError:
        raise ImageRejectedError(f"not an image in an accepted format ({accepted_formats_text()})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejectedError(f"image declares more pixels than the limit of {limit:,}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Truncated or corrupt data: Pillow raises OSError ("image file is truncated"), SyntaxError (bad chunks)...
        raise ImageRejectedError(f"the image data is damaged or incomplete ({_short(exc)})") from None
    return DecodedImage(image=image, source_format=source_format)


def declared_pixels(path: Path) -> int:
    """Width x height from the file's header (nothing decoded); 0 when it is not an accepted image."""
    try:
        with Image.open(path, formats=accepted_formats()) as probe:
            width, height = probe.size
            return int(width) * int(height)
    except Exception:  # anything unreadable is refused later by decode_image, with its reason
        return 0


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageRejectedError("image has no pixels")
    if width * height > max_pixels:
        raise ImageRejectedError(f"image is {width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,}")


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


# Single-channel modes with more than 8 bits per pixel (16-bit greyscale PNG opens as one of these).
_WIDE_GREY_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


def _eight_bit_grey(image: Image.Image) -> Image.Image:
    """16-bit greyscale scaled to 8 bits (0..65535 to 0..255); `convert("L")` would clip everything above 255."""
    wide = np.asarray(image).astype(np.float32)
    return Image.fromarray(np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8), mode="L")


def _normalize(opened: Image.Image) -> Image.Image:
    """Orientation applied, sRGB, RGB or RGBA, no metadata carried along."""
    # exif_transpose copies even when there is nothing to turn: only call it when there is, so a large image
    # is held twice at most (the decoded file and the normalized result), not three times.
    turned = opened.getexif().get(ExifTags.Base.Orientation, 1) not in (0, 1)
    image = (ImageOps.exif_transpose(opened) or opened) if turned else opened
    if image.mode in _WIDE_GREY_MODES:
        image = _eight_bit_grey(image)
    icc = opened.info.get("icc_profile")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    target_mode = "RGBA" if has_alpha else "RGB"
    converted: Image.Image | None = None
    if icc and image.mode in ("RGB", "RGBA", "CMYK", "L"):
        converted = _to_srgb(image, icc, target_mode)
    if converted is None:
        converted = image.convert(target_mode) if image.mode != target_mode else image.copy()
    # Saving never sees EXIF, XMP, ICC or text chunks: they are gone with the info dict.
    converted.info = {}
    return converted


def _to_srgb(image: Image.Image, icc: bytes, target_mode: str) -> Image.Image | None:
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        srgb = ImageCms.createProfile("sRGB")
        out_mode = target_mode if image.mode in ("RGB", "RGBA") else "RGB"
        result = ImageCms.profileToProfile(image, source, srgb, outputMode=out_mode)
        if result is None:
            return None
        return result if result.mode == target_mode else result.convert(target_mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        # A broken embedded profile is not worth refusing the photo for: keep the pixels as they are.
        log.info("ignored an unusable colour profile")
        return None


def stored_extension(source_format: str, image: Image.Image) -> tuple[str, str]:
    """(extension, Pillow format) an upload is stored as; formats the trainer may lack a decoder for become JPEG/PNG."""
    if source_format in _STORED_AS:
        return _STORED_AS[source_format]
    return ("png", "PNG") if image.mode == "RGBA" else ("jpg", "JPEG")


def save_image(image: Image.Image, target: Path, pil_format: str) -> None:
    """Write atomically, without metadata. JPEG at high quality and full chroma: these are training inputs."""
    options: dict[str, object] = {}
    if pil_format == "JPEG":
        options = {"quality": 95, "subsampling": 0}
        if image.mode != "RGB":
            image = image.convert("RGB")
    elif pil_format == "WEBP":
        options = {"quality": 95, "method": 4}
    elif pil_format == "PNG":
        options = {"compress_level": 6}
    with atomic_path(target) as tmp:
        image.save(tmp, format=pil_format, **options)


def make_thumbnail(image: Image.Image, target: Path, size: int = THUMBNAIL_SIDE) -> None:
    """Write a WebP thumbnail that fits in sizexsize (aspect kept, never enlarged), atomically.

    Resized straight from the source (reducing by whole factors first), never from a full-size copy: a large
    upload costs its decoded pixels once, not twice."""
    scale = min(1.0, size / max(image.width, image.height))
    fitted = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    thumb = image.resize(fitted, Image.Resampling.LANCZOS, reducing_gap=3.0) if scale < 1.0 else image.copy()
    if thumb.mode not in ("RGB", "RGBA"):
        thumb = thumb.convert("RGBA" if "A" in thumb.getbands() else "RGB")
    thumb.info = {}
    with atomic_path(target) as tmp:
        thumb.save(tmp, format="WEBP", quality=80, method=4)


HASH_STRIP_ROWS = 256


def pixel_sha256(image: Image.Image) -> str:
    """SHA-256 of mode, size and raw pixel rows. Hashed a strip of rows at a time: the same digest as hashing
    `tobytes()` whole, without a second full-size copy of a large image in memory."""
    digest = hashlib.sha256()
    digest.update(f"{image.mode}:{image.width}x{image.height}:".encode())
    for top in range(0, image.height, HASH_STRIP_ROWS):
        digest.update(image.crop((0, top, image.width, min(image.height, top + HASH_STRIP_ROWS))).tobytes())
    return digest.hexdigest()


def analysis_gray(image: Image.Image) -> Image.Image:
    """A grayscale copy that fits ANALYSIS_SIDE (never enlarged), the input of every measure below.

    Reduced by whole factors from the source before anything else (Pillow's `reducing_gap`), then converted: a
    large upload is never copied at full size to be measured. Already small and grayscale: returned as it is."""
    longest = max(image.size)
    if longest > ANALYSIS_SIDE:
        scale = ANALYSIS_SIDE / longest
        fitted = (max(3, round(image.width * scale)), max(3, round(image.height * scale)))
        image = image.resize(fitted, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return image if image.mode == "L" else image.convert("L")


def dhash(image: Image.Image, hash_side: int = 8) -> str:
    """Difference hash: compare neighbouring pixels of a tiny grayscale copy; 64 bits as 16 hex digits."""
    small = analysis_gray(image).resize((hash_side + 1, hash_side), Image.Resampling.LANCZOS)
    pixels = np.asarray(small, dtype=np.int16)
    bits = (pixels[:, 1:] > pixels[:, :-1]).flatten()
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return f"{value:0{hash_side * hash_side // 4}x}"


def hamming_distance(left: str, right: str) -> int:
    return (int(left, 16) ^ int(right, 16)).bit_count()


def blur_score(image: Image.Image) -> float:
    """Variance of the 4-neighbour Laplacian on the analysis copy (fits ANALYSIS_SIDE, so resolution-independent)."""
    a = np.asarray(analysis_gray(image), dtype=np.float32)
    if a.shape[0] < 3 or a.shape[1] < 3:
        return 0.0
    laplacian = a[:-2, 1:-1] + a[2:, 1:-1] + a[1:-1, :-2] + a[1:-1, 2:] - 4.0 * a[1:-1, 1:-1]
    return float(laplacian.var())


def aspect_ratio(width: int, height: int) -> float:
    return max(width, height) / max(1, min(width, height))


def quality_flags(width: int, height: int, blur: float | None, *, near_duplicate: bool = False) -> list[str]:
    flags: list[str] = []
    if min(width, height) < SMALL_SIDE:
        flags.append(FLAG_SMALL)
    if blur is not None and blur < BLUR_THRESHOLD:
        flags.append(FLAG_BLURRY)
    if aspect_ratio(width, height) > EXTREME_ASPECT_RATIO:
        flags.append(FLAG_EXTREME_ASPECT)
    if near_duplicate:
        flags.append(FLAG_NEAR_DUPLICATE)
    return flags


def encode_flags(flags: list[str]) -> str:
    """Comma-wrapped (",small,blurry,") so `LIKE '%,small,%'` finds one flag on any database."""
    return f",{','.join(flags)}," if flags else ""


def decode_flags(stored: str) -> list[str]:
    return [flag for flag in stored.split(",") if flag]
