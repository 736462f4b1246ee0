"""A real in-process JobContext that keeps everything a plugin reports, for tests that run a plugin without the worker.

Training and image plugins both run against it: it records progress, logs, samples and artifacts in lists, can
cancel at a training step or after a number of image-generation steps, and finds resumable checkpoints by the same
convention as the worker (`work_dir/checkpoints/step-NNNNNN/` holding a `COMPLETE` marker).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from isengard.domain import ArtifactKind
from isengard.plugins.api import Artifact, JobCancelled, PluginError
from isengard.worker.context import latest_checkpoint_in


@dataclass(frozen=True)
class ProgressReport:
    step: int
    total: int
    loss: float | None = None
    lr: float | None = None
    stage: str | None = None


@dataclass(frozen=True)
class LogLine:
    level: str
    message: str
    fields: dict[str, Any]


class RecordingContext:
    """Satisfies `isengard.plugins.api.JobContext`; the lists below are what tests assert on.

    - `progress`: every `report_progress` call, in order.
    - `samples`: images registered with `emit_sample` (not in `artifacts`, as on the run page).
    - `artifacts`: files registered with `save_artifact`; `removed` those later removed (they stay in
      `artifacts`, so a test can see everything that was ever saved).
    - `logs`: every `log` call.
    - `captions`: image id -> caption of every `save_caption` call that wrote (an existing caption is kept unless
      the call overwrites, as in the worker); seed it with the captions the images already have.
    """

    def __init__(
        self,
        data_dir: Path,
        base_model_path: Path,
        *,
        work_dir: Path | None = None,
        job_id: str | None = None,
        attempt: int = 1,
        mode: str = "fast-test",
        cancel_at_step: int | None = None,
        cancel_after_generating: int | None = None,
    ) -> None:
        """`cancel_at_step`: cancelled once a reported step reaches it (training).
        `cancel_after_generating`: cancelled after that many progress reports with stage "generating" (images).
        """
        self.job_id = job_id or uuid.uuid4().hex
        self.attempt = attempt
        self.data_dir = data_dir
        self.work_dir = work_dir or data_dir / "outputs" / "unassigned" / self.job_id
        self.mode = mode
        self.base_model_path = base_model_path
        self.cancel_at_step = cancel_at_step
        self.cancel_after_generating = cancel_after_generating
        self.cancel_requested = False  # set from another thread to cancel at once
        self.progress: list[ProgressReport] = []
        self.samples: list[Artifact] = []
        self.artifacts: list[Artifact] = []
        self.removed: list[Artifact] = []
        self.logs: list[LogLine] = []
        self.captions: dict[str, str] = {}
        self.work_dir.mkdir(parents=True, exist_ok=True)

    # --- JobContext ---------------------------------------------------------------------------------------------

    def base_model_dir(self, base: str, *, distilled: bool = False) -> Path:
        """The given model folder for a base of its family; another family's tiny model built beside it; a distilled
        sibling as the tiny model of other weights."""
        from isengard.models.bases import family_of_folder, get_base
        from isengard.models.tiny import DISTILLED_SEED_OFFSET, TINY_SEED, save_tiny_model

        spec = get_base(base)
        if distilled:
            if spec.distilled_repo_id is None:
                raise PluginError(f"{spec.label} has no distilled checkpoint")
            folder = self.base_model_path.parent / f"tiny-{spec.family.name}-distilled"
            if not (folder / "model_index.json").exists():
                save_tiny_model(folder, TINY_SEED + DISTILLED_SEED_OFFSET, base=base)
            return folder
        if family_of_folder(self.base_model_path) is spec.family:
            return self.base_model_path
        folder = self.base_model_path.parent / f"tiny-{spec.family.name}"
        if not (folder / "model_index.json").exists():
            save_tiny_model(folder, base=base)
        return folder

    def report_progress(
        self,
        step: int,
        total: int,
        *,
        loss: float | None = None,
        lr: float | None = None,
        stage: str | None = None,
    ) -> None:
        self.progress.append(ProgressReport(step=step, total=total, loss=loss, lr=lr, stage=stage))

    def emit_sample(self, path: Path, *, step: int, index: int = 0, prompt: str = "") -> Artifact:
        artifact = self._artifact(path, ArtifactKind.SAMPLE, None, step, {"index": index, "prompt": prompt})
        self.samples.append(artifact)
        return artifact

    def save_artifact(
        self,
        path: Path,
        kind: ArtifactKind,
        *,
        name: str | None = None,
        step: int | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Artifact:
        artifact = self._artifact(path, kind, name, step, meta)
        self.artifacts.append(artifact)
        return artifact

    def is_cancelled(self) -> bool:
        if self.cancel_requested:
            return True
        if self.cancel_at_step is not None:
            done = max((p.step for p in self.progress), default=0)
            if done >= self.cancel_at_step:
                return True
        if self.cancel_after_generating is not None:
            generating = sum(1 for p in self.progress if p.stage == "generating")
            if generating >= self.cancel_after_generating:
                return True
        return False

    def raise_if_cancelled(self) -> None:
        if self.is_cancelled():
            raise JobCancelled("cancelled by the test")

    def log(self, message: str, level: str = "info", **fields: Any) -> None:
        self.logs.append(LogLine(level=level, message=message, fields=fields))

    def remove_artifact(self, artifact: Artifact) -> None:
        (self.data_dir / artifact.path).unlink(missing_ok=True)
        self.removed.append(artifact)

    def recorded_artifacts(self) -> list[Artifact]:
        removed = {artifact.id for artifact in self.removed}
        return [a for a in [*self.artifacts, *self.samples] if a.id not in removed]

    def save_caption(
        self, image_id: str, caption: str, *, index: int, total: int, overwrite: bool, replaces: str = ""
    ) -> bool:
        current = self.captions.get(image_id, "")
        if current.strip() and not overwrite and not (replaces.strip() and current == replaces):
            return False
        self.captions[image_id] = caption
        return True

    def latest_checkpoint(self) -> Path | None:
        return latest_checkpoint_in(self.work_dir)

    # --- Helpers for assertions -----------------------------------------------------------------------------------

    def losses(self) -> dict[int, float]:
        """Training loss by step."""
        return {p.step: p.loss for p in self.progress if p.loss is not None}

    def validation_losses(self) -> list[float]:
        """The fixed-batch validation losses the trainer logged, in order."""
        return [line.fields["validation_loss"] for line in self.logs if "validation_loss" in line.fields]

    def _artifact(
        self, path: Path, kind: ArtifactKind, name: str | None, step: int | None, meta: dict[str, Any] | None
    ) -> Artifact:
        # The contract: a plugin registers only finished files it wrote under its own work_dir. A missing file is
        # refused as the worker's context refuses it.
        if not path.exists():
            raise PluginError(f"artifact {path.name} does not exist")
        assert self.work_dir.resolve() in path.resolve().parents, f"{path} is outside the job's work_dir"
        return Artifact(
            id=uuid.uuid4().hex,
            kind=kind,
            path=path.resolve().relative_to(self.data_dir.resolve()).as_posix(),
            name=name or path.name,
            step=step,
            meta=dict(meta or {}),
        )
