"""The tiny FLUX-architecture pipeline of fast-test mode.

Every component of a real `FluxPipeline` (transformer, VAE, CLIP and T5 text encoders, both tokenizers,
scheduler) at toy sizes with random weights from a fixed seed, saved to a folder and loaded back with
`FluxPipeline.from_pretrained` exactly like FLUX.1-dev. Nothing is downloaded: the tokenizers are built from an
in-memory byte-level vocabulary. About a megabyte on disk; a training step takes milliseconds on a CPU.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from isengard.models.locate import tiny_model_dir

log = logging.getLogger(__name__)

TINY_SEED = 20241124
TINY_VERSION = 1  # bump when the recipe changes so old folders are rebuilt
MARKER = "isengard_tiny.json"

TEXT_DIM = 32
MAX_CLIP_TOKENS = 77


@dataclass(frozen=True)
class TinyShape:
    """The widths of a tiny transformer and its text encoders (the text width feeds the transformer's embedders)."""

    heads: int = 2
    head_dim: int = 16
    text_dim: int = TEXT_DIM
    axes_dims_rope: tuple[int, int, int] = (4, 6, 6)  # must sum to head_dim


DEFAULT_SHAPE = TinyShape()
# For tests of quantized profiles: every linear layer's size a multiple of 64 x 256 values (torchao NF4's block and
# scaler groups) except the 64-channel patch embedder and output projection, which stay unquantized; still small
# (hidden width 128) and a training step still takes milliseconds.
QUANTIZABLE_SHAPE = TinyShape(heads=2, head_dim=64, text_dim=128, axes_dims_rope=(16, 24, 24))


def _byte_vocab() -> dict[str, int]:
    """A byte-level BPE vocabulary with no merges: every byte char, its word-final form, and the specials."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_chars = bytes_to_unicode()
    chars = [byte_chars[byte] for byte in range(256)]  # in byte order: byte i is token i
    vocab: dict[str, int] = {}
    for char in chars:
        vocab[char] = len(vocab)
    for char in chars:
        vocab[f"{char}</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab


def _clip_tokenizer() -> Any:
    from transformers import CLIPTokenizer

    # Without model_max_length, padding to "max_length" asks for an astronomically long sequence.
    return CLIPTokenizer(vocab=_byte_vocab(), merges=[], model_max_length=MAX_CLIP_TOKENS)


def _t5_tokenizer() -> Any:
    from transformers import T5TokenizerFast  # type: ignore[attr-defined]

    # A unigram vocabulary of single characters: enough to turn any prompt into distinct ids.
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -1.0)]
    pieces += [(chr(code), -2.0) for code in range(32, 127)]
    return T5TokenizerFast(vocab=pieces, extra_ids=0, model_max_length=512)


def build_tiny_pipeline(seed: int = TINY_SEED, shape: TinyShape = DEFAULT_SHAPE) -> Any:
    """Build the pipeline in memory (random weights, deterministic for a seed)."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=64,
        num_layers=2,
        num_single_layers=2,
        attention_head_dim=shape.head_dim,
        num_attention_heads=shape.heads,
        joint_attention_dim=shape.text_dim,
        pooled_projection_dim=shape.text_dim,
        guidance_embeds=True,
        axes_dims_rope=shape.axes_dims_rope,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        latent_channels=16,
        norm_num_groups=4,
        sample_size=128,
        scaling_factor=0.3611,
        shift_factor=0.1159,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )
    clip_tokenizer = _clip_tokenizer()
    t5_tokenizer = _t5_tokenizer()
    clip_config = CLIPTextConfig(
        vocab_size=len(clip_tokenizer),
        hidden_size=shape.text_dim,
        intermediate_size=2 * shape.text_dim,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=MAX_CLIP_TOKENS,
        projection_dim=shape.text_dim,
        bos_token_id=clip_tokenizer.bos_token_id,
        eos_token_id=clip_tokenizer.eos_token_id,
        pad_token_id=clip_tokenizer.pad_token_id,
    )
    text_encoder = CLIPTextModel(clip_config)
    t5_config = T5Config(
        vocab_size=len(t5_tokenizer),
        d_model=shape.text_dim,
        d_kv=8,
        d_ff=2 * shape.text_dim,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        pad_token_id=t5_tokenizer.pad_token_id,
        eos_token_id=t5_tokenizer.eos_token_id,
    )
    text_encoder_2 = T5EncoderModel(t5_config)
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15, base_image_seq_len=256,
        max_image_seq_len=4096,
    )  # fmt: skip
    return FluxPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=clip_tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=t5_tokenizer,
        transformer=transformer,
    )


def _is_current(folder: Path) -> bool:
    marker = folder / MARKER
    if not (folder / "model_index.json").exists() or not marker.exists():
        return False
    try:
        return bool(json.loads(marker.read_text()).get("version") == TINY_VERSION)
    except ValueError:
        return False


def save_tiny_model(folder: Path, seed: int = TINY_SEED, shape: TinyShape = DEFAULT_SHAPE) -> Path:
    """Build and save the tiny model into `folder` atomically (built beside it, then renamed)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.building")
    shutil.rmtree(staging, ignore_errors=True)
    build_tiny_pipeline(seed, shape).save_pretrained(staging)
    (staging / MARKER).write_text(json.dumps({"version": TINY_VERSION, "seed": seed}))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


def ensure_tiny_model(settings: Any) -> Path:
    """The tiny model's folder under the data dir, built on first use."""
    folder = tiny_model_dir(settings)
    if not _is_current(folder):
        log.info("building the tiny fast-test model", extra={"path": str(folder)})
        save_tiny_model(folder)
    return folder
