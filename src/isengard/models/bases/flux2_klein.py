"""The FLUX.2 [klein] family: klein 4B (Apache-2.0) and klein 9B (non-commercial), January 2026.

A `Flux2KleinPipeline` folder: a `Flux2Transformer2DModel` (no guidance embedding; one shared modulation per stream
instead of one per block; SwiGLU feed-forwards; a fused QKV + MLP projection in single blocks; no biases), one Qwen3
text encoder whose hidden states of three layers are stacked (Qwen3-4B for 4B, Qwen3-8B for 9B), a 32-channel
`AutoencoderKLFlux2` whose latents are patchified 2x2 into 128 channels and batch-normalised. LoRAs are trained on
the undistilled *Base* checkpoints; they apply to the 4-step distilled ones too.
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

# The projections of klein's double- and single-stream blocks, as diffusers names them. peft matches suffixes, and
# `attn.to_out` would also name the double blocks' output ModuleList, which peft refuses: the single blocks' output
# projection is left out (their fused QKV + MLP input projection carries the adapter there).
KLEIN_TARGET_MODULES = (
    "attn.to_q",
    "attn.to_k",
    "attn.to_v",
    "attn.to_out.0",
    "attn.add_q_proj",
    "attn.add_k_proj",
    "attn.add_v_proj",
    "attn.to_add_out",
    "ff.linear_in",
    "ff.linear_out",
    "ff_context.linear_in",
    "ff_context.linear_out",
    "attn.to_qkv_mlp_proj",
)
TIME_CHANNELS = 256
# Qwen3 hidden states the pipeline stacks into the transformer's text input (diffusers' default).
TEXT_LAYERS = (9, 18, 27)


def klein_layout(config: dict[str, Any], *, text_tokens: int = 512) -> FluxLayout:
    """Shapes of diffusers' `Flux2Transformer2DModel` for a config (its `config.json` keys, defaults as diffusers')."""
    heads = int(config.get("num_attention_heads", 48))
    head_dim = int(config.get("attention_head_dim", 128))
    dim = heads * head_dim
    patch = int(config.get("patch_size", 1))
    in_channels = int(config.get("in_channels", 128))
    out_channels = int(config.get("out_channels") or in_channels)
    joint = int(config.get("joint_attention_dim", 15360))
    time_channels = int(config.get("timestep_guidance_channels", TIME_CHANNELS))
    mlp = int(dim * float(config.get("mlp_ratio", 3.0)))
    guidance = bool(config.get("guidance_embeds", True))

    def lin(name: str, inputs: int, outputs: int) -> Linear:
        return Linear(name, inputs, outputs, bias=False)

    def embedder(name: str) -> list[Linear]:
        return [lin(f"{name}.linear_1", time_channels, dim), lin(f"{name}.linear_2", dim, dim)]

    outer = [
        *embedder("time_guidance_embed.timestep_embedder"),
        *(embedder("time_guidance_embed.guidance_embedder") if guidance else []),
        lin("double_stream_modulation_img.linear", dim, 6 * dim),
        lin("double_stream_modulation_txt.linear", dim, 6 * dim),
        lin("single_stream_modulation.linear", dim, 3 * dim),
        lin("x_embedder", in_channels, dim),
        lin("context_embedder", joint, dim),
        lin("norm_out.linear", dim, 2 * dim),
        lin("proj_out", dim, patch * patch * out_channels),
    ]
    double = [
        *(lin(f"attn.{name}", dim, dim) for name in ("to_q", "to_k", "to_v", "to_out.0")),
        *(lin(f"attn.{name}", dim, dim) for name in ("add_q_proj", "add_k_proj", "add_v_proj", "to_add_out")),
        lin("ff.linear_in", dim, 2 * mlp),  # SwiGLU: gate and value in one projection
        lin("ff.linear_out", mlp, dim),
        lin("ff_context.linear_in", dim, 2 * mlp),
        lin("ff_context.linear_out", mlp, dim),
    ]
    single = [lin("attn.to_qkv_mlp_proj", dim, 3 * dim + 2 * mlp), lin("attn.to_out", dim + mlp, dim)]
    return FluxLayout(
        outer=Layout("outer", tuple(outer), 0),
        double=Layout("double", tuple(double), 4 * head_dim),  # RMS norms of q and k, per stream
        single=Layout("single", tuple(single), 2 * head_dim),
        num_double=int(config.get("num_layers", 8)),
        num_single=int(config.get("num_single_layers", 48)),
        hidden=dim,
        text_tokens=text_tokens,
    )


def qwen3_layout(config: dict[str, Any]) -> Layout:
    """Shapes of transformers' `Qwen3ForCausalLM` (what the klein pipeline loads as its text encoder)."""
    hidden = int(config["hidden_size"])
    layers = int(config["num_hidden_layers"])
    heads = int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads", heads))
    head_dim = int(config.get("head_dim") or hidden // heads)
    inter = int(config["intermediate_size"])
    vocab = int(config["vocab_size"])
    tied = bool(config.get("tie_word_embeddings", False))
    linears = [
        Linear("self_attn.q_proj", hidden, heads * head_dim, bias=False, count=layers),
        Linear("self_attn.k_proj", hidden, kv_heads * head_dim, bias=False, count=layers),
        Linear("self_attn.v_proj", hidden, kv_heads * head_dim, bias=False, count=layers),
        Linear("self_attn.o_proj", heads * head_dim, hidden, bias=False, count=layers),
        Linear("mlp.gate_proj", hidden, inter, bias=False, count=layers),
        Linear("mlp.up_proj", hidden, inter, bias=False, count=layers),
        Linear("mlp.down_proj", inter, hidden, bias=False, count=layers),
        *([] if tied else [Linear("lm_head", hidden, vocab, bias=False)]),
    ]
    # Token embedding; per layer two RMS norms of the width and the q / k norms of a head; the final norm.
    other = vocab * hidden + layers * (2 * hidden + 2 * head_dim) + hidden
    return Layout("outer", tuple(linears), other)


# Published configs (Hugging Face `transformer/config.json` and `text_encoder/config.json`).
KLEIN_4B_TRANSFORMER: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 128,
    "out_channels": None,
    "num_layers": 5,
    "num_single_layers": 20,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 7680,  # 3 stacked Qwen3-4B layers of 2560
    "timestep_guidance_channels": 256,
    "mlp_ratio": 3.0,
    "axes_dims_rope": [32, 32, 32, 32],
    "rope_theta": 2000,
    "guidance_embeds": False,
}
KLEIN_9B_TRANSFORMER: dict[str, Any] = {
    **KLEIN_4B_TRANSFORMER,
    "num_layers": 8,
    "num_single_layers": 24,
    "num_attention_heads": 32,
    "joint_attention_dim": 12288,  # 3 stacked Qwen3-8B layers of 4096
}
QWEN3_4B: dict[str, Any] = {
    "hidden_size": 2560,
    "intermediate_size": 9728,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151936,
    "tie_word_embeddings": True,
}
QWEN3_8B: dict[str, Any] = {
    "hidden_size": 4096,
    "intermediate_size": 12288,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151936,
    "tie_word_embeddings": False,
}
# AutoencoderKLFlux2 with diffusers' default (published) config.
KLEIN_VAE_PARAMS = 84_046_115

# The Base checkpoints sample with classifier-free guidance over ~50 steps; the distilled ones in 4 without.
BASE_DEFAULTS = BaseDefaults(resolution=1024, sample_steps=50, guidance=4.0, training_guidance=None)
DISTILLED_DEFAULTS = BaseDefaults(resolution=1024, sample_steps=4, guidance=1.0, training_guidance=None)

# Tiny sizes: every width a multiple of the head's; the text width is three stacked layers of the tiny Qwen3.
TINY_TEXT_HIDDEN = 16


@dataclass(frozen=True)
class KleinTinyShape:
    """The widths of a tiny klein transformer (the Qwen3 encoder stays at `TINY_TEXT_HIDDEN`)."""

    heads: int = 2
    head_dim: int = 16
    time_channels: int = 32
    axes_dims_rope: tuple[int, int, int, int] = (4, 4, 4, 4)  # must sum to head_dim


DEFAULT_SHAPE = KleinTinyShape()
# For tests of quantized profiles: hidden width 128 and feed-forward 256 make every block's linear layer (and the
# embedders but the text one, whose 48 inputs stay unquantized) a multiple of 64 x 256 values, torchao NF4's block
# and scaler groups; a training step still takes milliseconds.
QUANTIZABLE_SHAPE = KleinTinyShape(heads=2, head_dim=64, time_channels=128, axes_dims_rope=(16, 16, 16, 16))
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _tiny_tokenizer() -> Any:
    from transformers import Qwen2TokenizerFast  # type: ignore[attr-defined]
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    # A byte-level BPE without merges over the 256 byte stand-ins (byte i is token i), plus Qwen's chat tokens.
    byte_chars = bytes_to_unicode()
    tokenizer = Qwen2TokenizerFast(
        vocab={byte_chars[byte]: byte for byte in range(256)}, merges=[], unk_token=None, bos_token=None,
        eos_token="<|im_end|>", pad_token="<|endoftext|>",
    )  # fmt: skip
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>"]})
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    tokenizer.model_max_length = 512
    return tokenizer


def build_tiny_klein(seed: int, shape: KleinTinyShape = DEFAULT_SHAPE) -> Any:
    import torch
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinPipeline,
        Flux2Transformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3ForCausalLM  # type: ignore[attr-defined]

    torch.manual_seed(seed)
    tokenizer = _tiny_tokenizer()
    text_encoder = Qwen3ForCausalLM(
        Qwen3Config(
            vocab_size=len(tokenizer), hidden_size=TINY_TEXT_HIDDEN, intermediate_size=2 * TINY_TEXT_HIDDEN,
            num_hidden_layers=max(TEXT_LAYERS) + 1, num_attention_heads=2, num_key_value_heads=1, head_dim=8,
            max_position_embeddings=1024, tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
        )
    )  # fmt: skip
    transformer = Flux2Transformer2DModel(
        patch_size=1, in_channels=128, num_layers=2, num_single_layers=2, attention_head_dim=shape.head_dim,
        num_attention_heads=shape.heads, joint_attention_dim=len(TEXT_LAYERS) * TINY_TEXT_HIDDEN,
        timestep_guidance_channels=shape.time_channels, mlp_ratio=2.0, axes_dims_rope=shape.axes_dims_rope,
        guidance_embeds=False,
    )  # fmt: skip
    vae = AutoencoderKLFlux2(
        block_out_channels=(8, 8, 16, 16), layers_per_block=1, latent_channels=32, norm_num_groups=4, sample_size=128,
    )  # fmt: skip
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True)
    return Flux2KleinPipeline(
        scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer
    )


class Flux2KleinFamily(BaseFamily):
    name = "flux2-klein"
    pipeline_class = "Flux2KleinPipeline"
    transformer_class = "Flux2Transformer2DModel"
    vae_class = "AutoencoderKLFlux2"
    text_encoders = (
        TextEncoderSpec("text_encoder", "Qwen3ForCausalLM", "tokenizer", "Qwen3: hidden states of three layers"),
    )
    components = ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")
    flow = FlowSettings(shift=3.0, use_dynamic_shifting=True, timestep_sampling="sigmoid")
    lora_targets = KLEIN_TARGET_MODULES
    lora_alpha_tensors = False
    comfyui_workflow = "flux2-klein-4b-lora"
    comfyui_clip_type = "flux2"
    vae_params = KLEIN_VAE_PARAMS
    tiny_quantizable_shape = QUANTIZABLE_SHAPE

    def layout(self, transformer_config: dict[str, Any], *, text_tokens: int = 512) -> FluxLayout:
        return klein_layout(transformer_config, text_tokens=text_tokens)

    def large_text_encoder_layout(self, text_encoder_config: dict[str, Any]) -> Layout:
        return qwen3_layout(text_encoder_config)

    def text_encoder_bytes(self, text_encoder_config: dict[str, Any], weight_format: WeightFormat) -> int:
        from isengard.models.memory_storage import layout_bytes

        return layout_bytes(qwen3_layout(text_encoder_config), weight_format)

    def encode_prompt(self, pipe: Any, prompt: str, *, device: torch.device, max_sequence_length: int) -> TextEmbedding:
        prompt_embeds, _text_ids = pipe.encode_prompt(
            prompt=prompt, device=device, max_sequence_length=max_sequence_length
        )
        return TextEmbedding(prompt_embeds.to("cpu"))

    def encode_image_latents(self, vae: Any, pixels: torch.Tensor) -> torch.Tensor:
        import torch

        # As the pipeline encodes a reference image: the mode, patchified 2x2, normalised by the VAE's batch norm.
        latents = self.pipeline_cls()._patchify_latents(vae.encode(pixels).latent_dist.mode())
        mean = vae.bn.running_mean.view(1, -1, 1, 1).to(latents.device, latents.dtype)
        std = torch.sqrt(vae.bn.running_var.view(1, -1, 1, 1) + vae.config.batch_norm_eps).to(latents)
        normalised: torch.Tensor = (latents - mean) / std
        return normalised

    def pack(self, latents: torch.Tensor) -> torch.Tensor:
        packed: torch.Tensor = self.pipeline_cls()._pack_latents(latents)
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
        cls = self.pipeline_cls()
        device = noisy.device
        prompt_embeds = text.prompt_embeds.to(device=device, dtype=weight_dtype)
        prediction: torch.Tensor = transformer(
            hidden_states=self.pack(noisy).to(weight_dtype),
            timestep=sigmas.view(-1).to(weight_dtype),
            guidance=None,  # klein has no guidance embedding
            encoder_hidden_states=prompt_embeds,
            txt_ids=cls._prepare_text_ids(prompt_embeds).to(device),
            img_ids=cls._prepare_latent_ids(noisy).to(device),
            return_dict=False,
        )[0]
        return prediction

    def prompt_kwargs(
        self, text: TextEmbedding, *, negative: TextEmbedding, device: torch.device, dtype: torch.dtype
    ) -> dict[str, Any]:
        # The Base checkpoints guide with a negative (classifier-free guidance when guidance > 1): the empty prompt.
        return {
            "prompt_embeds": text.prompt_embeds.to(device=device, dtype=dtype),
            "negative_prompt_embeds": negative.prompt_embeds.to(device=device, dtype=dtype),
        }

    def build_tiny(self, seed: int, shape: Any | None = None) -> Any:
        return build_tiny_klein(seed, shape or DEFAULT_SHAPE)


FAMILY = Flux2KleinFamily()

FLUX2_KLEIN_4B = BaseSpec(
    name="flux2-klein-4b",
    label="FLUX.2 [klein] 4B",
    family=FAMILY,
    repo_id="black-forest-labs/FLUX.2-klein-base-4B",
    distilled_repo_id="black-forest-labs/FLUX.2-klein-4B",
    licence="Apache-2.0",
    licence_url="https://www.apache.org/licenses/LICENSE-2.0",
    commercial_use=True,
    gated=False,
    transformer_config=KLEIN_4B_TRANSFORMER,
    text_encoder_config=QWEN3_4B,
    defaults=BASE_DEFAULTS,
    distilled_defaults=DISTILLED_DEFAULTS,
    ai_toolkit_arch="flux2_klein_4b",
    description="Black Forest Labs' 2026 4 B model, Apache-2.0: made for fine-tuning on consumer cards.",
    aliases=("black-forest-labs/FLUX.2-klein-base-4B", "black-forest-labs/FLUX.2-klein-4B", "flux2_klein_4b"),
)
FLUX2_KLEIN_9B = BaseSpec(
    name="flux2-klein-9b",
    label="FLUX.2 [klein] 9B",
    family=FAMILY,
    repo_id="black-forest-labs/FLUX.2-klein-base-9B",
    distilled_repo_id="black-forest-labs/FLUX.2-klein-9B",
    licence="FLUX Non-Commercial License",
    licence_url="https://huggingface.co/black-forest-labs/FLUX.2-klein-9B/blob/main/LICENSE.md",
    commercial_use=False,
    gated=True,
    transformer_config=KLEIN_9B_TRANSFORMER,
    text_encoder_config=QWEN3_8B,
    defaults=BASE_DEFAULTS,
    distilled_defaults=DISTILLED_DEFAULTS,
    ai_toolkit_arch="flux2_klein_9b",
    description="Black Forest Labs' 2026 9 B model: klein's quality tier, non-commercial.",
    aliases=("black-forest-labs/FLUX.2-klein-base-9B", "black-forest-labs/FLUX.2-klein-9B", "flux2_klein_9b"),
    comfyui_template="flux2-klein-9b-lora",  # its own transformer and the Qwen3-8B encoder
)
FAMILY.bases = (FLUX2_KLEIN_4B, FLUX2_KLEIN_9B)
