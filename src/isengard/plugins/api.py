"""Everything a plugin may import: the job context it runs in, the capability report, the errors, its settings
base, what it may know of the installation (`Host`), and the file helpers it shares with the core.

Plugins never touch the database, Redis or the API: the worker hands them a `JobContext` and records what they
report through it. A plugin imports this module (and `isengard.domain`'s types) and its own package, nothing
else of Isengard; a test checks that importing a plugin loads no API, database, queue or worker module.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from isengard.captions.style import CaptionStyle, apply_style, instruction
from isengard.captions.trigger import apply_trigger, substitute_trigger
from isengard.domain import ArtifactKind, PluginKind
from isengard.imaging import make_thumbnail
from isengard.models.bases import (
    BASES,
    DEFAULT_BASE,
    BaseFamily,
    BaseSpec,
    TextEmbedding,
    UnknownBase,
    base_of_folder,
    family_of_folder,
    get_base,
)
from isengard.models.memory_plan import (
    MemoryPlan,
    ProfileDoesNotFit,
    choose_profile,
    gb,
    next_profile_that_fits,
    plan_generation,
    plan_training,
)
from isengard.models.profiles import PROFILE_NAMES, MemoryProfile, ProfileChoice, ProfileName, profile
from isengard.plugins.checkpoint_folders import COMPLETE, checkpoint_dir, complete_checkpoints
from isengard.storage import atomic_path, atomic_write_bytes

if TYPE_CHECKING:  # resolved on first use at run time: see _TORCH_TOOLKIT below
    from isengard.models.loading import (
        load_generation_pipeline,
        load_scheduler,
        load_text_encoders,
        load_transformer,
        load_vae,
        text_encoder_device,
        transformer_config,
    )
    from isengard.models.offload import BlockSwap, attach_block_swap
    from isengard.plugins.model_weights import (
        ModelSlot,
        save_tiny_folder,
        tiny_folder_is_current,
        weights_capability,
        weights_folder,
    )

__all__ = [
    "BASES",
    "COMPLETE",
    "DEFAULT_BASE",
    "DEFAULT_TARGET_MODULES",
    "PROFILE_NAMES",
    "Artifact",
    "BaseFamily",
    "BaseModelLocation",
    "BaseSpec",
    "BlockSwap",
    "Capability",
    "CaptionStyle",
    "Estimate",
    "Host",
    "JobCancelled",
    "JobContext",
    "JobInterrupted",
    "MeasuredSpeed",
    "MemoryPlan",
    "MemoryProfile",
    "ModelSlot",
    "Plugin",
    "PluginError",
    "PluginSettings",
    "ProfileChoice",
    "ProfileDoesNotFit",
    "ProfileName",
    "SettingsConfigDict",
    "TextEmbedding",
    "UnknownBase",
    "apply_style",
    "apply_trigger",
    "atomic_path",
    "atomic_write_bytes",
    "attach_block_swap",
    "base_of_folder",
    "checkpoint_dir",
    "choose_profile",
    "complete_checkpoints",
    "family_of_folder",
    "free_device_memory",
    "gb",
    "get_base",
    "instruction",
    "load_generation_pipeline",
    "load_scheduler",
    "load_text_encoders",
    "load_transformer",
    "load_vae",
    "make_thumbnail",
    "next_profile_that_fits",
    "plan_generation",
    "plan_training",
    "profile",
    "save_tiny_folder",
    "substitute_trigger",
    "text_encoder_device",
    "tiny_folder_is_current",
    "transformer_config",
    "weights_capability",
    "weights_folder",
]


# The default base's LoRA targets (each base's are `get_base(name).family.lora_targets`).
DEFAULT_TARGET_MODULES = list(get_base(DEFAULT_BASE).family.lora_targets)


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


class MeasuredSpeed(BaseModel):
    """How fast earlier runs of a plugin went at one resolution: the median seconds per training step of the most
    recent runs on one device (the device of the latest run)."""

    seconds_per_step: float
    runs: int
    device: str
    resolution: int | None = None


class Estimate(BaseModel):
    """What a training run would take, as its plugin reckons it before it starts."""

    examples: int  # training examples: each image once per usable resolution
    steps: int
    epochs: float  # how many times each example is seen
    seconds_per_step: float
    estimated_seconds: float
    basis: str  # what the time rests on: measured runs, or the stated default before any
    warnings: list[str] = Field(default_factory=list)


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

    def save_caption(
        self, image_id: str, caption: str, *, index: int, total: int, overwrite: bool, replaces: str = ""
    ) -> bool:
        """Caption jobs: store the caption of a dataset image the way a hand edit is stored (database and the .txt
        beside the image). An image that has a caption keeps it unless `overwrite` or it is still the placeholder
        `replaces`; returns whether it was written.
        `index` (1-based) and `total` place the image in the job for the per-image progress event."""
        ...

    def base_model_dir(self, base: str, *, distilled: bool = False) -> Path:
        """The folder of a registered base (`BASES`), or a PluginError saying exactly what is missing of it; in
        fast-test mode the tiny model of its family (built on first use). `base_model_path` is the default base's.
        `distilled`: the base's distilled sibling instead (generation only)."""
        ...

    def latest_checkpoint(self) -> Path | None:
        """The newest resumable checkpoint of this job from an earlier attempt, if any.

        Convention: resumable state lives in folders `work_dir/checkpoints/step-NNNNNN/`; a folder counts only once
        it holds a file named `COMPLETE` (written last), so a crash mid-save never resumes from half a checkpoint.
        The rule itself is `isengard.plugins.checkpoint_folders`.
        """
        ...


class PluginSettings(BaseSettings):
    """Base of a plugin's own settings: a plugin subclasses it with `env_prefix="ISENGARD_<PLUGIN>_"` so each of
    its variables is named after it (ISENGARD_COMFYUI_URL), read from the environment and the `.env` file."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")


@dataclass(frozen=True)
class BaseModelLocation:
    """Where the configured base model is: `path` when it is there, else `reason` says why not."""

    name: str
    path: Path | None
    reason: str | None = None


@dataclass(frozen=True)
class Host:
    """What every plugin may know of the installation it runs in, built from the core settings by the registry:
    the mode, the base model it is configured for, and where that model is. Plugins never read the core settings."""

    mode: str = "production"  # or "fast-test"
    base_model: str = ""  # the configured base model's name (a Hugging Face id or a folder)
    _settings: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, settings: Any | None) -> Host:
        if settings is None or isinstance(settings, Host):
            return settings or cls()
        return cls(mode=settings.resolved_mode.value, base_model=settings.base_model, _settings=settings)

    @property
    def production(self) -> bool:
        return self.mode == "production"

    @property
    def models_dir(self) -> Path | None:
        """Where models built locally (the tiny fast-test models) are kept: `models/` in the data folder."""
        return None if self._settings is None else Path(self._settings.data_path) / "models"

    def locate_base_model(self, base: str | None = None) -> BaseModelLocation:
        """Where `base` is (the configured base when None; its tiny model in fast-test), without building or loading
        anything."""
        if self._settings is None:
            return BaseModelLocation(name=self.base_model, path=None, reason="no settings to locate the model from")
        from isengard.models.locate import model_status

        status = model_status(self._settings, base)
        path = Path(status.path) if status.present and status.path else None
        return BaseModelLocation(name=status.name, path=path, reason=None if path else status.reason)


def free_device_memory() -> None:
    """Return what models just let go of held to the GPU (reference cycles first, then the allocator's cache)."""
    from isengard.models.loading import free_memory  # imports torch: only when a plugin has a model to free

    free_memory()


class Plugin(ABC):
    """Common base of every plugin kind."""

    name: ClassVar[str]
    kind: ClassVar[PluginKind]
    description: ClassVar[str] = ""
    # The plugin's own settings model; read from the environment when none is passed in.
    settings_model: ClassVar[type[PluginSettings]] = PluginSettings

    def __init__(self, settings: Any | None = None, config: PluginSettings | None = None) -> None:
        # Passed in (not imported) so plugins stay testable and free of global state: `settings` are the core
        # settings (or a Host), of which the plugin sees only the Host; `config` its own settings.
        self.host = Host.of(settings)
        self.config = config if config is not None else self.settings_model()

    @abstractmethod
    def capabilities(self) -> Capability:
        """Whether this plugin can run here and, if not, why."""

    @abstractmethod
    def run(self, ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        """Run one job from its stored payload; return a small JSON-able summary for the job row."""

    def release_memory(self) -> None:
        """Let go of any model kept loaded since this plugin's last job.

        A plugin may keep its model between its own jobs (loading is most of a small job's time); the worker calls
        this before a job of another plugin starts, so two models never share one GPU. Nothing to let go by default.
        """
        return None


# --- The FLUX model toolkit -------------------------------------------------------------------------------------
# Memory profiles and planning (imported above: plain Python) and staged loading and block offloading (below) are
# shared with the core, which plans with them too (`isengard plan`, the API's memory check). Loading and offloading
# import torch, so they are resolved on first use: a plugin module that only declares its config stays light.
_TORCH_TOOLKIT = {
    "load_generation_pipeline": "isengard.models.loading",
    "load_scheduler": "isengard.models.loading",
    "load_text_encoders": "isengard.models.loading",
    "load_transformer": "isengard.models.loading",
    "load_vae": "isengard.models.loading",
    "text_encoder_device": "isengard.models.loading",
    "transformer_config": "isengard.models.loading",
    "BlockSwap": "isengard.models.offload",
    "attach_block_swap": "isengard.models.offload",
    # Where a transformers model's weights are, and fast-test's tiny stand-ins (they return this module's
    # Capability, so they load after it).
    "ModelSlot": "isengard.plugins.model_weights",
    "save_tiny_folder": "isengard.plugins.model_weights",
    "tiny_folder_is_current": "isengard.plugins.model_weights",
    "weights_capability": "isengard.plugins.model_weights",
    "weights_folder": "isengard.plugins.model_weights",
}


def __getattr__(name: str) -> Any:
    module = _TORCH_TOOLKIT.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
