"""The JobContext a plugin runs in: progress, samples, artifacts, logs, cancellation, checkpoints.

Every event goes to the job's Redis stream at once (live view); what must outlive Redis (loss points, logs,
samples, artifacts, status) is written to the database too, batched at most about twice a second so a fast
training loop does not wait on the disk.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import redis

from isengard.config import Mode, Settings
from isengard.domain import (
    ArtifactEvent,
    ArtifactKind,
    CaptionEvent,
    CheckpointEvent,
    JobKind,
    LogEvent,
    ProgressEvent,
    SampleEvent,
    artifact_url,
)
from isengard.jobs.artifacts import JobSnapshot, artifacts_of, forget_artifact, record_artifact
from isengard.jobs.history import should_persist
from isengard.jobs.records_caption import record_caption
from isengard.jobs.states import JobStates
from isengard.logging import RESERVED_RECORD_FIELDS
from isengard.plugins.api import Artifact, JobCancelled, JobInterrupted, PluginError
from isengard.plugins.checkpoint_folders import latest_checkpoint_in
from isengard.queue import jobs as queue
from isengard.storage import DataTree, UnsafePathError
from isengard.worker.scoring import PendingSample, SampleScoring

log = logging.getLogger("isengard.job")

DB_FLUSH_INTERVAL_SECONDS = 0.5
CANCEL_POLL_SECONDS = 0.2  # how often the Redis cancel flag is read at most
DB_CANCEL_POLL_SECONDS = 2.0  # the database flag survives a Redis flush; read it less often
LOSS_EMA_BETA = 0.9
RATE_WINDOW = 50  # progress reports the it/s estimate looks back over
TRAINING_STAGE = "training"  # the stage whose steps are a run's measured speed

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def job_work_dir(data: DataTree, job: JobSnapshot) -> Path:
    if job.kind == JobKind.TRAINING:
        return data.loras(job.character_id or "unassigned") / job.id
    if job.kind == JobKind.GENERATION:
        return data.outputs(job.character_id or "unassigned") / job.id
    return data.job_dir(job.id)


def _path_bytes(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


class WorkerJobContext:
    """The worker's implementation of `isengard.plugins.api.JobContext` for one attempt of one job."""

    def __init__(
        self,
        *,
        settings: Settings,
        states: JobStates,
        job: JobSnapshot,
        attempt: int,
        worker_id: str,
        shutdown: threading.Event,
        lease_lost: threading.Event,
    ) -> None:
        self.settings = settings
        self.states = states
        self.redis = states.redis
        self.job = job
        self.job_id = job.id
        self.attempt = attempt
        self.worker_id = worker_id
        self.data = DataTree(settings.data_path)
        self.data_dir = self.data.root
        self.work_dir = job_work_dir(self.data, job)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.mode = settings.resolved_mode.value
        self._base_model_path: Path | None = None
        self._shutdown = shutdown
        self._lease_lost = lease_lost
        self.user_cancelled = False
        self.timed_out = False
        self._started = time.monotonic()
        self._last_cancel_check = 0.0
        self._last_db_cancel_check = time.monotonic()
        # Progress bookkeeping.
        self._ema: float | None = None
        self._rate: deque[tuple[int, float]] = deque(maxlen=RATE_WINDOW)
        self._pending_rows: list[Any] = []
        self._pending_progress: dict[str, Any] | None = None
        self._last_flush = 0.0
        self.last_step: int | None = None
        # (step, time) of the first and latest training steps reported: the run's measured speed.
        self._training: list[tuple[int, float]] = []
        # Training runs: each sample is handed to this scoring thread as it is made.
        self.scoring: SampleScoring | None = None

    # --- Paths --------------------------------------------------------------------------------------------------

    @property
    def base_model_path(self) -> Path:
        # Resolved on first use: a job that never loads the model does not pay for building the tiny one.
        if self._base_model_path is None:
            from isengard.models.locate import configured_base

            self._base_model_path = self.base_model_dir(configured_base(self.settings))
        return self._base_model_path

    @base_model_path.setter
    def base_model_path(self, value: Path) -> None:
        self._base_model_path = value

    def base_model_dir(self, base: str, *, distilled: bool = False) -> Path:
        """The complete folder of a registered base (its tiny model, built on first use, in fast-test mode)."""
        from isengard.models.bases import UnknownBase, get_base
        from isengard.models.locate import base_model_dir, distilled_missing_reason, distilled_model_dir, model_status

        try:
            fast_test = self.settings.resolved_mode == Mode.FAST_TEST
            if distilled:
                if fast_test and get_base(base).distilled_repo_id is not None:
                    from isengard.models.tiny import ensure_tiny_model

                    ensure_tiny_model(self.settings, base, distilled=True)
                folder = distilled_model_dir(self.settings, base)
                if folder is None:
                    raise PluginError(
                        f"the distilled model is not available: {distilled_missing_reason(self.settings, base)}"
                    )
                return folder
            if fast_test:
                from isengard.models.tiny import ensure_tiny_model

                ensure_tiny_model(self.settings, base)
            folder = base_model_dir(self.settings, base)
        except UnknownBase as exc:
            raise PluginError(str(exc)) from exc
        if folder is None:
            raise PluginError(f"the base model is not available: {model_status(self.settings, base).reason}")
        return folder

    def latest_checkpoint(self) -> Path | None:
        return latest_checkpoint_in(self.work_dir)

    def recorded_artifacts(self) -> list[Artifact]:
        return [
            Artifact(
                id=row.id,
                kind=ArtifactKind(row.kind),
                path=row.path,
                name=row.name,
                step=row.step,
                meta=dict(row.meta or {}),
            )
            for row in artifacts_of(self.states.sessions, self.job_id)
        ]

    # --- Events -------------------------------------------------------------------------------------------------

    def _record(self, event: Any) -> None:
        """Publish now; keep for the database at the next flush."""
        self.states.publish([event])
        if should_persist(event):
            self._pending_rows.append(event)

    def flush(self) -> None:
        """Write buffered event rows and the latest progress to the database."""
        rows, self._pending_rows = self._pending_rows, []
        progress, self._pending_progress = self._pending_progress, None
        self._last_flush = time.monotonic()
        self.states.record_progress(self.job_id, rows, progress)

    def _maybe_flush(self, force: bool = False) -> None:
        if force or time.monotonic() - self._last_flush >= DB_FLUSH_INTERVAL_SECONDS:
            self.flush()

    def report_progress(
        self,
        step: int,
        total: int,
        *,
        loss: float | None = None,
        lr: float | None = None,
        stage: str | None = None,
    ) -> None:
        now = time.monotonic()
        if loss is not None and self._ema is None and self.attempt > 1:
            # A resumed attempt continues the earlier attempt's smoothed curve from the checkpoint's step.
            self._ema = self.states.smoothed_loss_before(self.job_id, step=step, attempt=self.attempt)
        if loss is not None:
            self._ema = loss if self._ema is None else LOSS_EMA_BETA * self._ema + (1 - LOSS_EMA_BETA) * loss
        if self._rate and step < self._rate[-1][0]:
            self._rate.clear()  # a new stage restarted its step count
        self._rate.append((step, now))
        it_per_s: float | None = None
        eta: float | None = None
        first_step, first_time = self._rate[0]
        if step > first_step and now > first_time:
            it_per_s = (step - first_step) / (now - first_time)
            eta = max(0.0, (total - step) / it_per_s)
        event = ProgressEvent(
            job_id=self.job_id,
            step=step,
            total=total,
            loss=loss,
            smoothed_loss=self._ema if loss is not None else None,
            lr=lr,
            it_per_s=round(it_per_s, 4) if it_per_s is not None else None,
            eta_seconds=round(eta, 2) if eta is not None else None,
            attempt=self.attempt,
            stage=stage,
        )
        self.last_step = step
        if stage == TRAINING_STAGE:
            self._training = [self._training[0] if self._training else (step, now), (step, now)]
        self._record(event)
        self._pending_progress = event.model_dump(mode="json", exclude={"job_id", "type"})
        self._maybe_flush(force=step >= total)

    @property
    def seconds_per_step(self) -> float | None:
        """This attempt's speed over its training steps; None before two of them were reported."""
        if len(self._training) < 2 or self._training[1][0] <= self._training[0][0]:
            return None
        (first, started), (last, now) = self._training
        return (now - started) / (last - first)

    def log(self, message: str, level: str = "info", **fields: Any) -> None:
        level_name = level.lower() if level.lower() in _LEVELS else "info"
        self._record(LogEvent(job_id=self.job_id, level=level_name, message=message))
        extra = {(f"field_{k}" if k in RESERVED_RECORD_FIELDS else k): v for k, v in fields.items()}
        log.log(_LEVELS[level_name], message, extra={"plugin": self.job.plugin, **extra})
        self._maybe_flush()

    # --- Artifacts ----------------------------------------------------------------------------------------------

    def _relative(self, path: Path) -> str:
        try:
            return self.data.relative(path)
        except UnsafePathError:
            raise PluginError(
                f"artifact {path} is outside the data folder; write it under the job's work_dir"
            ) from None

    def _store_artifact(
        self, path: Path, kind: ArtifactKind, *, name: str | None, step: int | None, meta: dict[str, Any] | None
    ) -> tuple[Artifact, str | None]:
        """Record the artifact (and its LoRA / gallery row); returns the artifact and the LoRA id if any."""
        if not path.exists():
            raise PluginError(f"artifact {path.name} does not exist")
        relative = self._relative(path)
        self.flush()  # keep the order of events in the database
        stored = record_artifact(
            self.states.sessions,
            self.job,
            relative_path=relative,
            kind=kind,
            name=name or path.name,
            step=step,
            size=_path_bytes(path),
            meta=dict(meta or {}),
        )
        artifact = Artifact(id=stored.id, kind=kind, path=relative, name=stored.name, step=step, meta=stored.meta)
        return artifact, stored.lora_id

    def save_artifact(
        self,
        path: Path,
        kind: ArtifactKind,
        *,
        name: str | None = None,
        step: int | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Artifact:
        artifact, lora_id = self._store_artifact(path, kind, name=name, step=step, meta=meta)
        url = artifact_url(self.job_id, artifact.id)
        events: list[Any] = [
            ArtifactEvent(job_id=self.job_id, artifact_id=artifact.id, kind=kind, name=artifact.name, url=url)
        ]
        if kind == ArtifactKind.CHECKPOINT and step is not None:
            events.append(
                CheckpointEvent(job_id=self.job_id, step=step, artifact_id=artifact.id, lora_id=lora_id, url=url)
            )
        for event in events:
            self._record(event)
        self.flush()
        return artifact

    def emit_sample(self, path: Path, *, step: int, index: int = 0, prompt: str = "") -> Artifact:
        artifact, _ = self._store_artifact(
            path, ArtifactKind.SAMPLE, name=None, step=step, meta={"index": index, "prompt": prompt}
        )
        url = artifact_url(self.job_id, artifact.id)
        self._record(
            SampleEvent(job_id=self.job_id, step=step, index=index, prompt=prompt, artifact_id=artifact.id, url=url)
        )
        self.flush()
        if self.scoring is not None:
            sample = PendingSample(artifact.id, self.data_dir / artifact.path, step, index, prompt)
            self.scoring.submit(sample)
        return artifact

    def close_scoring(self, *, drain: bool) -> None:
        """End sample scoring: wait for the samples handed over when the run succeeded, else stop at once."""
        if self.scoring is not None:
            self.scoring.close(drain=drain)

    def remove_artifact(self, artifact: Artifact) -> None:
        try:
            path = self.data.resolve_relative(artifact.path)
        except UnsafePathError:
            raise PluginError(f"artifact {artifact.name} is outside the data folder") from None
        forget_artifact(self.states.sessions, self.job_id, artifact.id, artifact.path)
        # Rows first: a listed file that no longer exists is worse than a stray file.
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    # --- Captions -----------------------------------------------------------------------------------------------

    def save_caption(
        self, image_id: str, caption: str, *, index: int, total: int, overwrite: bool, replaces: str = ""
    ) -> bool:
        written = record_caption(
            self.states.sessions,
            self.data,
            image_id=image_id,
            character_id=self.job.character_id,
            caption=caption,
            overwrite=overwrite,
            replaces=replaces,
        )
        event = CaptionEvent(
            job_id=self.job_id, image_id=image_id, index=index, total=total, caption=caption, written=written
        )
        self._record(event)
        self._maybe_flush()
        return written

    # --- Cancellation ---------------------------------------------------------------------------------------------

    def _poll_cancel_flag(self) -> None:
        now = time.monotonic()
        if now - self._last_cancel_check >= CANCEL_POLL_SECONDS:
            self._last_cancel_check = now
            try:
                if queue.cancel_requested(self.redis, self.job_id):
                    self.user_cancelled = True
                    return
            except redis.RedisError:
                self._last_db_cancel_check = 0.0  # Redis is away: ask the database now
        if now - self._last_db_cancel_check >= DB_CANCEL_POLL_SECONDS:
            self._last_db_cancel_check = now
            if self.states.cancel_requested(self.job_id):
                self.user_cancelled = True

    @property
    def running_seconds(self) -> float:
        """Time since this attempt started: what the job timeout is measured against."""
        return time.monotonic() - self._started

    def request_timeout_stop(self) -> None:
        """Make `is_cancelled()` answer true with the reason "timeout" (the watchdog's first step)."""
        self.timed_out = True

    def is_cancelled(self) -> bool:
        if self._shutdown.is_set() or self._lease_lost.is_set() or self.user_cancelled or self.timed_out:
            return True
        if self.running_seconds > self.settings.job_timeout_seconds:
            self.timed_out = True
            return True
        self._poll_cancel_flag()
        return self.user_cancelled

    def raise_if_cancelled(self) -> None:
        if not self.is_cancelled():
            return
        if self.user_cancelled or self.timed_out:
            raise JobCancelled("the job was cancelled" if self.user_cancelled else "the job ran out of time")
        raise JobInterrupted("the worker is stopping")

    @property
    def interrupted(self) -> bool:
        """The job must stop for the worker's sake (shutdown, lost lease), not because a user asked."""
        return self._shutdown.is_set() or self._lease_lost.is_set()
