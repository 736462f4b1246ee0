"""The image evaluator: a CLIP/SigLIP-class model on transformers, for whole-image identity (characters without a
human face: cartoons, mascots, creatures) and for prompt adherence (an image against its prompt's text).

Why CLIP ViT-L/14 by default: its image-text cosine is the "CLIP score" the image-generation literature reports for
prompt adherence, so the numbers read like everyone else's, and its image embeddings separate one character from
another well enough to follow a run's identity. Any CLIP or SigLIP folder works (ISENGARD_CLIP_EVAL_MODEL, or
ISENGARD_CLIP_EVAL_MODEL_PATH for a local folder); the weights come from that folder or the Hugging Face cache,
never downloaded at run time. In fast-test mode the tiny CLIP of `clip_tiny` is built under the data folder and
loaded through the same code.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from isengard.plugins.api import (
    Capability,
    ModelSlot,
    PluginError,
    PluginSettings,
    SettingsConfigDict,
    weights_capability,
    weights_folder,
)
from isengard.plugins.evaluate.clip_tiny import ensure_tiny_clip
from isengard.plugins.evaluate.interface import EvaluatorPlugin, IdentityKind, ImageEmbedding, Subject, Vector

if TYPE_CHECKING:
    from PIL.Image import Image

log = logging.getLogger(__name__)

FAST_TEST = "fast-test"
BATCH = 16


class ClipEvalSettings(PluginSettings):
    """Where the weights are: ISENGARD_CLIP_EVAL_MODEL_PATH (a folder) or ISENGARD_CLIP_EVAL_MODEL in the cache."""

    model_config = SettingsConfigDict(env_prefix="ISENGARD_CLIP_EVAL_")

    model: str = "openai/clip-vit-large-patch14"
    model_path: Path | None = None


@dataclass
class _Loaded:
    folder: Path
    device: str
    model: Any
    tokenizer: Any
    image_processor: Any
    pad_to_max: bool  # SigLIP was trained on texts padded to the full length; CLIP on unpadded ones


def _features(output: Any) -> Any:
    """transformers 5 returns a model output from get_*_features (the projection in `pooler_output`); 4.x a tensor."""
    return output if hasattr(output, "shape") else output.pooler_output


class ClipEvaluator(EvaluatorPlugin):
    name: ClassVar[str] = "clip"
    description: ClassVar[str] = "whole-image identity and prompt adherence with a CLIP/SigLIP model (transformers)"
    identity_kind: ClassVar[IdentityKind] = IdentityKind.IMAGE
    # Cosine of two CLIP image embeddings at or above which two pictures show the same character (a rough line:
    # identity is followed as a trend over a run more than judged against it).
    same_subject: ClassVar[float] = 0.8
    reads_text: ClassVar[bool] = True
    settings_model: ClassVar[type[PluginSettings]] = ClipEvalSettings

    def __init__(self, settings: Any | None = None, config: PluginSettings | None = None) -> None:
        super().__init__(settings, config)
        assert isinstance(self.config, ClipEvalSettings)
        self.own_settings: ClipEvalSettings = self.config
        self._slot: ModelSlot[_Loaded] = ModelSlot()

    @property
    def _fast_test(self) -> bool:
        return self.host.mode == FAST_TEST

    def capabilities(self) -> Capability:
        return weights_capability(
            self.own_settings.model,
            self.own_settings.model_path,
            path_variable="ISENGARD_CLIP_EVAL_MODEL_PATH",
            tiny="tiny CLIP (fast-test)" if self._fast_test else None,
        )

    # --- Loading -------------------------------------------------------------------------------------------------

    def _folder(self) -> Path:
        if self._fast_test:
            models_dir = self.host.models_dir or Path(tempfile.gettempdir()) / "isengard-models"
            return ensure_tiny_clip(models_dir)
        folder = weights_folder(self.own_settings.model, self.own_settings.model_path)
        if folder is None:
            raise PluginError(self.capabilities().reason or "the CLIP model is not available")
        return folder

    def _load(self) -> _Loaded:
        folder = self._folder()
        # The GPU only when no training holds it: scoring runs beside a training step and must not take its memory.
        device = "cpu"
        return self._slot.get((folder, device), lambda: self._load_from(folder, device))

    def _load_from(self, folder: Path, device: str) -> _Loaded:
        import torch
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        log.info("loading the CLIP evaluator", extra={"path": str(folder), "device": device})
        model = AutoModel.from_pretrained(folder, dtype=torch.float32, local_files_only=True).eval()
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        image_processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
        pad_to_max = "siglip" in str(getattr(model.config, "model_type", ""))
        return _Loaded(folder, device, model, tokenizer, image_processor, pad_to_max)

    def release_memory(self) -> None:
        self._slot.release()

    # --- Embedding -----------------------------------------------------------------------------------------------

    def embed_images(self, images: Sequence[Image]) -> list[ImageEmbedding]:
        import torch

        loaded = self._load()
        results: list[ImageEmbedding] = []
        for start in range(0, len(images), BATCH):
            batch = [image.convert("RGB") for image in images[start : start + BATCH]]
            pixels = loaded.image_processor(images=batch, return_tensors="pt")
            with torch.inference_mode():
                features = _features(loaded.model.get_image_features(pixel_values=pixels["pixel_values"]))
            for row in features.float().numpy():
                results.append(ImageEmbedding(Subject.OK, np.asarray(row, dtype=np.float32)))
        return results

    def embed_texts(self, texts: Sequence[str]) -> list[Vector]:
        import torch

        loaded = self._load()
        vectors: list[Vector] = []
        for start in range(0, len(texts), BATCH):
            tokens = loaded.tokenizer(
                list(texts[start : start + BATCH]),
                padding="max_length" if loaded.pad_to_max else True,
                truncation=True,
                return_tensors="pt",
            )
            with torch.inference_mode():
                features = _features(loaded.model.get_text_features(**tokens))
            vectors.extend(np.asarray(row, dtype=np.float32) for row in features.float().numpy())
        return vectors
