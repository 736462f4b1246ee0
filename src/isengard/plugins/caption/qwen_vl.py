"""The built-in captioner: Qwen3-VL-2B-Instruct on transformers, batched, on the GPU when there is one.

Why this model. Captions for a character LoRA must follow an instruction ("describe the clothing, pose, setting and
light; do not describe hair, eyes, skin, age or body"), so a fixed-task captioner is out: Florence-2 (0.23-0.77 B)
writes good detailed captions fast but takes only its task tokens, never an instruction. Among the instruction
following vision-language models transformers 5 runs natively, Qwen3-VL-2B gives the most for its size: its
published scores match or pass Qwen2.5-VL-3B's at two thirds of the parameters (about 4.5 GB in bf16, fits an 8 GB
GPU beside nothing else), and its vision tower reads the image at its own resolution (no tiling that splits a face),
while SmolVLM-256M/500M/2.2B follows instructions more loosely and describes people with less detail, and
LLaVA-style 7 B models cost three times the memory for no better captions. The Qwen chat format is written here
rather than read from a processor, so the same code serves Qwen3-VL checkpoints of any size (set
ISENGARD_QWEN_VL_MODEL to the 4B or 8B for more detail).

Weights come from ISENGARD_QWEN_VL_MODEL_PATH or the Hugging Face cache, never downloaded. In fast-test mode the
tiny Qwen3-VL of `qwen_vl_tiny` is built under the data folder and used instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from isengard.plugins.api import (
    Capability,
    JobContext,
    ModelSlot,
    PluginError,
    PluginSettings,
    SettingsConfigDict,
    weights_capability,
    weights_folder,
)
from isengard.plugins.caption.interface import CaptionPlugin
from isengard.plugins.caption.qwen_vl_tiny import MERGE_SIZE, ensure_tiny_vlm

log = logging.getLogger(__name__)

FAST_TEST = "fast-test"


class QwenVLSettings(PluginSettings):
    """Where the weights are: ISENGARD_QWEN_VL_MODEL_PATH (a local folder) or ISENGARD_QWEN_VL_MODEL in the cache."""

    model_config = SettingsConfigDict(env_prefix="ISENGARD_QWEN_VL_")

    model: str = "Qwen/Qwen3-VL-2B-Instruct"
    model_path: Path | None = None


class QwenVLConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(default=4, ge=1, le=32, description="images captioned together")
    max_new_tokens: int = Field(default=160, ge=8, le=512, description="the longest answer, in tokens")
    max_image_pixels: int = Field(
        default=768 * 768, ge=64 * 64, le=2048 * 2048, description="images are scaled down to at most this many pixels"
    )
    temperature: float = Field(
        default=0.0,
        ge=0.0,
        le=2.0,
        description="0 writes the most likely caption; above 0 samples, so each run gives a different candidate "
        "(what 'regenerate caption' asks for)",
    )


@dataclass
class _Loaded:
    folder: Path
    device: str
    model: Any
    tokenizer: Any
    image_processor: Any


class QwenVLCaptioner(CaptionPlugin):
    name: ClassVar[str] = "qwen-vl"
    description: ClassVar[str] = "Qwen3-VL vision-language captions on transformers (local weights, GPU or CPU)"
    config_model: ClassVar[type[BaseModel]] = QwenVLConfig
    settings_model: ClassVar[type[PluginSettings]] = QwenVLSettings

    def __init__(self, settings: Any | None = None, config: PluginSettings | None = None) -> None:
        super().__init__(settings, config)
        assert isinstance(self.config, QwenVLSettings)
        self.own_settings: QwenVLSettings = self.config  # the same object, typed as this plugin's settings
        self._slot: ModelSlot[_Loaded] = ModelSlot()

    @property
    def _fast_test(self) -> bool:
        return self.host.mode == FAST_TEST

    def capabilities(self) -> Capability:
        return weights_capability(
            self.own_settings.model,
            self.own_settings.model_path,
            path_variable="ISENGARD_QWEN_VL_MODEL_PATH",
            tiny="tiny Qwen3-VL (fast-test)" if self._fast_test else None,
        )

    # --- Loading -------------------------------------------------------------------------------------------------

    def _folder(self, ctx: JobContext) -> Path:
        if ctx.mode == FAST_TEST:
            return ensure_tiny_vlm(ctx.data_dir / "models")
        folder = weights_folder(self.own_settings.model, self.own_settings.model_path)
        if folder is None:
            raise PluginError(self.capabilities().reason or "the captioning model is not available")
        return folder

    def _load(self, ctx: JobContext) -> _Loaded:
        import torch

        folder = self._folder(ctx)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        # The worker keeps the model between caption jobs: loading is most of a small job's time.
        return self._slot.get((folder, device), lambda: self._load_from(ctx, folder, device))

    @property
    def _loaded(self) -> _Loaded | None:
        return self._slot.value

    def _load_from(self, ctx: JobContext, folder: Path, device: str) -> _Loaded:
        import torch
        from transformers import AutoModelForImageTextToText, AutoTokenizer
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        ctx.log(f"loading the captioning model from {folder} on {device}")
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        model = AutoModelForImageTextToText.from_pretrained(folder, dtype=dtype, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        tokenizer.padding_side = "left"
        # The PIL image processor: the default "fast" one needs torchvision, which has no CPU build here.
        image_processor = Qwen2VLImageProcessorPil.from_pretrained(folder, local_files_only=True)
        model = model.to(device).eval()  # type: ignore[arg-type]  # transformers types `to` for dtypes only
        return _Loaded(folder, device, model, tokenizer, image_processor)

    def release_memory(self) -> None:
        if self._slot.release():
            log.info("captioning model released for another plugin's job")

    # --- Captioning ----------------------------------------------------------------------------------------------

    def caption(self, ctx: JobContext, images: Sequence[Path], config: BaseModel, instruction: str) -> list[str]:
        import torch
        from PIL import Image, ImageOps

        assert isinstance(config, QwenVLConfig)
        loaded = self._load(ctx)
        pictures = []
        for path in images:
            with Image.open(path) as opened:
                pictures.append(ImageOps.exif_transpose(opened).convert("RGB"))
        merge = getattr(loaded.image_processor, "merge_size", MERGE_SIZE)
        pixels = loaded.image_processor(
            images=pictures,
            size={"shortest_edge": 32 * 32, "longest_edge": config.max_image_pixels},
            return_tensors="pt",
        )
        prompts = [self._prompt(int(grid.prod()) // (merge * merge), instruction) for grid in pixels["image_grid_thw"]]
        text = loaded.tokenizer(prompts, return_tensors="pt", padding=True)
        inputs = {**text, **pixels}
        inputs = {key: value.to(loaded.device) for key, value in inputs.items()}
        with torch.inference_mode():
            # Greedy decoding gives the same caption every time: a regenerate samples instead (top-p keeps it on
            # the likely words).
            sampling = {"do_sample": True, "temperature": config.temperature, "top_p": 0.95}
            output = loaded.model.generate(
                **inputs,
                max_new_tokens=config.max_new_tokens,
                **(sampling if config.temperature > 0 else {"do_sample": False}),
            )
        answers = output[:, text["input_ids"].shape[1] :]
        return [str(answer) for answer in loaded.tokenizer.batch_decode(answers, skip_special_tokens=True)]

    @staticmethod
    def _prompt(image_tokens: int, instruction: str) -> str:
        """Qwen's chat format for one user turn with one image (what its chat template renders)."""
        vision = "<|vision_start|>" + "<|image_pad|>" * image_tokens + "<|vision_end|>"
        return f"<|im_start|>user\n{vision}{instruction}<|im_end|>\n<|im_start|>assistant\n"
