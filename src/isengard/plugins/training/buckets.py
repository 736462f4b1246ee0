"""Multi-resolution aspect-ratio buckets: every image trains near its own shape instead of a square crop.

For each training resolution R the buckets are the sizes with about R*R pixels, sides multiples of a step that the
FLUX latent packing divides (the VAE's 8 times the 2x2 patch), and aspect ratios up to 2:1. An image goes to the
bucket closest to its aspect ratio; a batch is always drawn from one bucket so its tensors stack.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

MAX_ASPECT = 2.0


def bucket_step(resolution: int) -> int:
    # Coarse steps at real resolutions keep the number of buckets (and of shapes to compile) small.
    return 64 if resolution >= 512 else 16


def buckets_for(resolution: int) -> list[tuple[int, int]]:
    """(width, height) sizes of about resolution² pixels, both sides multiples of the bucket step."""
    step = bucket_step(resolution)
    area = resolution * resolution
    sizes = {(resolution, resolution)}
    width = step
    while width <= resolution * MAX_ASPECT:
        height = int(area / width) // step * step
        if height >= step and max(width / height, height / width) <= MAX_ASPECT:
            sizes.add((width, height))
        width += step
    return sorted(sizes)


def nearest_bucket(width: int, height: int, buckets: Sequence[tuple[int, int]]) -> tuple[int, int]:
    aspect = math.log(width / height)
    return min(buckets, key=lambda size: (abs(math.log(size[0] / size[1]) - aspect), -size[0] * size[1]))


def resize_and_crop(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale to cover `size`, then crop the centre (faces are usually near the middle of character photos)."""
    target_w, target_h = size
    scale = max(target_w / image.width, target_h / image.height)
    scaled = image.resize(
        (max(target_w, round(image.width * scale)), max(target_h, round(image.height * scale))),
        Image.Resampling.LANCZOS,
    )
    left = (scaled.width - target_w) // 2
    top = (scaled.height - target_h) // 2
    return scaled.crop((left, top, left + target_w, top + target_h))


def to_model_input(image: Image.Image) -> np.ndarray:
    """RGB pixels as a float32 CHW array in [-1, 1], what the VAE expects (no torchvision on CPU machines)."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return np.ascontiguousarray(array.transpose(2, 0, 1))


@dataclass(frozen=True)
class BucketedItem:
    """One training example: a dataset image at one resolution's bucket."""

    image_index: int
    size: tuple[int, int]


def assign_buckets(image_sizes: Sequence[tuple[int, int]], resolutions: Sequence[int]) -> list[BucketedItem]:
    """Each image at each resolution, except resolutions far above the image's own (upscaling teaches blur)."""
    items: list[BucketedItem] = []
    for index, (width, height) in enumerate(image_sizes):
        usable = [r for r in resolutions if r <= math.sqrt(width * height) * 1.5] or [min(resolutions)]
        for resolution in usable:
            items.append(BucketedItem(index, nearest_bucket(width, height, buckets_for(resolution))))
    return items


class BucketBatchSampler:
    """Endless batches of item indices, each batch from one bucket, in a seeded order that can be saved."""

    def __init__(self, items: Sequence[BucketedItem], batch_size: int, seed: int) -> None:
        by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
        for index, item in enumerate(items):
            by_size[item.size].append(index)
        self.groups = [by_size[size] for size in sorted(by_size)]
        self.batch_size = batch_size
        self.rng = random.Random(seed)
        self.pending: list[list[int]] = []

    def _epoch(self) -> list[list[int]]:
        batches: list[list[int]] = []
        for group in self.groups:
            order = list(group)
            self.rng.shuffle(order)
            # A bucket smaller than the batch still trains: its batch is just smaller.
            batches += [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        self.rng.shuffle(batches)
        return batches

    def next_batch(self) -> list[int]:
        if not self.pending:
            self.pending = self._epoch()
        return self.pending.pop(0)

    def state(self) -> dict[str, object]:
        # The rest of the current epoch is part of the state: a resumed run sees the batches it would have seen.
        return {"rng": self.rng.getstate(), "pending": [list(batch) for batch in self.pending]}

    def load_state(self, state: dict[str, object]) -> None:
        # Serialized copies may turn the state's tuples into lists; random wants tuples back.
        rng_state: Any = state["rng"]
        self.rng.setstate((rng_state[0], tuple(rng_state[1]), rng_state[2]))
        self.pending = [list(batch) for batch in state["pending"]]  # type: ignore[attr-defined]
