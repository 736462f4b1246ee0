"""The evaluation job of any LoRA (imported, or an older run's): render its fixed prompts x seeds with an image
plugin, one image at a time, and score each against the character's references as training samples are scored.

The rows x seeds are the comparison grid's (`grid_cells` over a one-column spec), each rendered as an ordinary
single-image request of the image plugin, so what is scored is exactly what Generate would make. Progress is
reported per image (the job's SSE stream carries it) and a cancel stops between two images.
"""

from __future__ import annotations

from pathlib import Path
from statistics import fmean
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session, sessionmaker

from isengard.evaluation.records import save_score, save_setup
from isengard.evaluation.scorer import RunScorer
from isengard.plugins.api import JobContext, Plugin, PluginError
from isengard.plugins.image.grid import grid_cells
from isengard.plugins.image.request import GridColumn, GridSpec
from isengard.plugins.registry import PluginRegistry

STAGE = "evaluating"


class LoraEvaluationJob(BaseModel):
    """The payload of an evaluation job, snapshotted at submission."""

    model_config = ConfigDict(extra="forbid")

    lora_id: str
    step: int = 0  # the LoRA's training step when known: the row its scores are filed under
    prompts: list[str] = Field(min_length=1, max_length=8)
    seeds: list[int] = Field(min_length=1, max_length=8)
    # The image plugin's validated request without prompt and seed (LoRA, size, steps, trigger word...).
    request: dict[str, Any]
    references: list[str] = Field(default_factory=list)  # the character's photos, relative to the data dir
    trigger_word: str = ""


class _CellContext:
    """The job's context with a folder of its own per rendered image: image plugins name their files by index and
    seed, which repeat from one prompt to the next."""

    def __init__(self, ctx: JobContext, work_dir: Path) -> None:
        self._ctx = ctx
        self.work_dir = work_dir
        work_dir.mkdir(parents=True, exist_ok=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


def run_lora_evaluation(
    ctx: JobContext,
    plugin: Plugin,
    payload: dict[str, Any],
    registry: PluginRegistry,
    sessions: sessionmaker[Session],
) -> dict[str, Any]:
    job = LoraEvaluationJob.model_validate(payload)
    spec = GridSpec(prompts=job.prompts, seeds=job.seeds, columns=[GridColumn(label="lora")])
    cells = grid_cells(spec)
    scorer = RunScorer(registry, sessions, [ctx.data_dir / path for path in job.references], job.trigger_word)
    setup = scorer.prepare()
    save_setup(sessions, ctx.job_id, setup)
    if setup.unavailable:
        ctx.log(f"identity scores not available: {setup.unavailable}", level="warning")
    else:
        ctx.log(f"scoring with {setup.choice}")
    ctx.report_progress(0, len(cells), stage=STAGE)
    identities: list[float] = []
    adherences: list[float] = []
    for index, cell in enumerate(cells):
        ctx.raise_if_cancelled()
        cell_ctx = _CellContext(ctx, ctx.work_dir / f"image-{index:02d}")
        request = {**job.request, "prompt": cell.prompt, "seed": cell.seed, "num_images": 1}
        result = plugin.run(cell_ctx, request)  # type: ignore[arg-type]  # a JobContext by delegation
        artifact_ids = set(result.get("artifact_ids") or [])
        rendered = [artifact for artifact in ctx.recorded_artifacts() if artifact.id in artifact_ids]
        if not rendered:
            raise PluginError(f"the image plugin '{plugin.name}' returned no image for '{cell.prompt}'")
        artifact = rendered[0]
        score = scorer.score(ctx.data_dir / artifact.path, step=job.step, index=index, prompt=cell.prompt)
        save_score(sessions, ctx.job_id, artifact.id, cell.prompt, score)
        if score.identity is not None:
            identities.append(score.identity)
        if score.adherence is not None:
            adherences.append(score.adherence)
        ctx.report_progress(index + 1, len(cells), stage=STAGE)
    summary: dict[str, Any] = {"images": len(cells), "lora_id": job.lora_id}
    summary["identity"] = round(fmean(identities), 4) if identities else None
    summary["adherence"] = round(fmean(adherences), 4) if adherences else None
    if setup.unavailable:
        summary["unavailable"] = setup.unavailable
    return summary
