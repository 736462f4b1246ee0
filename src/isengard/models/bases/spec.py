"""What a base model is to Isengard: the data of one checkpoint (`BaseSpec`) and the behaviour of its family
(`BaseFamily`: the code that differs between architectures, e.g. FLUX.1's CLIP + T5 against FLUX.2's Qwen3).

Plain Python at import time: the API, the planner and the web form read these without importing torch; a family's
methods that need torch or diffusers import them when called.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from isengard.models.flux_layout import FluxLayout, Layout
    from isengard.models.profiles import WeightFormat


@dataclass(frozen=True)
class TextEncoderSpec:
    """One text encoder of a diffusers folder: its subfolder, its transformers class and what its output is for."""

    folder: str
    class_name: str  # a transformers class
    tokenizer_folder: str
    role: str  # shown to people: what the transformer reads of it


@dataclass(frozen=True)
class FlowSettings:
    """The flow-matching schedule of a family: the scheduler's shift and the training's default noise sampling."""

    shift: float
    use_dynamic_shifting: bool
    timestep_sampling: str  # the trainer's default: sigmoid, shift or uniform


@dataclass(frozen=True)
class BaseDefaults:
    """Settings people expect for a checkpoint: sampling steps and guidance, and the resolution to train at."""

    resolution: int
    sample_steps: int
    guidance: float
    # Fed to the transformer's guidance embedding while training (FLUX.1-dev distils guidance; None: no embedding).
    training_guidance: float | None


class TextEmbedding:
    """A prompt encoded once (batch dimension 1): the token embeddings the transformer attends to, and the pooled
    vector of families that have one (FLUX.1's CLIP; None for FLUX.2)."""

    def __init__(self, prompt_embeds: torch.Tensor, pooled_prompt_embeds: torch.Tensor | None = None) -> None:
        self.prompt_embeds = prompt_embeds
        self.pooled_prompt_embeds = pooled_prompt_embeds


@dataclass(frozen=True)
class BaseSpec:
    """One base model people can choose: a checkpoint of a family, where to get it and under which terms."""

    name: str  # the stable id: flux1-dev, flux2-klein-4b
    label: str
    family: BaseFamily
    repo_id: str  # the Hugging Face repo LoRAs are trained on (the undistilled Base where one exists)
    licence: str
    licence_url: str
    commercial_use: bool
    gated: bool  # the repo asks you to accept its licence (and log in) before downloading
    transformer_config: dict[str, Any]  # the full-size transformer's config.json (what the planner prices)
    text_encoder_config: dict[str, Any]  # the full-size large text encoder's config (the planner prices it too)
    defaults: BaseDefaults
    # A distilled sibling for fast generation, where LoRAs trained on `repo_id` apply (None: none).
    distilled_repo_id: str | None = None
    distilled_defaults: BaseDefaults | None = None
    ai_toolkit_arch: str | None = None  # ai-toolkit's `arch` for this base (None: it trains this base as FLUX.1)
    description: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)  # names LoRA metadata and old records use for it
    # Its ComfyUI template when its model files differ from the family's default one (None: the family's).
    comfyui_template: str | None = None

    @property
    def comfyui_workflow(self) -> str:
        """The shipped ComfyUI workflow (plugins/image/workflows/<name>.json) that loads this checkpoint's files."""
        return self.comfyui_template or self.family.comfyui_workflow

    def download_command(self, folder: str) -> str:
        return f"hf download {self.repo_id} --local-dir {folder}"


class BaseFamily(ABC):
    """What differs between architectures: classes, folder layout, text encoding, flow settings, LoRA targets,
    planner layout, ComfyUI workflow and the tiny fast-test model. One subclass per family module."""

    name: str
    pipeline_class: str  # diffusers class names (model_index.json's `_class_name` is the pipeline's)
    transformer_class: str
    vae_class: str
    text_encoders: tuple[TextEncoderSpec, ...]
    # Subfolders that must hold weights (or files) for a folder to count as complete.
    components: tuple[str, ...]
    flow: FlowSettings
    lora_targets: tuple[str, ...]  # peft target modules (suffixes of module names) of a character LoRA
    # Whether the base's loaders read per-module `.alpha` tensors (diffusers' FLUX.1 and ComfyUI do; diffusers'
    # FLUX.2 loader refuses any key without "lora"): when not, the alpha / rank scale is multiplied into B.
    lora_alpha_tensors: bool = True
    comfyui_workflow: str  # the family's default ComfyUI template (plugins/image/workflows/<name>.json)
    # ComfyUI's DualCLIPLoader / CLIPLoader `type` and the LoRA key prefix its loader reads.
    comfyui_clip_type: str
    vae_params: int  # the full-size VAE's parameters (published / counted on diffusers' default config)
    # What other tools write for any base of the family (ai-toolkit's `ss_base_model_version=flux.1`): in a LoRA's
    # header such a name tells the family, not which of its bases (old records still resolve it to the first).
    family_names: tuple[str, ...] = ()
    # The `build_tiny` shape whose linear layers torchao's int8 and NF4 can store (tests of the quantized profiles).
    tiny_quantizable_shape: Any
    bases: tuple[BaseSpec, ...] = ()

    # Classes -----------------------------------------------------------------------------------------------------

    @staticmethod
    def _diffusers(name: str) -> Any:
        return getattr(importlib.import_module("diffusers"), name)

    def pipeline_cls(self) -> Any:
        return self._diffusers(self.pipeline_class)

    def transformer_cls(self) -> Any:
        return self._diffusers(self.transformer_class)

    def vae_cls(self) -> Any:
        return self._diffusers(self.vae_class)

    @property
    def text_encoder_folders(self) -> tuple[str, ...]:
        return tuple(encoder.folder for encoder in self.text_encoders)

    # Planner -----------------------------------------------------------------------------------------------------

    @abstractmethod
    def layout(self, transformer_config: dict[str, Any], *, text_tokens: int = 512) -> FluxLayout:
        """Every weight's shape of the transformer for a config, by arithmetic (the planner prices it)."""

    @abstractmethod
    def large_text_encoder_layout(self, text_encoder_config: dict[str, Any]) -> Layout:
        """Every weight's shape of the large text encoder (`text_encoders[-1]`: T5-XXL, Qwen3) for a config."""

    @abstractmethod
    def text_encoder_bytes(self, text_encoder_config: dict[str, Any], weight_format: WeightFormat) -> int:
        """Bytes of the text encoders as generation holds them (the large one in `weight_format`)."""

    # Training and sampling ---------------------------------------------------------------------------------------

    @abstractmethod
    def encode_prompt(self, pipe: Any, prompt: str, *, device: torch.device, max_sequence_length: int) -> TextEmbedding:
        """A prompt through the text-encoder-only pipeline, kept on the CPU."""

    @abstractmethod
    def predict(
        self,
        transformer: Any,
        noisy: torch.Tensor,
        text: TextEmbedding,
        sigmas: torch.Tensor,
        *,
        guidance_scale: float,
        weight_dtype: torch.dtype,
    ) -> torch.Tensor:
        """The transformer's velocity for unpacked noisy latents at noise levels `sigmas`, in the packed token
        layout of `pack` (the loss compares it with the packed target)."""

    @abstractmethod
    def pack(self, latents: torch.Tensor) -> torch.Tensor:
        """Unpacked latents (batch, channels, h, w) as the transformer's tokens."""

    @abstractmethod
    def encode_image_latents(self, vae: Any, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised latents of a batch of images in [-1, 1] (what the transformer denoises, unpacked)."""

    def sampling_pipeline(self, scheduler: Any, vae: Any, transformer: Any) -> Any:
        """A pipeline with the transformer and VAE only, fed precomputed prompt embeddings (training samples)."""
        names = self.pipeline_cls()._get_signature_keys(self.pipeline_cls())[0]
        parts = {name: None for name in names}
        parts.update(scheduler=scheduler, vae=vae, transformer=transformer)
        return self.pipeline_cls()(**parts)

    @abstractmethod
    def prompt_kwargs(
        self, text: TextEmbedding, *, negative: TextEmbedding, device: torch.device, dtype: torch.dtype
    ) -> dict[str, Any]:
        """The keyword arguments that hand a precomputed prompt (and the empty prompt, for families that guide with
        a negative) to the pipeline's `__call__`."""

    # Fast-test ---------------------------------------------------------------------------------------------------

    @abstractmethod
    def build_tiny(self, seed: int, shape: Any | None = None) -> Any:
        """The whole pipeline at toy sizes with random weights from `seed` (real classes, nothing downloaded);
        `shape`: the family's own widths (its default when None)."""
