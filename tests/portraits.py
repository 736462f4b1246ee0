"""Real portrait photographs installed with scientific Python packages (nothing is downloaded): scikit-image's
astronaut (Eileen Collins) and matplotlib's Grace Hopper, two different people, plus the augmentations under
which a face model must still see the same person."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import skimage.data
from PIL import Image, ImageEnhance, ImageOps


def astronaut() -> Image.Image:
    """Eileen Collins, head and shoulders (the full picture also holds a patch a detector may take for a face)."""
    return Image.fromarray(skimage.data.astronaut()).crop((40, 0, 400, 300))


def grace_hopper() -> Image.Image:
    with Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg") as opened:
        return opened.convert("RGB")


def augmentations(image: Image.Image) -> dict[str, Image.Image]:
    """The same photo cropped, flipped, scaled, darkened and brightened."""
    width, height = image.size
    gamma = np.clip(255 * (np.asarray(image, dtype=np.float32) / 255) ** 1.6, 0, 255).astype(np.uint8)
    return {
        "crop": image.crop((width // 10, 0, width - width // 10, height - height // 8)),
        "flip": ImageOps.mirror(image),
        "scale": image.resize((width * 2 // 3, height * 2 // 3), Image.Resampling.BICUBIC),
        "dark": Image.fromarray(gamma),
        "bright": ImageEnhance.Brightness(image).enhance(1.35),
    }


def side_by_side(left: Image.Image, right: Image.Image) -> Image.Image:
    canvas = Image.new("RGB", (left.width + right.width, max(left.height, right.height)), "white")
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width, 0))
    return canvas
