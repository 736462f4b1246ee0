"""Everything a plugin may import: the job context it runs in, the capability report, the errors.

Plugins never touch the database, Redis or the API: the worker hands them a `JobContext` and records what they
report through it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from isengard.domain import ArtifactKind, PluginKind


class PluginError(Exception):
    """A failure the user can act on; its message is shown as the job's error."""


class JobCancelled(Exception):
    """Raised by a plugin (or `JobContext.raise_if_cancelled`) to stop at a safe point after a cancel request."""


class JobInterrupted(Exception):
    """Raised when the worker is shutting down: the job stays queued for another worker (resume, not fail)."""


class Capability(BaseModel):
    """Whether a plugin can run on this machine, and if not, exactly why."""

    available: bool
    reason: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Artifact(BaseModel):
    """A file a job produced, as recorded by the worker."""

    id: str
    kind: ArtifactKind
    path: str  # relative to the data dir
    name: str
    step: int | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


@runtime_checkable
class JobContext(Protocol):
    """The narrow window a plugin sees of the job it runs."""

    job_id: str
    attempt: int
    data_dir: Path  # the data tree's root; job inputs give paths relative to it
    work_dir: Path  # this job's own folder for artifacts, checkpoints and samples
    mode: str  # "fast-test" or "production"
    base_model_path: Path  # folder of the base model (FLUX.1-dev, or the tiny model in fast-test)

    def report_progress(
        self,
        step: int,
        total: int,
        *,
        loss: float | None = None,
        lr: float | None = None,
        stage: str | None = None,
    ) -> None:
        """Report progress; the context derives smoothed loss, it/s and ETA."""

    def emit_sample(self, path: Path, *, step: int, index: int = 0, prompt: str = "") -> Artifact:
        """Register an image written under `work_dir` as a sample at `step`."""
        ...

    def save_artifact(
        self,
        path: Path,
        kind: ArtifactKind,
        *,
        name: str | None = None,
        step: int | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Artifact:
        """Register a finished file under `work_dir` (LoRA, checkpoint, output image, log)."""
        ...

    def is_cancelled(self) -> bool:
        """True once the user asked to cancel or the worker is shutting down; poll between steps."""
        ...

    def raise_if_cancelled(self) -> None:
        """Raise JobCancelled (user) or JobInterrupted (shutdown) when the job must stop now."""

    def log(self, message: str, level: str = "info", **fields: Any) -> None:
        """A log line for the job's log panel and the worker's structured log."""

    def remove_artifact(self, artifact: Artifact) -> None:
        """Delete an artifact's file and its records (e.g. checkpoints beyond the last K kept)."""

    def recorded_artifacts(self) -> list[Artifact]:
        """Every artifact (samples included) this job has recorded so far, earlier attempts included.

        A plugin that watches an engine's output folder seeds its "already reported" sets from it, so a retried
        attempt does not announce the files of the first one again.
        """
        ...

    def latest_checkpoint(self) -> Path | None:
        """The newest resumable checkpoint of this job from an earlier attempt, if any.

        Convention: resumable state lives in folders `work_dir/checkpoints/step-NNNNNN/`; a folder counts only once
        it holds a file named `COMPLETE` (written last), so a crash mid-save never resumes from half a checkpoint.
        The rule itself is `isengard.plugins.checkpoint_folders`.
        """
        ...


class Plugin(ABC):
    """Common base of every plugin kind."""

    name: ClassVar[str]
    kind: ClassVar[PluginKind]
    description: ClassVar[str] = ""

    def __init__(self, settings: Any | None = None) -> None:
        # Settings are passed in (not imported) so plugins stay testable and free of global state.
        self.settings = settings

    @abstractmethod
    def capabilities(self) -> Capability:
        """Whether this plugin can run here and, if not, why."""

    @abstractmethod
    def run(self, ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        """Run one job from its stored payload; return a small JSON-able summary for the job row."""
