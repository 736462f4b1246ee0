"""The tiny Qwen3-VL of fast-test mode: the production architecture at toy sizes, random weights, built locally.

Vision tower, deepstack merger, multimodal rotary text decoder: the same classes as Qwen3-VL-2B-Instruct, so the
captioner runs the real preprocessing and `generate()` path in every test. Nothing is downloaded: the tokenizer is
a byte-level BPE over an in-memory vocabulary (the 256 byte characters plus Qwen's chat and vision tokens). Its
generation config lets it write only printable ASCII, so its (meaningless) captions are plain text.

`PRODUCTION_SIZES` holds the sizes of Qwen3-VL-2B-Instruct, for measuring speed and memory on a GPU with random
weights where the real weights cannot be fetched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from isengard.plugins.api import save_tiny_folder, tiny_folder_is_current

TINY_SEED = 20261201
TINY_VERSION = 1  # bump when the recipe changes so old folders are rebuilt
MARKER = "isengard_tiny_vlm.json"
TINY_DIRNAME = "tiny-qwen3-vl"

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>")  # fmt: skip
PATCH_SIZE = 16
MERGE_SIZE = 2

TINY_SIZES: dict[str, dict[str, Any]] = {
    "text": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=1, head_dim=16, mrope_section=[2, 3, 3], initializer_range=0.3),
    "vision": dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, num_position_embeddings=64,
                   deepstack_visual_indexes=[0]),
}  # fmt: skip

PRODUCTION_SIZES: dict[str, dict[str, Any]] = {
    "text": dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16,
                 num_key_value_heads=8, head_dim=128, mrope_section=[24, 20, 20], initializer_range=0.02),
    "vision": dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16, num_position_embeddings=2304,
                   deepstack_visual_indexes=[5, 11, 17]),
}  # fmt: skip


def build_tokenizer() -> Any:
    from transformers import Qwen2TokenizerFast  # type: ignore[attr-defined]
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    # Byte i is token i: the printable stand-ins byte-level BPE uses, in byte order.
    byte_chars = bytes_to_unicode()
    vocab = {byte_chars[byte]: byte for byte in range(256)}
    tokenizer = Qwen2TokenizerFast(
        vocab=vocab, merges=[], unk_token=None, bos_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tokenizer.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS[1:])})
    tokenizer.padding_side = "left"  # batched generation continues each prompt from its last token
    return tokenizer


def build_model(tokenizer: Any, sizes: dict[str, dict[str, Any]], *, seed: int = TINY_SEED) -> Any:
    """A Qwen3-VL with random weights at the given sizes (created on the current default torch device)."""
    import torch
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration  # type: ignore[attr-defined]

    ids = dict(zip(SPECIAL_TOKENS, tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS)), strict=True))
    text = dict(sizes["text"])
    mrope_section = text.pop("mrope_section")
    config = Qwen3VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            max_position_embeddings=4096,
            pad_token_id=ids["<|endoftext|>"],
            rope_parameters={"rope_type": "default", "rope_theta": 5_000_000.0, "mrope_section": mrope_section,
                             "mrope_interleaved": True},
            **text,
        ),
        vision_config=dict(
            patch_size=PATCH_SIZE, spatial_merge_size=MERGE_SIZE, temporal_patch_size=2,
            out_hidden_size=text["hidden_size"], **sizes["vision"],
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
        # Wide random weights: the tiny model then writes varied characters instead of one repeated token.
        initializer_range=text["initializer_range"],  # type: ignore[call-arg]
    )  # fmt: skip
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    return model


def build_image_processor(max_pixels: int = 128 * 128) -> Any:
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(
        patch_size=PATCH_SIZE, merge_size=MERGE_SIZE, temporal_patch_size=2, min_pixels=32 * 32, max_pixels=max_pixels
    )


def save_tiny_vlm(folder: Path) -> Path:
    """Build the tiny model and save it (model, tokenizer, image processor) to `folder`, replacing what was there."""
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, TINY_SIZES)
    # Printable ASCII only (byte tokens 32-126) and the end mark: gibberish, but readable gibberish.
    allowed = {*range(32, 127), model.generation_config.eos_token_id}
    model.generation_config.suppress_tokens = [i for i in range(len(tokenizer)) if i not in allowed]
    model.generation_config.min_new_tokens = 4
    parts = [model, tokenizer, build_image_processor()]
    return save_tiny_folder(folder, parts, marker=MARKER, version=TINY_VERSION, seed=TINY_SEED)


def ensure_tiny_vlm(models_dir: Path) -> Path:
    folder = models_dir / TINY_DIRNAME
    return folder if tiny_folder_is_current(folder, MARKER, TINY_VERSION) else save_tiny_vlm(folder)
