"""Writing generated images: a PNG with every parameter embedded, a WebP thumbnail, and the OUTPUT artifact."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from isengard.domain import ArtifactKind
from isengard.plugins.api import Artifact, JobContext, atomic_write_bytes, make_thumbnail

THUMBNAIL_SIZE = 256
# The text chunks written one per field, so any PNG viewer shows them without parsing JSON.
TEXT_FIELDS = ("prompt", "seed", "width", "height", "steps", "guidance", "base_model", "plugin")


def write_thumbnail(image: Image.Image, target: Path) -> None:
    make_thumbnail(image, target, size=THUMBNAIL_SIZE)


def png_info(params: dict[str, Any]) -> PngInfo:
    info = PngInfo()
    for key in TEXT_FIELDS:
        if params.get(key) is not None:
            info.add_text(key, str(params[key]))
    info.add_text("loras", json.dumps(params.get("loras", [])))
    info.add_text("isengard", json.dumps(params, sort_keys=True, default=str))
    # The lines A1111-style readers (and many gallery tools) show: one block per rendered image, so a grid's
    # cells each say their own prompt, seed, size and LoRA.
    renders = params.get("cells") or [params]
    info.add_text("parameters", "\n\n".join(_parameters_line({**params, **render}) for render in renders))
    return info


def _parameters_line(params: dict[str, Any]) -> str:
    loras = ", ".join(
        f"{lora.get('name') or lora.get('lora_id')}:{lora.get('weight')}" for lora in params.get("loras", [])
    )
    return (
        f"{params.get('prompt', '')}\nSteps: {params.get('steps')}, Seed: {params.get('seed')}, "
        f"Size: {params.get('width')}x{params.get('height')}, Guidance: {params.get('guidance')}, "
        f"Model: {params.get('base_model')}" + (f", LoRAs: {loras}" if loras else "")
    )


def read_png_params(path: Path) -> dict[str, Any]:
    """The parameters embedded by `save_output` (the `isengard` chunk)."""
    with Image.open(path) as image:
        text = getattr(image, "text", {}) or image.info
        raw = text.get("isengard")
    return dict(json.loads(raw)) if raw else {}


def save_output(ctx: JobContext, image: Image.Image, stem: str, params: dict[str, Any]) -> Artifact:
    """Save one image under the job's folder and register it; `params` become PNG text and artifact metadata."""
    target = ctx.work_dir / f"{stem}.png"
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=png_info(params))
    atomic_write_bytes(target, buffer.getvalue())
    thumb = ctx.work_dir / "thumbnails" / f"{stem}.webp"
    write_thumbnail(image, thumb)
    meta = dict(params)
    meta["thumbnail_path"] = thumb.resolve().relative_to(ctx.data_dir.resolve()).as_posix()
    return ctx.save_artifact(target, ArtifactKind.OUTPUT, name=target.name, meta=meta)
