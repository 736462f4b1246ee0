"""The FLUX.1 family: FLUX.1 [dev] (Isengard's default base) and FLUX.1 Krea [dev], one architecture.

A `FluxPipeline` folder: a 12 B `FluxTransformer2DModel` with a guidance embedding (guidance is distilled into the
weights), CLIP-L for a pooled vector and T5-XXL for the tokens, a 16-channel `AutoencoderKL`. Latents are packed 2x2
into 64-channel tokens; the scheduler shifts with the image's size. LoRAs in diffusers' PEFT layout with the
`transformer.` prefix load in diffusers and ComfyUI alike (ComfyUI converts the names).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from isengard.models.bases.spec import (
    BaseDefaults,
    BaseFamily,
    BaseSpec,
    FlowSettings,
    TextEmbedding,
    TextEncoderSpec,
)
from isengard.models.flux_layout import FluxLayout, Layout, Linear

if TYPE_CHECKING:
    import torch

    from isengard.models.profiles import WeightFormat

# The attention and feed-forward projections of FLUX's double- and single-stream blocks, as diffusers names them.
FLUX1_TARGET_MODULES = (
    "attn.to_k",
    "attn.to_q",
    "attn.to_v",
    "attn.to_out.0",
    "attn.add_k_proj",
    "attn.add_q_proj",
    "attn.add_v_proj",
    "attn.to_add_out",
    "ff.net.0.proj",
    "ff.net.2",
    "ff_context.net.0.proj",
    "ff_context.net.2",
)

# diffusers' FLUX blocks widen the feed-forward by this fixed ratio (not part of the config).
FLUX_MLP_RATIO = 4
# The timestep and guidance embeddings start from this many sinusoidal channels.
FLUX_TIME_CHANNELS = 256


def flux_layout(config: dict[str, Any], *, text_tokens: int = 512) -> FluxLayout:
    """Shapes of diffusers' `FluxTransformer2DModel` for a config (its `config.json` keys, defaults as diffusers')."""
    heads = int(config.get("num_attention_heads", 24))
    head_dim = int(config.get("attention_head_dim", 128))
    dim = heads * head_dim
    patch = int(config.get("patch_size", 1))
    in_channels = int(config.get("in_channels", 64))
    out_channels = int(config.get("out_channels") or in_channels)
    joint = int(config.get("joint_attention_dim", 4096))
    pooled = int(config.get("pooled_projection_dim", 768))
    guidance = bool(config.get("guidance_embeds", False))
    mlp = dim * FLUX_MLP_RATIO

    def embedder(name: str, inputs: int) -> list[Linear]:
        return [Linear(f"{name}.linear_1", inputs, dim), Linear(f"{name}.linear_2", dim, dim)]

    outer = [
        Linear("x_embedder", in_channels, dim),
        Linear("context_embedder", joint, dim),
        *embedder("time_text_embed.timestep_embedder", FLUX_TIME_CHANNELS),
        *(embedder("time_text_embed.guidance_embedder", FLUX_TIME_CHANNELS) if guidance else []),
        *embedder("time_text_embed.text_embedder", pooled),
        Linear("norm_out.linear", dim, 2 * dim),
        Linear("proj_out", dim, patch * patch * out_channels),
    ]
    double = [
        Linear("norm1.linear", dim, 6 * dim),
        Linear("norm1_context.linear", dim, 6 * dim),
        Linear("attn.to_q", dim, dim),
        Linear("attn.to_k", dim, dim),
        Linear("attn.to_v", dim, dim),
        Linear("attn.to_out.0", dim, dim),
        Linear("attn.add_q_proj", dim, dim),
        Linear("attn.add_k_proj", dim, dim),
        Linear("attn.add_v_proj", dim, dim),
        Linear("attn.to_add_out", dim, dim),
        Linear("ff.net.0.proj", dim, mlp),
        Linear("ff.net.2", mlp, dim),
        Linear("ff_context.net.0.proj", dim, mlp),
        Linear("ff_context.net.2", mlp, dim),
    ]
    single = [
        Linear("norm.linear", dim, 3 * dim),
        Linear("proj_mlp", dim, mlp),
        Linear("attn.to_q", dim, dim),
        Linear("attn.to_k", dim, dim),
        Linear("attn.to_v", dim, dim),
        Linear("proj_out", dim + mlp, dim),
    ]
    return FluxLayout(
        outer=Layout("outer", tuple(outer), 0),
        # RMS norms of queries and keys (two per stream) carry a weight of the head's width.
        double=Layout("double", tuple(double), 4 * head_dim),
        single=Layout("single", tuple(single), 2 * head_dim),
        num_double=int(config.get("num_layers", 19)),
        num_single=int(config.get("num_single_layers", 38)),
        hidden=dim,
        text_tokens=text_tokens,
    )


def t5_encoder_layout(config: dict[str, Any]) -> Layout:
    """Shapes of transformers' `T5EncoderModel` (gated-GELU feed-forward, as T5 v1.1 and T5-XXL use)."""
    d_model = int(config.get("d_model", 4096))
    d_kv = int(config.get("d_kv", 64))
    heads = int(config.get("num_heads", 64))
    d_ff = int(config.get("d_ff", 10240))
    layers = int(config.get("num_layers", 24))
    vocab = int(config.get("vocab_size", 32128))
    buckets = int(config.get("relative_attention_num_buckets", 32))
    gated = str(config.get("feed_forward_proj", "gated-gelu")).startswith("gated")
    inner = d_kv * heads
    linears = [
        Linear("SelfAttention.q", d_model, inner, bias=False, count=layers),
        Linear("SelfAttention.k", d_model, inner, bias=False, count=layers),
        Linear("SelfAttention.v", d_model, inner, bias=False, count=layers),
        Linear("SelfAttention.o", inner, d_model, bias=False, count=layers),
        Linear("DenseReluDense.wi", d_model, d_ff, bias=False, count=layers * (2 if gated else 1)),
        Linear("DenseReluDense.wo", d_ff, d_model, bias=False, count=layers),
    ]
    # The shared token embedding, the first layer's relative position bias, two layer norms a layer and a final one.
    other = vocab * d_model + buckets * heads + (2 * layers + 1) * d_model
    return Layout("outer", tuple(linears), other)


# Published configs of FLUX.1-dev's transformer and its T5-XXL text encoder (the parts the planner reads).
FLUX_DEV_TRANSFORMER: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 64,
    "out_channels": None,
    "num_layers": 19,
    "num_single_layers": 38,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "pooled_projection_dim": 768,
    "guidance_embeds": True,
    "axes_dims_rope": [16, 56, 56],
}

T5_XXL_ENCODER: dict[str, Any] = {
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_heads": 64,
    "num_layers": 24,
    "vocab_size": 32128,
    "relative_attention_num_buckets": 32,
    "feed_forward_proj": "gated-gelu",
}

# CLIP-L's text model and the VAE are small next to these; their parameter counts as published.
CLIP_L_PARAMS = 123_060_480
FLUX_VAE_PARAMS = 83_819_683

# FLUX.1 [dev]'s recommended sampling; Krea's model card recommends more guidance.
DEV_DEFAULTS = BaseDefaults(resolution=1024, sample_steps=28, guidance=3.5, training_guidance=1.0)
KREA_DEFAULTS = BaseDefaults(resolution=1024, sample_steps=28, guidance=4.5, training_guidance=1.0)
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


def build_tiny_flux1(seed: int, shape: TinyShape = DEFAULT_SHAPE) -> Any:
    """The tiny FLUX.1 pipeline in memory (random weights, deterministic for a seed)."""
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


class Flux1Family(BaseFamily):
    name = "flux1"
    pipeline_class = "FluxPipeline"
    transformer_class = "FluxTransformer2DModel"
    vae_class = "AutoencoderKL"
    text_encoders = (
        TextEncoderSpec("text_encoder", "CLIPTextModel", "tokenizer", "CLIP-L: the pooled prompt vector"),
        TextEncoderSpec("text_encoder_2", "T5EncoderModel", "tokenizer_2", "T5-XXL: the prompt's tokens"),
    )
    components = ("transformer", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler")
    flow = FlowSettings(shift=3.0, use_dynamic_shifting=True, timestep_sampling="sigmoid")
    lora_targets = FLUX1_TARGET_MODULES
    comfyui_workflow = "flux-dev-lora"
    comfyui_clip_type = "flux"
    vae_params = FLUX_VAE_PARAMS
    family_names = ("flux.1", "flux1")
    tiny_quantizable_shape = QUANTIZABLE_SHAPE

    def layout(self, transformer_config: dict[str, Any], *, text_tokens: int = 512) -> FluxLayout:
        return flux_layout(transformer_config, text_tokens=text_tokens)

    def large_text_encoder_layout(self, text_encoder_config: dict[str, Any]) -> Layout:
        return t5_encoder_layout(text_encoder_config)

    def text_encoder_bytes(self, text_encoder_config: dict[str, Any], weight_format: WeightFormat) -> int:
        from isengard.models.memory_storage import BF16, layout_bytes

        return layout_bytes(t5_encoder_layout(text_encoder_config), weight_format) + BF16 * CLIP_L_PARAMS

    def encode_prompt(self, pipe: Any, prompt: str, *, device: torch.device, max_sequence_length: int) -> TextEmbedding:
        prompt_embeds, pooled, _text_ids = pipe.encode_prompt(
            prompt=prompt, prompt_2=prompt, device=device, max_sequence_length=max_sequence_length
        )
        return TextEmbedding(prompt_embeds.to("cpu"), pooled.to("cpu"))

    def encode_image_latents(self, vae: Any, pixels: torch.Tensor) -> torch.Tensor:
        # The distribution's mean: cached once, so a fixed latent is the honest choice (no resampling per epoch).
        latents = vae.encode(pixels).latent_dist.mode()
        return (latents - vae.config.shift_factor) * vae.config.scaling_factor

    def pack(self, latents: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = latents.shape
        packed: torch.Tensor = self.pipeline_cls()._pack_latents(latents, batch, channels, height, width)
        return packed

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
        import torch

        device, batch = noisy.device, noisy.shape[0]
        _, _, height, width = noisy.shape
        prompt_embeds = text.prompt_embeds.to(device=device, dtype=weight_dtype)
        assert text.pooled_prompt_embeds is not None, "FLUX.1 prompts carry CLIP's pooled vector"
        pooled = text.pooled_prompt_embeds.to(device=device, dtype=weight_dtype)
        text_ids = torch.zeros(prompt_embeds.shape[1], 3, device=device, dtype=weight_dtype)
        # Positional ids of the packed tokens: the packed grid is half the latent grid each way.
        img_ids = self.pipeline_cls()._prepare_latent_image_ids(batch, height // 2, width // 2, device, weight_dtype)
        guidance = None
        if getattr(transformer.config, "guidance_embeds", False):
            guidance = torch.full((batch,), guidance_scale, device=device, dtype=torch.float32)
        prediction: torch.Tensor = transformer(
            hidden_states=self.pack(noisy).to(weight_dtype),
            timestep=sigmas.view(-1).to(weight_dtype),  # sigma in [0, 1]: the pipeline divides by 1000
            guidance=guidance,
            pooled_projections=pooled,
            encoder_hidden_states=prompt_embeds,
            txt_ids=text_ids,
            img_ids=img_ids,
            return_dict=False,
        )[0]
        return prediction

    def prompt_kwargs(
        self, text: TextEmbedding, *, negative: TextEmbedding, device: torch.device, dtype: torch.dtype
    ) -> dict[str, Any]:
        # Guidance is distilled into FLUX.1 [dev]: no negative prompt.
        assert text.pooled_prompt_embeds is not None
        return {
            "prompt_embeds": text.prompt_embeds.to(device=device, dtype=dtype),
            "pooled_prompt_embeds": text.pooled_prompt_embeds.to(device=device, dtype=dtype),
        }

    def build_tiny(self, seed: int, shape: Any | None = None) -> Any:
        return build_tiny_flux1(seed, shape or DEFAULT_SHAPE)


FAMILY = Flux1Family()
_NON_COMMERCIAL = "FLUX.1 [dev] Non-Commercial License"
_NON_COMMERCIAL_URL = "https://huggingface.co/black-forest-labs/FLUX.1-dev/blob/main/LICENSE.md"

FLUX1_DEV = BaseSpec(
    name="flux1-dev",
    label="FLUX.1 [dev]",
    family=FAMILY,
    repo_id="black-forest-labs/FLUX.1-dev",
    licence=_NON_COMMERCIAL,
    licence_url=_NON_COMMERCIAL_URL,
    commercial_use=False,
    gated=True,
    transformer_config=FLUX_DEV_TRANSFORMER,
    text_encoder_config=T5_XXL_ENCODER,
    defaults=DEV_DEFAULTS,
    ai_toolkit_arch=None,  # ai-toolkit's FLUX.1 path: `is_flux: true`
    description="Black Forest Labs' 2024 12 B guidance-distilled model: the default, the most LoRAs exist for it.",
    aliases=("black-forest-labs/FLUX.1-dev", "flux.1", "flux1", "flux-dev"),
)
FLUX1_KREA_DEV = BaseSpec(
    name="flux1-krea-dev",
    label="FLUX.1 Krea [dev]",
    family=FAMILY,
    repo_id="black-forest-labs/FLUX.1-Krea-dev",
    licence=_NON_COMMERCIAL,
    licence_url="https://huggingface.co/black-forest-labs/FLUX.1-Krea-dev/blob/main/LICENSE.md",
    commercial_use=False,
    gated=True,
    transformer_config=FLUX_DEV_TRANSFORMER,  # FLUX.1 [dev]'s architecture, retrained for photographic looks
    text_encoder_config=T5_XXL_ENCODER,
    defaults=KREA_DEFAULTS,
    ai_toolkit_arch=None,
    description="FLUX.1 [dev]'s architecture trained with Krea for photographic, less 'AI-looking' images.",
    aliases=("black-forest-labs/FLUX.1-Krea-dev", "flux1-krea"),
    comfyui_template="flux1-krea-dev-lora",  # FLUX.1's graph with Krea's transformer file
)
FAMILY.bases = (FLUX1_DEV, FLUX1_KREA_DEV)
