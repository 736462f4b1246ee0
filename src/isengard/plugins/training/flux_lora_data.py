"""The training data of one job, prepared once: images bucketed and encoded to latents, captions to embeddings.

Encoding is the expensive part of a step that never changes, so it runs once per job, each encoder alone on the
device (see `flux_lora_stages`): the embeddings and latents are kept on the CPU for the whole run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageOps

from isengard.domain import TrainingInput
from isengard.plugins.api import BaseFamily, PluginError, apply_trigger, substitute_trigger
from isengard.plugins.training.buckets import BucketedItem, assign_buckets, resize_and_crop, to_model_input
from isengard.plugins.training.flow_matching import TextEmbedding


@dataclass
class PreparedData:
    items: list[BucketedItem]
    latents: list[torch.Tensor]  # per item, (1, C, h, w) on the CPU
    captions: list[TextEmbedding]  # per image (items share their image's caption)
    empty_caption: TextEmbedding
    sample_prompts: list[tuple[str, TextEmbedding]] = field(default_factory=list)
    image_count: int = 0


def open_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            # Phone photos store rotation in EXIF; training on them sideways would teach sideways faces.
            return ImageOps.exif_transpose(image).convert("RGB")
    except (OSError, ValueError) as exc:
        raise PluginError(f"cannot read training image {path.name}: {exc}") from exc


def captions_for(job: TrainingInput, *, allow_empty: bool) -> list[str]:
    captions = [substitute_trigger(item.caption or "", job.trigger_word).strip() for item in job.dataset]
    missing = [item.image_path for item, caption in zip(job.dataset, captions, strict=True) if not caption]
    if missing and not allow_empty:
        raise PluginError(
            f"{len(missing)} image(s) have no caption (first: {Path(missing[0]).name}); caption them or enable "
            "allow_empty_captions"
        )
    return captions


@torch.no_grad()
def encode_image(family: BaseFamily, vae: Any, image: Image.Image, *, device: torch.device) -> torch.Tensor:
    pixels = torch.from_numpy(to_model_input(image)).unsqueeze(0).to(device=device, dtype=vae.dtype)
    return family.encode_image_latents(vae, pixels).float().to("cpu")


@dataclass
class Dataset:
    """The job's images read and bucketed, and their captions: everything checked before any model loads."""

    images: list[Image.Image]
    items: list[BucketedItem]
    captions: list[str]


def read_dataset(job: TrainingInput, data_dir: Path, *, resolutions: list[int], allow_empty_captions: bool) -> Dataset:
    if not job.dataset:
        raise PluginError("the dataset is empty: upload images to the character first")
    captions = captions_for(job, allow_empty=allow_empty_captions)
    images = [open_image(data_dir / item.image_path) for item in job.dataset]
    items = assign_buckets([(image.width, image.height) for image in images], resolutions)
    return Dataset(images=images, items=items, captions=captions)


def encode_texts(
    family: BaseFamily,
    text_pipe: Any,
    dataset: Dataset,
    job: TrainingInput,
    *,
    sample_prompts: list[str],
    max_sequence_length: int,
    device: torch.device,
) -> tuple[list[TextEmbedding], TextEmbedding, list[tuple[str, TextEmbedding]]]:
    """Every caption (each distinct one once), the empty caption and the sample prompts: encoded on `device`, kept
    in CPU memory."""

    @torch.no_grad()
    def encode(prompt: str) -> TextEmbedding:
        return family.encode_prompt(text_pipe, prompt, device=device, max_sequence_length=max_sequence_length)

    unique = {caption: encode(caption) for caption in dict.fromkeys([*dataset.captions, ""])}
    # Each sample is labelled with the prompt the model got (trigger word in place), as generated images are.
    prompts = [apply_trigger(prompt, job.trigger_word) for prompt in sample_prompts]
    samples = [(prompt, encode(prompt)) for prompt in prompts]
    return [unique[caption] for caption in dataset.captions], unique[""], samples


def encode_latents(family: BaseFamily, vae: Any, dataset: Dataset, *, device: torch.device) -> list[torch.Tensor]:
    return [
        encode_image(family, vae, resize_and_crop(dataset.images[item.image_index], item.size), device=device)
        for item in dataset.items
    ]
