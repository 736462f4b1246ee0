"""The captioning plugin interface: a config model, `capabilities()`, and `caption(ctx, images, config, instruction)`.

A plugin only turns images into text. The job around it is the same for every captioner and lives here: batches,
cancellation between batches, the caption style pass (trigger word, length, identity words), storing each caption
through the context (never over an existing one unless the job says so) and per-image progress.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from isengard.domain import PluginKind
from isengard.plugins.api import CaptionStyle, JobContext, Plugin, PluginError, apply_style, instruction

STAGE = "captioning"


class CaptionTarget(BaseModel):
    """One image to caption: its id and its file, relative to the data dir."""

    image_id: str
    image_path: str
    # The placeholder caption the image had when the job was queued ("a photo of [trigger]"): it may be replaced
    # like an empty one, while a caption typed meanwhile is kept.
    replaces: str = ""


class CaptionJob(BaseModel):
    """The payload of a caption job, snapshotted when it is submitted."""

    model_config = ConfigDict(extra="forbid")

    character_id: str
    images: list[CaptionTarget] = Field(min_length=1)
    style: CaptionStyle = Field(default_factory=CaptionStyle)
    overwrite: bool = False
    config: dict[str, Any] = Field(default_factory=dict)


class CaptionPlugin(Plugin):
    kind: ClassVar[PluginKind] = PluginKind.CAPTION
    config_model: ClassVar[type[BaseModel]]

    def validate_config(self, config: dict[str, Any]) -> BaseModel:
        return self.config_model.model_validate(config)

    def batch_size(self, config: BaseModel) -> int:
        """Images per `caption` call; a config field `batch_size` sets it."""
        return max(1, int(getattr(config, "batch_size", 1)))

    @abstractmethod
    def caption(self, ctx: JobContext, images: Sequence[Path], config: BaseModel, instruction: str) -> list[str]:
        """One raw caption per image, in order. `instruction` is the request to put to the model with each image."""

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        job = CaptionJob.model_validate(payload)
        config = self.validate_config(job.config)
        prompt = instruction(job.style)
        size = self.batch_size(config)
        total = len(job.images)
        counts = {"captioned": 0, "kept": 0, "missing": 0}
        ctx.report_progress(0, total, stage=STAGE)
        for start in range(0, total, size):
            ctx.raise_if_cancelled()
            batch = list(enumerate(job.images[start : start + size], start=start + 1))
            # An image deleted since the job was submitted has nothing to caption: skip it, caption the rest.
            present = [(index, target) for index, target in batch if (ctx.data_dir / target.image_path).is_file()]
            for index, target in batch:
                if (index, target) not in present:
                    counts["missing"] += 1
                    ctx.log(f"image {target.image_id} is gone; skipped", level="warning", image_id=target.image_id)
            paths = [ctx.data_dir / target.image_path for _index, target in present]
            raw = self.caption(ctx, paths, config, prompt) if paths else []
            if len(raw) != len(paths):
                raise PluginError(f"caption plugin '{self.name}' returned {len(raw)} captions for {len(paths)} images")
            for (index, target), text in zip(present, raw, strict=True):
                caption = apply_style(text, job.style)
                stored = ctx.save_caption(
                    target.image_id,
                    caption,
                    index=index,
                    total=total,
                    overwrite=job.overwrite,
                    replaces=target.replaces,
                )
                counts["captioned" if stored else "kept"] += 1
            ctx.report_progress(min(start + size, total), total, stage=STAGE)
        ctx.log(
            f"captioned {counts['captioned']} image(s); kept {counts['kept']} existing caption(s)",
            captioned=counts["captioned"],
            kept=counts["kept"],
            missing=counts["missing"],
        )
        if not counts["missing"]:
            del counts["missing"]
        return {**counts, "images": total}
