"""The `flux-lora` trainer under each memory profile on a tiny FLUX whose layers torchao can quantize (widths of 128).

On a CPU the profiles keep their real storage (int8 and NF4 weights through torchao) and block offloading runs its
hooks, with the CPU as both the execution and the offload device.
"""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open

from isengard.domain import ArtifactKind
from isengard.models import loading
from isengard.models import offload as offload_module
from isengard.models.bases.flux1 import FAMILY as FLUX1_FAMILY
from isengard.models.memory_plan import MemoryPlan
from isengard.models.profiles import PROFILE_NAMES, profile
from isengard.models.tiny import QUANTIZABLE_SHAPE, save_tiny_model
from isengard.plugins.api import JobCancelled, PluginError
from isengard.plugins.training import flux_lora_stages
from isengard.plugins.training.flux_lora import FluxLoraTrainer
from isengard.plugins.training.flux_lora_config import FluxLoraConfig
from isengard.plugins.training.flux_lora_profile import choose_profile, next_profile_after, out_of_memory_message
from tests.conftest import make_settings
from tests.support.recording_context import RecordingContext
from tests.unit.test_training_flux_lora import make_dataset, quick_config, run


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Any:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threads only wait for each other on a busy machine
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("model") / "tiny-flux-wide", shape=QUANTIZABLE_SHAPE)


@pytest.fixture(scope="module")
def wide_klein(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from isengard.models.bases.flux2_klein import FAMILY, FLUX2_KLEIN_4B

    folder = tmp_path_factory.mktemp("model") / "tiny-klein-wide"
    return save_tiny_model(folder, shape=FAMILY.tiny_quantizable_shape, base=FLUX2_KLEIN_4B.name)


def train(model: Path, root: Path, name: str, **overrides: Any) -> tuple[RecordingContext, dict[str, Any]]:
    data_dir = root / "data"
    job = make_dataset(data_dir)
    ctx = RecordingContext(
        data_dir, model, work_dir=data_dir / "jobs" / name, cancel_at_step=overrides.pop("cancel", None)
    )
    config = quick_config(**{"steps": 20, "learning_rate": 3e-3, **overrides})
    return ctx, run(FluxLoraTrainer(make_settings(root / "settings")), ctx, job, config)


def lora_tensors(ctx: RecordingContext, result: dict[str, Any]) -> dict[str, torch.Tensor]:
    with safe_open(str(ctx.data_dir / result["lora_path"]), framework="pt") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118


@pytest.mark.parametrize("model_fixture", ["wide_model", "wide_klein"])
def test_quantized_profiles_store_their_formats(model_fixture: str, request: pytest.FixtureRequest) -> None:
    from isengard.models.offload import tensor_bytes, transformer_blocks

    wide_model = request.getfixturevalue(model_fixture)
    for name, low, high in (("bf16", 4.0, 4.0), ("int8", 1.0, 1.1), ("nf4", 0.5, 0.6)):
        transformer = loading.load_transformer(wide_model, profile=profile(name), dtype=torch.float32,
                                               device=torch.device("cpu"))  # fmt: skip
        weights = [
            m.weight for b in transformer_blocks(transformer) for m in b.modules() if isinstance(m, torch.nn.Linear)
        ]
        # Bytes per weight as really stored (an fp32 CPU run: 4; int8 with its scales; NF4 with its double-quantized
        # block scales), the numbers the memory planner counts with.
        per_weight = sum(tensor_bytes(w) for w in weights) / sum(w.numel() for w in weights)
        assert low <= per_weight <= high, (name, per_weight)
        kind = type(transformer.transformer_blocks[0].attn.to_q.weight).__name__
        assert (kind == "Parameter") == (name == "bf16"), (name, kind)


def test_nf4_trains_a_lora_with_the_keys_of_an_unquantized_one_that_reloads_unquantized(
    wide_model: Path, tmp_path: Path
) -> None:
    from diffusers import FluxPipeline

    plain_ctx, plain = train(wide_model, tmp_path / "bf16", "plain", steps=3, memory_profile="bf16")
    ctx, result = train(wide_model, tmp_path / "nf4", "nf4", memory_profile="nf4")
    assert result["memory_profile"] == "nf4"
    assert any("memory profile nf4" in line.message for line in ctx.logs)
    start, end = ctx.validation_losses()
    assert end < start * 0.95, (start, end)

    quantized_lora, plain_lora = lora_tensors(ctx, result), lora_tensors(plain_ctx, plain)
    assert {k: v.shape for k, v in quantized_lora.items()} == {k: v.shape for k, v in plain_lora.items()}
    assert all(t.dtype == torch.float32 for t in quantized_lora.values())

    pipe = FluxPipeline.from_pretrained(wide_model)  # unquantized, as diffusers users load it
    pipe.set_progress_bar_config(disable=True)

    def image() -> torch.Tensor:
        out = pipe("rdfig standing", height=64, width=64, num_inference_steps=2, max_sequence_length=32,
                   generator=torch.Generator().manual_seed(3), output_type="pt").images  # fmt: skip
        return torch.as_tensor(out)

    before = image()
    pipe.load_lora_weights(str(ctx.data_dir / result["lora_path"]))
    assert (image() - before).abs().mean() > 1e-3


def test_block_offloading_gives_the_same_losses_and_swaps_every_block(
    wide_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    swaps: list[offload_module.BlockSwap] = []
    real_attach = flux_lora_stages.attach_block_swap

    def recording_attach(transformer: Any, device: torch.device) -> offload_module.BlockSwap:
        swap = real_attach(transformer, device)
        swaps.append(swap)
        return swap

    monkeypatch.setattr(flux_lora_stages, "attach_block_swap", recording_attach)
    # Offloading always checkpoints; the resident run does too, so the two compute the same thing.
    resident, _ = train(wide_model, tmp_path / "a", "resident", steps=6, memory_profile="nf4",
                        gradient_checkpointing=True)  # fmt: skip
    assert not swaps
    offloaded, result = train(wide_model, tmp_path / "b", "offloaded", steps=6, memory_profile="nf4-offload")
    assert result["memory_profile"] == "nf4-offload"
    assert len(swaps) == 1
    for step, loss in resident.losses().items():
        assert offloaded.losses()[step] == pytest.approx(loss, rel=1e-5), step
    blocks = len(offload_module.transformer_blocks(swaps[0].transformer))
    # Per step: a forward and a checkpointed recompute per block; plus the validation passes and samples.
    assert swaps[0].moves >= 6 * 2 * blocks
    # Between forwards, the blocks' frozen weights are the resident CPU copies, not the device ones.
    for block in offload_module.transformer_blocks(swaps[0].transformer):
        for slot in swaps[0].slots[id(block)]:
            current = slot.module._buffers[slot.name] if slot.is_buffer else slot.module._parameters[slot.name]
            assert current is slot.cpu


def test_text_encoders_and_vae_leave_before_the_transformer_loads(
    wide_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alive: dict[str, weakref.ref[Any]] = {}
    seen_at_transformer: dict[str, bool] = {}
    real_text, real_vae, real_transformer = loading.load_text_encoders, loading.load_vae, loading.load_transformer

    def text(*args: Any, **kwargs: Any) -> Any:
        pipe = real_text(*args, **kwargs)
        alive["t5"], alive["clip"] = weakref.ref(pipe.text_encoder_2), weakref.ref(pipe.text_encoder)
        return pipe

    def vae(*args: Any, **kwargs: Any) -> Any:
        model = real_vae(*args, **kwargs)
        alive["vae"] = weakref.ref(model)
        return model

    def transformer(*args: Any, **kwargs: Any) -> Any:
        gc.collect()
        seen_at_transformer.update({name: ref() is not None for name, ref in alive.items()})
        vae_model = alive["vae"]()
        seen_at_transformer["vae_on_cpu"] = vae_model is not None and vae_model.device.type == "cpu"
        return real_transformer(*args, **kwargs)

    # Watched where the trainer's stages call them.
    monkeypatch.setattr(flux_lora_stages, "load_text_encoders", text)
    monkeypatch.setattr(flux_lora_stages, "load_vae", vae)
    monkeypatch.setattr(flux_lora_stages, "load_transformer", transformer)
    train(wide_model, tmp_path, "staged", steps=2, memory_profile="int8")
    # The text encoders are gone for good; the small VAE waits in CPU memory to decode samples.
    assert seen_at_transformer == {"t5": False, "clip": False, "vae": True, "vae_on_cpu": True}


def test_text_encoders_run_on_the_cpu_of_a_card_they_do_not_fit(wide_model: Path) -> None:
    cuda = torch.device("cuda")  # only named: the choice is made from the free memory given
    weights = loading.folder_bytes(wide_model, *FLUX1_FAMILY.text_encoder_folders)
    assert weights > 0
    assert loading.text_encoder_device(wide_model, cuda, free_bytes=weights * 2) == cuda
    assert loading.text_encoder_device(wide_model, cuda, free_bytes=weights).type == "cpu"
    assert loading.text_encoder_device(wide_model, torch.device("cpu")).type == "cpu"


def test_resume_under_a_quantized_base_with_8bit_adamw_continues_the_loss_curve(
    wide_model: Path, tmp_path: Path
) -> None:
    # Rank 32: every LoRA matrix has the 4096 values bitsandbytes needs before it keeps a state in 8 bits.
    overrides = {"steps": 16, "checkpoint_every": 8, "keep_checkpoints": 3, "memory_profile": "int8", "rank": 32,
                 "alpha": 32.0, "optimizer": "adamw8bit", "sample_every": 8,
                 "sample_prompts": ["[trigger] portrait"]}  # fmt: skip
    straight, _ = train(wide_model, tmp_path / "straight", "straight", **overrides)
    root = tmp_path / "resumed"
    with pytest.raises(JobCancelled):
        train(wide_model, root, "job", cancel=12, **overrides)
    second, result = train(wide_model, root, "job", **overrides)
    assert result["resumed_from"] == 8 and sorted(second.losses()) == list(range(9, 17))
    for step in range(9, 17):
        assert second.losses()[step] == pytest.approx(straight.losses()[step], rel=1e-4, abs=1e-6), step
    assert [a.step for a in second.samples] == [16]  # mid-run samples rendered by the quantized model as well
    # The optimizer's moments really are 8-bit (bitsandbytes' block-quantized state), the LoRA weights fp32.
    state = torch.load(root / "data" / "jobs" / "job" / "checkpoints" / "step-000008" / "training_state.pt",
                       weights_only=False)  # fmt: skip
    moments = [entry["__bnb_optimizer_quant_state__"] for entry in state["optimizer"]["state"].values()]
    assert moments and all(m["state1"].dtype == m["state2"].dtype == torch.uint8 for m in moments)
    assert any(a.kind == ArtifactKind.LORA for a in second.artifacts)


def test_profile_choice_on_a_cpu_and_the_out_of_memory_advice() -> None:
    auto = choose_profile(FluxLoraConfig(), None)
    assert auto.profile.name == "bf16" and "auto" in auto.reason
    for name in PROFILE_NAMES:
        assert choose_profile(FluxLoraConfig(memory_profile=name), None).profile.name == name

    message = out_of_memory_message("int8", "nf4")
    assert "int8" in message and "memory_profile to nf4" in message
    last = out_of_memory_message("nf4-offload", None)
    assert "smallest" in last and "batch_size" in last


def test_profile_choice_on_a_gpu_follows_the_memory_plan() -> None:
    from isengard.models.bases.flux1 import FLUX_DEV_TRANSFORMER
    from isengard.models.memory_plan import plan_training

    config = FluxLoraConfig(resolutions=[1024], gradient_checkpointing=True)

    def plan(gib: float) -> MemoryPlan:
        return plan_training(
            transformer_config=dict(FLUX_DEV_TRANSFORMER), resolution=1024, batch_size=1, rank=16,
            gradient_checkpointing=True, gpu_bytes=int(gib * 2**30), target_modules=config.target_modules,
        )  # fmt: skip

    big, card = plan(80), plan(12)
    assert choose_profile(config, big).profile.name == "bf16"
    on_card = choose_profile(config, card)
    assert on_card.profile.name == card.chosen and on_card.profile.name in ("nf4", "nf4-offload")
    assert on_card.reason.startswith(f"memory profile {card.chosen}: fits your")
    with pytest.raises(PluginError, match="memory profile bf16"):
        choose_profile(FluxLoraConfig(memory_profile="bf16"), card)
    # After an out-of-memory error: the planner's next profile that fits this card, none after the smallest.
    assert next_profile_after("bf16", card) == card.chosen
    assert next_profile_after("nf4-offload", card) is None
    assert next_profile_after("bf16", None) == "int8"  # a CPU has no plan: the next smaller profile


def test_out_of_memory_in_a_run_names_the_next_profile(
    wide_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import isengard.plugins.training.flux_lora_loop as loop

    def out_of_memory(*_args: Any, **_kwargs: Any) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(loop, "flow_matching_loss", out_of_memory)
    with pytest.raises(PluginError, match=r"with the int8 memory profile: the nf4 profile would fit"):
        train(wide_model, tmp_path, "oom", steps=2, memory_profile="int8")
