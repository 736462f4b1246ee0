"""Canonical types shared by the API, the worker and the plugins: job kinds and states, job inputs, events.

Events are pydantic models with a literal `type`; `parse_event` turns a stored JSON payload back into one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


def utcnow() -> datetime:
    return datetime.now(UTC)


class JobKind(StrEnum):
    TRAINING = "training"
    GENERATION = "generation"
    VIDEO = "video"
    CAPTION = "caption"
    EVALUATION = "evaluation"  # renders a LoRA's fixed prompts x seeds with an image plugin and scores them


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}


class ArtifactKind(StrEnum):
    LORA = "lora"
    CHECKPOINT = "checkpoint"
    SAMPLE = "sample"
    OUTPUT = "output"
    LOG = "log"
    OTHER = "other"


class PluginKind(StrEnum):
    TRAINING = "training"
    IMAGE = "image"
    VIDEO = "video"
    CAPTION = "caption"
    EVALUATE = "evaluate"  # embeds images (and texts) to score identity and prompt adherence


# Which kind of plugin runs each kind of job (job kind value -> plugin kind), and back.
PLUGIN_KIND_OF_JOB = {
    JobKind.TRAINING.value: PluginKind.TRAINING,
    JobKind.GENERATION.value: PluginKind.IMAGE,
    JobKind.VIDEO.value: PluginKind.VIDEO,
    JobKind.CAPTION.value: PluginKind.CAPTION,
    JobKind.EVALUATION.value: PluginKind.IMAGE,  # the image plugin renders; the worker scores what it renders
}
# Each plugin kind's own job kind: an image plugin's is generation (evaluation jobs borrow it).
JOB_KIND_OF_PLUGIN = {
    plugin_kind: job_kind
    for job_kind, plugin_kind in PLUGIN_KIND_OF_JOB.items()
    if job_kind != JobKind.EVALUATION.value
}


# --- Job inputs (what a plugin receives; snapshotted into the job row at submission) -----------------------------


class DatasetItem(BaseModel):
    """One training image: path relative to the data dir, caption with `[trigger]` not yet substituted."""

    image_path: str
    caption: str = ""
    width: int | None = None
    height: int | None = None


class TrainingInput(BaseModel):
    character_id: str
    character_name: str
    trigger_word: str
    dataset: list[DatasetItem]


MAX_LORA_WEIGHT = 4.0  # the strength a LoRA is applied with lies in [-MAX_LORA_WEIGHT, MAX_LORA_WEIGHT]


class LoraRef(BaseModel):
    """A LoRA to apply at generation: its id, its file (relative to the data dir) and its weight."""

    lora_id: str
    path: str
    weight: float = Field(default=1.0, ge=-MAX_LORA_WEIGHT, le=MAX_LORA_WEIGHT)
    name: str = ""
    trigger_word: str | None = None
    base: str = "flux1-dev"  # the base model it was trained on (models/bases)


# --- Events ---------------------------------------------------------------------------------------------------


class _Event(BaseModel):
    # Every field is in the JSON an event is sent as, defaults included: the published schema says so, which lets
    # the web client narrow the union on `type`.
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)
    job_id: str
    at: datetime = Field(default_factory=utcnow)


class StatusEvent(_Event):
    type: Literal["status"] = "status"
    status: JobStatus
    message: str | None = None
    # Set when an attempt starts ("running"): a page shows that attempt's steps from then on.
    attempt: int | None = None


class ProgressEvent(_Event):
    type: Literal["progress"] = "progress"
    step: int
    total: int
    loss: float | None = None
    smoothed_loss: float | None = None
    lr: float | None = None
    it_per_s: float | None = None
    eta_seconds: float | None = None
    stage: str | None = None
    # Which attempt of the job reported it: a resumed job reports its steps again, from its last checkpoint.
    attempt: int | None = None


class SampleEvent(_Event):
    type: Literal["sample"] = "sample"
    step: int
    index: int = 0
    prompt: str = ""
    artifact_id: str | None = None
    url: str | None = None


class CheckpointEvent(_Event):
    type: Literal["checkpoint"] = "checkpoint"
    step: int
    artifact_id: str | None = None
    lora_id: str | None = None
    url: str | None = None


class LogEvent(_Event):
    type: Literal["log"] = "log"
    level: str = "info"
    message: str


class ErrorEvent(_Event):
    type: Literal["error"] = "error"
    message: str


class ArtifactEvent(_Event):
    type: Literal["artifact"] = "artifact"
    artifact_id: str
    kind: ArtifactKind
    name: str
    url: str | None = None


class CaptionEvent(_Event):
    """A caption job finished one image: `written` is False when an existing caption was kept (not overwritten)."""

    type: Literal["caption"] = "caption"
    image_id: str
    index: int  # 1-based position of the image in the job
    total: int
    caption: str
    written: bool


def artifact_url(job_id: str, artifact_id: str) -> str:
    """Where the API serves an artifact's file (events and artifact listings carry it)."""
    return f"/api/jobs/{job_id}/artifacts/{artifact_id}/file"


JobEvent = Annotated[
    StatusEvent | ProgressEvent | SampleEvent | CheckpointEvent | LogEvent | ErrorEvent | ArtifactEvent | CaptionEvent,
    Field(discriminator="type"),
]

_EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(JobEvent)


def parse_event(data: str | bytes | dict[str, Any]) -> Any:
    """Rebuild an event model from its JSON (or dict) form."""
    if isinstance(data, dict):
        return _EVENT_ADAPTER.validate_python(data)
    return _EVENT_ADAPTER.validate_json(data)
