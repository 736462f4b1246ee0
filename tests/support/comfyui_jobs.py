"""What the ComfyUI plugin tests share: plugin settings pointing at a stand-in, a request, a small valid workflow,
and a data folder with one LoRA in it (the folder ComfyUI's extra_model_paths.yaml would point at)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from isengard.plugins.image.comfyui import ComfyUISettings


def ComfySettings(url: str, workflows: Path | None = None, timeout: float = 30.0) -> ComfyUISettings:
    """The ComfyUI plugin's own settings, as ISENGARD_COMFYUI_* would give them."""
    return ComfyUISettings(url=url, workflows_dir=workflows, timeout_seconds=timeout)


def image_request(**values: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": "a knight", "width": 96, "height": 64, "steps": 5, "seed": 11}
    body.update(values)
    return body


def data_with_a_lora(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    (folder / "loras" / "char" / "run").mkdir(parents=True)
    (folder / "loras" / "char" / "run" / "final.safetensors").write_bytes(b"weights")
    return folder


# A complete FLUX graph in API format, small enough to render fast, with Isengard's markers.
TINY_WORKFLOW = {
    "1": {"class_type": "UNETLoader", "inputs": {"unet_name": "flux1-dev.safetensors", "weight_dtype": "default"}},
    "2": {"class_type": "DualCLIPLoader", "inputs": {"clip_name1": "t5xxl_fp16.safetensors",
                                                     "clip_name2": "clip_l.safetensors", "type": "flux"}},
    "3": {"class_type": "VAELoader", "inputs": {"vae_name": "ae.safetensors"}},
    "5": {"class_type": "CLIPTextEncode", "_meta": {"title": "isengard:prompt"},
          "inputs": {"text": "", "clip": ["2", 0]}},
    "6": {"class_type": "EmptySD3LatentImage", "_meta": {"title": "isengard:width,height"},
          "inputs": {"width": 64, "height": 64, "batch_size": 1}},
    "7": {"class_type": "KSampler", "_meta": {"title": "isengard:seed,steps"},
          "inputs": {"model": ["1", 0], "seed": 0, "steps": 1, "cfg": 1.0, "sampler_name": "euler",
                     "scheduler": "simple", "positive": ["5", 0], "negative": ["5", 0], "latent_image": ["6", 0],
                     "denoise": 1.0}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["7", 0], "vae": ["3", 0]}},
    "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "x"}},
}  # fmt: skip
