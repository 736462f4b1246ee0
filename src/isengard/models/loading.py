"""Loading a FLUX folder in stages, each stage alone on the device: shared by the trainer and the generation engine.

FLUX.1-dev in bf16 is about 33.5 GB whole (transformer 23.8, T5-XXL 9.5, CLIP 0.25, VAE 0.17), which no 24 GB card
holds at once; but no step needs it at once either. The text encoders are needed only to encode captions, the VAE
only to encode images and decode samples. Loading each stage alone and freeing it before the next makes the peak the
largest stage, never the sum.

The frozen transformer is stored as the memory profile says: bf16 (the run's precision), or int8 / NF4 weights.
Quantization goes through diffusers' `quantization_config` door with **torchao**, chosen because:
- it is the one field library that loads through diffusers on a CPU as well as on a GPU (bitsandbytes refuses
  without a GPU), so every profile's code path runs in CI, not only on a lent card;
- its int8 and NF4 weights are plain PyTorch tensor subclasses: a peft LoRA trains on top of them unchanged (same
  losses with gradient checkpointing, the saved LoRA has exactly the keys of one trained on the bf16 base), and they
  move between CPU and GPU with `.to()`, which block offloading needs;
- it is PyTorch's own quantization library, maintained with torch itself.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any

import torch

from isengard.models.bases import family_of_folder
from isengard.models.profiles import MemoryProfile, WeightFormat

log = logging.getLogger(__name__)

# torchao's NF4 stores 64-value blocks whose scales are themselves quantized in groups of 256 blocks: a weight is
# NF4-quantizable only when its size is a multiple of both (every linear layer of FLUX.1-dev is).
NF4_BLOCK_SIZE = 64
NF4_SCALER_BLOCK_SIZE = 256
GPU_HEADROOM = 1.25  # weights plus activations and allocator slack of one forward pass


def free_memory() -> None:
    """Return what deleted models held to the GPU: reference cycles first, then the CUDA allocator's cache.

    Without a GPU there is nothing to return early (a full collection costs over a second on a busy heap)."""
    if torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()


def folder_bytes(base: Path, *folders: str) -> int:
    """Bytes of the weight files of some components of a diffusers folder (what loading them costs)."""
    total = 0
    for name in folders:
        for pattern in ("*.safetensors", "*.bin"):
            total += sum(path.stat().st_size for path in (base / name).glob(pattern))
    return total


def text_encoder_device(base: Path, device: torch.device, free_bytes: int | None = None) -> torch.device:
    """Where the text encoders run: the GPU when they fit its free memory alone, else the CPU (a small card).

    `free_bytes`: the GPU's free memory, asked of the GPU when not given."""
    if device.type != "cuda":
        return device
    if free_bytes is None:
        free_bytes = int(torch.cuda.mem_get_info(device)[0])
    needed = folder_bytes(base, *family_of_folder(base).text_encoder_folders) * GPU_HEADROOM
    return device if needed < free_bytes else torch.device("cpu")


def load_text_encoders(base: Path, *, dtype: torch.dtype, device: torch.device) -> Any:
    """The base's pipeline holding only the tokenizers and text encoders (for its family's `encode_prompt`)."""
    # In the run's precision even on the CPU of a small card: T5-XXL in fp32 would take 19 GB of its memory.
    pipe = family_of_folder(base).pipeline_cls().from_pretrained(base, transformer=None, vae=None, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    pipe.to(device)
    log.info("text encoders loaded", extra={"device": str(device)})
    return pipe


def load_vae(base: Path, *, dtype: torch.dtype, device: torch.device) -> Any:
    vae = family_of_folder(base).vae_cls().from_pretrained(base, subfolder="vae", dtype=dtype)
    vae.requires_grad_(False)
    return vae.to(device)


def load_scheduler(base: Path) -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler.from_pretrained(base, subfolder="scheduler")


def transformer_config(base: Path) -> dict[str, Any]:
    """The transformer's config from a diffusers folder (what the memory planner estimates from)."""
    config: dict[str, Any] = family_of_folder(base).transformer_cls().load_config(base, subfolder="transformer")
    return config


def _transformer_class_for(config: dict[str, Any]) -> Any:
    """The diffusers class a transformer config belongs to (its `_class_name`; FLUX.1's when unsaid)."""
    from diffusers import FluxTransformer2DModel

    name = config.get("_class_name")
    if name:
        import diffusers

        return getattr(diffusers, str(name), FluxTransformer2DModel)
    return FluxTransformer2DModel


def unquantizable_linears(config: dict[str, Any], weight_format: WeightFormat) -> list[str]:
    """Linear layers of a transformer with this config that the format cannot store (kept in the run's precision).

    Built on the meta device: nothing is allocated. Empty for FLUX.1-dev; small test models name a few.
    """
    if weight_format != "nf4":
        return []
    with torch.device("meta"):
        model = _transformer_class_for(config).from_config(config)
    group = NF4_BLOCK_SIZE * NF4_SCALER_BLOCK_SIZE
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module.weight.numel() % group
    ]


def quantization_config(weight_format: WeightFormat, transformer_config: dict[str, Any]) -> Any | None:
    """diffusers' `quantization_config` for a transformer stored in `weight_format` (None: not quantized)."""
    if weight_format == "bf16":
        return None
    from diffusers import TorchAoConfig
    from torchao.quantization import Int8WeightOnlyConfig

    if weight_format == "int8":
        return TorchAoConfig(Int8WeightOnlyConfig())
    from torchao.prototype._nf4tensor_api import NF4WeightOnlyConfig  # its documented home in torchao 0.18

    nf4 = NF4WeightOnlyConfig()
    nf4.block_size, nf4.scaler_block_size = NF4_BLOCK_SIZE, NF4_SCALER_BLOCK_SIZE
    skip = unquantizable_linears(transformer_config, weight_format)
    if not skip:
        return TorchAoConfig(nf4)
    from torchao.quantization import FqnToConfig

    # Exact names (diffusers' modules_to_not_convert matches substrings: "proj_out" would also keep every single
    # block's proj_out unquantized).
    return TorchAoConfig(FqnToConfig({**dict.fromkeys(skip), "re:.*": nf4}))  # exact names are looked up first


def load_transformer(base: Path, *, profile: MemoryProfile, dtype: torch.dtype, device: torch.device) -> Any:
    """The frozen transformer stored as `profile` says.

    Quantized weights are made on `device` as they load (a GPU quantizes a layer in milliseconds, and the bf16 copy
    of the whole model never exists there), except with block offloading, where the blocks must stay in CPU memory:
    the model then loads on the CPU and `offload.attach_block_swap` places it.
    """
    cls = family_of_folder(base).transformer_cls()
    quant = quantization_config(profile.weight_format, transformer_config(base))
    kwargs: dict[str, Any] = {"subfolder": "transformer", "dtype": dtype}
    if quant is not None:
        kwargs["quantization_config"] = quant
    target = torch.device("cpu") if profile.offload_blocks else device
    if target.type == "cuda":
        kwargs["device_map"] = {"": str(target)}
    transformer = cls.from_pretrained(base, **kwargs)
    transformer.requires_grad_(False)
    if target.type != "cuda":
        transformer.to(target)
    log.info("transformer loaded", extra={"profile": profile.name, "device": str(target)})
    return transformer


def stored_weight_bytes(module: torch.nn.Module) -> int:
    """Bytes the module's parameters and buffers really occupy, quantized storage included."""
    from isengard.models.offload import tensor_bytes

    tensors = [*module.parameters(), *module.buffers()]
    return sum(tensor_bytes(t) for t in tensors)


def load_text_encoder_int8(base: Path, device: torch.device) -> tuple[str, Any]:
    """The family's large text encoder (its last: T5-XXL, Qwen3) with int8 weights, and its pipeline component name:
    T5-XXL takes 4.9 GB instead of 9.5, what lets a quantized FLUX stay whole on a 16-24 GB card.

    torchao's int8 layers compute in bf16, so the pipeline around it must run in bf16 too (as on any GPU). Quantized
    on the GPU as it loads when it will live there (seconds, instead of minutes of CPU work)."""
    import transformers
    from torchao.quantization import Int8WeightOnlyConfig
    from transformers import TorchAoConfig

    encoder = family_of_folder(base).text_encoders[-1]
    # No Hub kernels: with the `kernels` package present (transformers 5 depends on it) transformers swaps layers
    # for kernels fetched from the Hugging Face Hub by default, for the GPU it finds in `device_map`; Isengard loads
    # offline and runs the layers it was tested with.
    kwargs: dict[str, Any] = {"use_kernels": False}
    if device.type == "cuda":
        kwargs["device_map"] = {"": str(device)}
    model = getattr(transformers, encoder.class_name).from_pretrained(
        base, subfolder=encoder.folder, quantization_config=TorchAoConfig(Int8WeightOnlyConfig()),
        dtype=torch.bfloat16, **kwargs,
    )  # fmt: skip
    return encoder.folder, model


def load_generation_pipeline(
    base: Path, *, profile: MemoryProfile, placement: str, dtype: torch.dtype, device: torch.device
) -> Any:
    """A whole pipeline of the base's family for generation, its transformer stored as `profile` says, placed as
    `placement` says:

    - "resident": every component stays on the device between calls. With a quantized profile the T5 encoder is
      int8 too, so FLUX.1-dev stays whole in about 18.6 GiB (int8) or 13.6 GiB (NF4) at 1024 px: no per-call copies;
    - "offload": every component visits the device in turn (diffusers' model CPU offload), for cards where even the
      NF4 model does not fit whole; slower by the copies of every call.
    """
    kwargs: dict[str, Any] = {"dtype": dtype}
    if profile.weight_format != "bf16":
        # Quantized where it will live: on the device when resident, in CPU memory when offloaded.
        target = device if placement == "resident" else torch.device("cpu")
        kwargs["transformer"] = load_transformer(base, profile=profile, dtype=dtype, device=target)
        if dtype == torch.bfloat16:
            component, encoder = load_text_encoder_int8(base, target)
            kwargs[component] = encoder
    pipe = family_of_folder(base).pipeline_cls().from_pretrained(base, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    if placement == "offload" and device.type == "cuda":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    log.info("generation pipeline loaded", extra={"profile": profile.name, "placement": placement})
    return pipe
