"""The tiny models of fast-test mode: one per base family, built from the family's tiny config (models/bases/).

Every component of the family's real pipeline at toy sizes with random weights from a fixed seed, saved to a folder
and loaded back with `from_pretrained` exactly like the full-size base. Nothing is downloaded. About a megabyte on
disk; a training step takes milliseconds on a CPU. Bases of one family share their tiny model.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from isengard.models.bases import DEFAULT_BASE, get_base
from isengard.models.bases.flux1 import DEFAULT_SHAPE, QUANTIZABLE_SHAPE, TinyShape
from isengard.models.locate import tiny_model_dir

__all__ = [
    "DEFAULT_SHAPE",
    "QUANTIZABLE_SHAPE",
    "TINY_SEED",
    "TinyShape",
    "build_tiny_pipeline",
    "ensure_tiny_model",
    "save_tiny_model",
]

log = logging.getLogger(__name__)

TINY_SEED = 20241124
DISTILLED_SEED_OFFSET = 1  # the tiny distilled sibling: other weights than its base's
TINY_VERSION = 1  # bump when a recipe changes so old folders are rebuilt
MARKER = "isengard_tiny.json"


def build_tiny_pipeline(seed: int = TINY_SEED, shape: Any | None = None, *, base: str = DEFAULT_BASE) -> Any:
    """The tiny pipeline of `base`'s family in memory (random weights, deterministic for a seed)."""
    return get_base(base).family.build_tiny(seed, shape)


def _is_current(folder: Path) -> bool:
    marker = folder / MARKER
    if not (folder / "model_index.json").exists() or not marker.exists():
        return False
    try:
        return bool(json.loads(marker.read_text()).get("version") == TINY_VERSION)
    except ValueError:
        return False


def save_tiny_model(folder: Path, seed: int = TINY_SEED, shape: Any | None = None, *, base: str = DEFAULT_BASE) -> Path:
    """Build and save `base`'s tiny model into `folder` atomically (built beside it, then renamed); `shape`: the
    family's widths (its default when None; `family.tiny_quantizable_shape` for the quantized profiles)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.building")
    shutil.rmtree(staging, ignore_errors=True)
    build_tiny_pipeline(seed, shape, base=base).save_pretrained(staging)
    (staging / MARKER).write_text(json.dumps({"version": TINY_VERSION, "seed": seed, "base": base}))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


def ensure_tiny_model(settings: Any, base: str = DEFAULT_BASE, *, distilled: bool = False) -> Path:
    """`base`'s tiny model folder under the data dir (one per family), built on first use; `distilled`: the tiny
    stand-in of its distilled sibling (the same architecture, other weights)."""
    folder = tiny_model_dir(settings, base, distilled=distilled)
    if not _is_current(folder):
        log.info("building a tiny fast-test model", extra={"path": str(folder), "base": base, "distilled": distilled})
        save_tiny_model(folder, TINY_SEED + DISTILLED_SEED_OFFSET if distilled else TINY_SEED, base=base)
    return folder
