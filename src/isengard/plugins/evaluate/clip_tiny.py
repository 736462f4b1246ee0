"""The tiny CLIP of fast-test mode: the production classes at toy sizes, random weights from a fixed seed, saved to
a folder and loaded back exactly like a downloaded CLIP, so the clip evaluator's real path runs in every test.

Nothing is downloaded: the tokenizer is a byte-level BPE over an in-memory vocabulary (every byte, its word-final
form, the two special tokens), and the image processor is the PIL one (no torchvision). Its scores mean nothing;
they are deterministic, which is all a test of the plumbing needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from isengard.plugins.api import save_tiny_folder, tiny_folder_is_current

TINY_SEED = 20261207
TINY_VERSION = 1  # bump when the recipe changes so old folders are rebuilt
MARKER = "isengard_tiny_clip.json"
TINY_DIRNAME = "tiny-clip"
IMAGE_SIZE = 64
MAX_TOKENS = 77


def build_tokenizer() -> Any:
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_chars = bytes_to_unicode()
    chars = [byte_chars[byte] for byte in range(256)]
    vocab = {char: index for index, char in enumerate(chars)}
    vocab.update({f"{char}</w>": 256 + index for index, char in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    # Without model_max_length, truncation and padding have no length to go by.
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=MAX_TOKENS)


def build_model(tokenizer: Any, seed: int = TINY_SEED) -> Any:
    import torch
    from transformers import CLIPConfig, CLIPModel

    layers = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            max_position_embeddings=MAX_TOKENS,
            # Pooling looks for the end token: the config's ids must be the tokenizer's.
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            **layers,
        ),
        vision_config=dict(image_size=IMAGE_SIZE, patch_size=16, **layers),
        projection_dim=16,
    )
    torch.manual_seed(seed)
    return CLIPModel(config).eval()


def build_image_processor() -> Any:
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    return CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )


def save_tiny_clip(folder: Path) -> Path:
    """Build the tiny CLIP and save it (model, tokenizer, image processor) to `folder`, replacing what was there."""
    tokenizer = build_tokenizer()
    parts = [build_model(tokenizer), tokenizer, build_image_processor()]
    return save_tiny_folder(folder, parts, marker=MARKER, version=TINY_VERSION, seed=TINY_SEED)


def ensure_tiny_clip(models_dir: Path) -> Path:
    folder = models_dir / TINY_DIRNAME
    return folder if tiny_folder_is_current(folder, MARKER, TINY_VERSION) else save_tiny_clip(folder)
