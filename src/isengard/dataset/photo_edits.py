"""A dataset photo's edit: a quarter-turn rotation, then a crop, always applied to the kept original.

An edit is a description, not a series of changes: each new edit replaces the last and is drawn from the original
again, so rotating and cropping many times never loses pixels, and undo is "no edit". The original the edit starts
from is the stored upload, which already has its EXIF orientation applied (see imaging.decode_image): the rotation
and crop are in the coordinates a person sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image

ROTATIONS = (0, 90, 180, 270)  # clockwise, as a person turns a photo
# How much of the photo around a detected face a face crop keeps: the face box widened this many times, so hair,
# chin and a little of the shoulders stay (the face alone trains a LoRA that only knows close-ups).
FACE_CONTEXT = 2.2
FACE_RAISE = 0.1  # the crop's centre sits this share of the face height above the face's, for the hair


@dataclass(frozen=True)
class Box:
    """A rectangle in pixels: left and top inclusive, right and bottom exclusive."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def as_list(self) -> list[int]:
        return [self.left, self.top, self.right, self.bottom]


class EditError(ValueError):
    """An edit that cannot apply to this photo (a crop outside it, too small)."""


MIN_SIDE = 16


def rotated_size(width: int, height: int, rotate: int) -> tuple[int, int]:
    return (height, width) if rotate in (90, 270) else (width, height)


def apply_edit(original: Image.Image, rotate: int, crop: Box | None) -> Image.Image:
    """The edited photo: `original` turned `rotate` degrees clockwise, then cropped to `crop` (in turned pixels)."""
    if rotate not in ROTATIONS:
        raise EditError(f"rotate must be one of {', '.join(map(str, ROTATIONS))} degrees")
    turned = original.rotate(-rotate, expand=True) if rotate else original
    if crop is None:
        return turned if turned is not original else original.copy()
    check_crop(crop, turned.width, turned.height)
    return turned.crop((crop.left, crop.top, crop.right, crop.bottom))


def check_crop(crop: Box, width: int, height: int) -> None:
    if crop.left < 0 or crop.top < 0 or crop.right > width or crop.bottom > height:
        raise EditError(f"the crop {crop.as_list()} reaches outside the {width}x{height} photo")
    if crop.width < MIN_SIDE or crop.height < MIN_SIDE:
        raise EditError(f"the crop must be at least {MIN_SIDE}x{MIN_SIDE} pixels")


def aspect_box(width: int, height: int, ratio: float, *, centre: tuple[float, float] | None = None) -> Box:
    """The largest box of `ratio` (width / height) inside a width x height photo, centred on `centre` as far as the
    edges allow (the photo's centre by default)."""
    if ratio <= 0:
        raise EditError("the aspect ratio must be positive")
    box_width = min(width, round(height * ratio))
    box_height = min(height, round(box_width / ratio))
    cx, cy = centre if centre is not None else (width / 2, height / 2)
    left = min(max(0, round(cx - box_width / 2)), width - box_width)
    top = min(max(0, round(cy - box_height / 2)), height - box_height)
    return Box(left, top, left + box_width, top + box_height)


def face_crop(face: Box, width: int, height: int, ratio: float | None) -> Box:
    """A crop around a detected face with some of the head and shoulders, of `ratio` when given (else square),
    kept inside the photo."""
    ratio = ratio or 1.0
    side = max(face.width, face.height) * FACE_CONTEXT
    box_width, box_height = (side, side / ratio) if ratio <= 1 else (side * ratio, side)
    box_width, box_height = min(box_width, width), min(box_height, height)
    # Shrink to the ratio again if an edge cut one side.
    if box_width / box_height > ratio:
        box_width = box_height * ratio
    else:
        box_height = box_width / ratio
    cx = (face.left + face.right) / 2
    cy = (face.top + face.bottom) / 2 - face.height * FACE_RAISE
    left = min(max(0, round(cx - box_width / 2)), width - round(box_width))
    top = min(max(0, round(cy - box_height / 2)), height - round(box_height))
    return Box(left, top, left + round(box_width), top + round(box_height))


def edit_record(rotate: int, crop: Box | None, original: tuple[int, int]) -> dict[str, Any]:
    """What the image row keeps of an edit: enough to draw it again from the original, and to say what it was."""
    return {
        "rotate": rotate,
        "crop": crop.as_list() if crop is not None else None,
        "original_width": original[0],
        "original_height": original[1],
    }
