"""FLUX image generation with diffusers inside the worker process.

The base pipeline is loaded once per worker process and kept (keyed by model folder); LoRAs are loaded as named
peft adapters and switched with `set_adapters`, so changing LoRA costs milliseconds instead of a base reload. A
small LRU keeps the recently used adapters resident.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from PIL import Image
from pydantic import BaseModel

from isengard.domain import LoraRef
from isengard.plugins.api import (
    DEFAULT_BASE,
    Capability,
    JobContext,
    PluginError,
    ProfileName,
    free_device_memory,
    get_base,
)
from isengard.plugins.image.grid import GridCell, grid_params, render_grid
from isengard.plugins.image.interface import ImagePlugin
from isengard.plugins.image.outputs import save_output
from isengard.plugins.image.request import ImageRequest, image_seeds, lora_summary, snap_size, with_trigger_word

log = logging.getLogger(__name__)

MAX_RESIDENT_LORAS = 4
TINY_BASE_MODEL_NAME = "isengard/tiny-flux (fast-test)"


@dataclass
class LoadedPipeline:
    """A base pipeline and the LoRA adapters currently loaded into it (LRU order: oldest first)."""

    pipe: Any
    model_path: str
    device: str
    memory_profile: str = "bf16"
    placement: str = "resident"
    adapters: OrderedDict[str, str] = field(default_factory=OrderedDict)  # file key -> adapter name
    lora_loads: int = 0


class PipelineCache:
    """One resident base pipeline per worker process; counts base loads so tests and benches can check reuse."""

    def __init__(self, max_loras: int = MAX_RESIDENT_LORAS, memory_profile: ProfileName | None = None) -> None:
        """`memory_profile`: force a profile instead of the fastest that fits this machine."""
        self.max_loras = max_loras
        self.memory_profile = memory_profile
        self.loaded: LoadedPipeline | None = None
        self.loads = 0
        self.lock = threading.Lock()

    def get(self, model_path: Path) -> LoadedPipeline:
        key = str(model_path.resolve())
        if self.loaded is not None and self.loaded.model_path == key:
            return self.loaded
        self.release()
        self.loaded = _load_pipeline(model_path, self.memory_profile)
        self.loads += 1
        return self.loaded

    def release(self) -> None:
        if self.loaded is None:
            return
        self.loaded = None
        free_device_memory()


# The worker process keeps one cache for its lifetime: the plugin instance may be rebuilt, the pipeline stays.
PIPELINES = PipelineCache()


def _load_pipeline(model_path: Path, requested: ProfileName | None) -> LoadedPipeline:
    import torch

    from isengard.plugins.api import load_generation_pipeline
    from isengard.plugins.image.flux_memory import choose_generation_setup

    started = time.perf_counter()
    if not (model_path / "model_index.json").exists():
        raise PluginError(f"no FLUX model at {model_path} (model_index.json is missing)")
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    setup = choose_generation_setup(model_path, device, requested)
    pipe = load_generation_pipeline(
        model_path, profile=setup.profile, placement=setup.placement,
        dtype=torch.bfloat16 if cuda else torch.float32, device=device,
    )  # fmt: skip
    log.info(
        "base pipeline loaded",
        extra={"model": str(model_path), "device": device.type, "memory": setup.reason,
               "seconds": round(time.perf_counter() - started, 2)},
    )  # fmt: skip
    return LoadedPipeline(
        pipe=pipe, model_path=str(model_path.resolve()), device=device.type, memory_profile=setup.profile.name,
        placement=setup.placement,
    )  # fmt: skip


def _file_key(path: Path) -> str:
    # A retrained file at the same path must not reuse the stale adapter.
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_mtime_ns}:{stat.st_size}"


def _adapter_name(key: str) -> str:
    return "lora_" + hashlib.sha1(key.encode()).hexdigest()[:16]


def activate_loras(loaded: LoadedPipeline, refs: list[tuple[Path, float]], max_loras: int) -> list[str]:
    """Make exactly `refs` active with their weights, loading what is missing and evicting the least recent."""
    pipe = loaded.pipe
    wanted: list[tuple[str, float]] = []
    for path, weight in refs:
        key = _file_key(path)
        if key in loaded.adapters:
            loaded.adapters.move_to_end(key)
        else:
            name = _adapter_name(key)
            try:
                pipe.load_lora_weights(str(path), adapter_name=name)
            except Exception as exc:
                raise PluginError(f"could not load the LoRA {path.name}: {exc}") from exc
            loaded.adapters[key] = name
            loaded.lora_loads += 1
        wanted.append((loaded.adapters[key], weight))
    in_use = {name for name, _ in wanted}
    while len(loaded.adapters) > max(max_loras, len(in_use)):
        oldest_key, oldest_name = next(iter(loaded.adapters.items()))
        if oldest_name in in_use:
            loaded.adapters.move_to_end(oldest_key)
            continue
        pipe.delete_adapters(oldest_name)
        del loaded.adapters[oldest_key]
    if wanted:
        pipe.enable_lora()
        pipe.set_adapters([name for name, _ in wanted], adapter_weights=[weight for _, weight in wanted])
    elif loaded.adapters:
        pipe.disable_lora()
    return [name for name, _ in wanted]


class DiffusersFluxGenerator(ImagePlugin):
    name: ClassVar[str] = "diffusers"
    description: ClassVar[str] = "FLUX in the worker process with diffusers; LoRAs swapped without reloading the base"
    request_model: ClassVar[type[BaseModel]] = ImageRequest

    def __init__(self, settings: Any | None = None, cache: PipelineCache | None = None) -> None:
        super().__init__(settings)
        self.cache = cache or PIPELINES

    def release_memory(self) -> None:
        with self.cache.lock:
            if self.cache.loaded is None:
                return
            self.cache.release()
        log.info("generation pipeline released for another plugin's job")

    def capabilities(self) -> Capability:
        try:
            import diffusers
            import torch
        except ImportError as exc:
            return Capability(available=False, reason=f"diffusers or torch is not installed: {exc}")
        details: dict[str, Any] = {
            "diffusers": diffusers.__version__,
            "cuda": torch.cuda.is_available(),
            "max_resident_loras": self.cache.max_loras,
            "grid": True,
        }
        if not self.host.base_model:
            return Capability(available=True, details=details)  # built without settings (tests): ctx gives the model
        if self.host.production and not torch.cuda.is_available():
            return Capability(
                available=False, reason="production mode needs a CUDA GPU for FLUX.1-dev", details=details
            )
        model = self.host.locate_base_model()
        if model.path is None:
            return Capability(available=False, reason=model.reason, details=details)
        details["model"] = str(model.path)
        if torch.cuda.is_available():
            from isengard.plugins.image.flux_memory import choose_generation_setup

            # How this worker would hold the model now: which profile, resident or offloaded, and the estimate.
            try:
                details["memory"] = choose_generation_setup(Path(model.path), torch.device("cuda")).reason
            except (OSError, ValueError) as exc:  # an incomplete model folder: generation itself will say so
                details["memory"] = f"no plan: {exc}"
        return Capability(available=True, details=details)

    # Generation -------------------------------------------------------------------------------------------------

    def _base_model_name(self, ctx: JobContext, base: str, checkpoint: str) -> str:
        distilled = checkpoint == "distilled"
        if ctx.mode == "fast-test":
            if base == DEFAULT_BASE:
                return TINY_BASE_MODEL_NAME
            return f"isengard/tiny {base}{' distilled' if distilled else ''} (fast-test)"
        spec = get_base(base)
        return (spec.distilled_repo_id if distilled else None) or spec.repo_id

    def _lora_files(self, ctx: JobContext, loras: list[LoraRef]) -> list[tuple[Path, float]]:
        root = ctx.data_dir.resolve()
        files = []
        for ref in loras:
            path = (root / ref.path).resolve()
            if root not in path.parents:
                raise PluginError(f"LoRA {ref.name or ref.lora_id}: its path leaves the data folder")
            if not path.is_file():
                raise PluginError(f"LoRA {ref.name or ref.lora_id}: file {ref.path} is missing")
            files.append((path, ref.weight))
        return files

    def _render(
        self,
        ctx: JobContext,
        loaded: LoadedPipeline,
        prompt: str,
        seed: int,
        request: ImageRequest,
        size: tuple[int, int],
        progress_offset: int,
        progress_total: int,
    ) -> Image.Image:
        import torch

        def on_step_end(pipe: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
            ctx.report_progress(progress_offset + step + 1, progress_total, stage="generating")
            # Raising here stops the denoising loop at once; the pipeline holds no state that needs undoing.
            ctx.raise_if_cancelled()
            return callback_kwargs

        # A CPU generator gives the same noise on every device, so a seed means the same image everywhere.
        generator = torch.Generator(device="cpu").manual_seed(seed)
        # no_grad, not inference_mode: under inference mode a torchao-quantized module cannot change device (its
        # `to` fails "Attempted to set the storage of a tensor on device ... to a storage on different device"), and
        # with model CPU offload every component is moved onto the GPU inside this call (the int8 T5 included).
        with torch.no_grad():
            result = loaded.pipe(
                prompt=prompt,
                width=size[0],
                height=size[1],
                num_inference_steps=request.steps,
                guidance_scale=request.guidance,
                generator=generator,
                callback_on_step_end=on_step_end,
                output_type="pil",
            )
        image: Image.Image = result.images[0]
        return image

    def generate(self, ctx: JobContext, request: BaseModel) -> dict[str, Any]:
        assert isinstance(request, ImageRequest)
        width, height, note = snap_size(request.width, request.height)
        if note:
            ctx.log(note, level="warning")
        ctx.raise_if_cancelled()
        ctx.report_progress(0, 1, stage="loading model")
        with self.cache.lock:
            loaded = self.cache.get(ctx.base_model_dir(request.base, distilled=request.checkpoint == "distilled"))
            if request.grid is not None:
                return self._generate_grid(ctx, loaded, request, (width, height), note)
            return self._generate_images(ctx, loaded, request, (width, height), note)

    def _common_params(self, ctx: JobContext, request: ImageRequest, size: tuple[int, int]) -> dict[str, Any]:
        return {
            "width": size[0],
            "height": size[1],
            "steps": request.steps,
            "guidance": request.guidance,
            "plugin": self.name,
            "base_model": self._base_model_name(ctx, request.base, request.checkpoint),
            "base": request.base,
            "checkpoint": request.checkpoint,
            "character_id": request.character_id,
            "job_id": ctx.job_id,
        }

    def _generate_images(
        self, ctx: JobContext, loaded: LoadedPipeline, request: ImageRequest, size: tuple[int, int], note: str | None
    ) -> dict[str, Any]:
        activate_loras(loaded, self._lora_files(ctx, request.loras), self.cache.max_loras)
        prompt = with_trigger_word(request.prompt, request.trigger_word, request.add_trigger_word)
        total = request.steps * request.num_images
        artifacts, seeds = [], []
        for index, seed in enumerate(image_seeds(request)):
            image = self._render(ctx, loaded, prompt, seed, request, size, index * request.steps, total)
            params = {
                **self._common_params(ctx, request, size),
                "kind": "image",
                "prompt": prompt,
                "user_prompt": request.prompt,
                "seed": seed,
                "index": index,
                "loras": lora_summary(request.loras),
                "trigger_word": request.trigger_word,
                "add_trigger_word": request.add_trigger_word,
                "size_note": note,
            }
            artifact = save_output(ctx, image, f"{index:02d}-{seed}", params)
            artifacts.append(artifact.id)
            seeds.append(seed)
        ctx.log(f"generated {len(artifacts)} image(s)", seeds=seeds)
        return {
            "images": len(artifacts),
            "artifact_ids": artifacts,
            "seeds": seeds,
            "width": size[0],
            "height": size[1],
        }

    def _generate_grid(
        self, ctx: JobContext, loaded: LoadedPipeline, request: ImageRequest, size: tuple[int, int], note: str | None
    ) -> dict[str, Any]:
        spec = request.grid
        assert spec is not None
        total_cells = len(spec.prompts) * len(spec.seeds) * len(spec.columns)
        total = total_cells * request.steps

        def render(cell: GridCell, index: int, _count: int) -> Image.Image:
            activate_loras(loaded, self._lora_files(ctx, cell.loras), self.cache.max_loras)
            prompt = with_trigger_word(cell.prompt, request.trigger_word, request.add_trigger_word)
            return self._render(ctx, loaded, prompt, cell.seed, request, size, index * request.steps, total)

        grid = render_grid(spec, render, request)
        common = self._common_params(ctx, request, size)
        params = {**grid_params(spec, request, common, grid.size), "size_note": note}
        artifact = save_output(ctx, grid, "grid", params)
        ctx.log(f"rendered a comparison grid of {total_cells} images")
        return {"images": 1, "grid": True, "cells": total_cells, "artifact_ids": [artifact.id]}
