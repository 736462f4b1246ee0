"""The `flux-lora` trainer on the tiny FLUX model, driven directly through a small recording JobContext."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from safetensors import safe_open

from isengard.domain import ArtifactKind, DatasetItem, TrainingInput
from isengard.models.tiny import save_tiny_model
from isengard.plugins.api import JobCancelled, PluginError
from isengard.plugins.training.flux_lora import FluxLoraTrainer
from isengard.plugins.training.flux_lora_config import FluxLoraConfig
from tests.conftest import make_settings
from tests.support.recording_context import RecordingContext


def make_dataset(data_dir: Path, count: int = 4) -> TrainingInput:
    """A small character: the same red figure on varied backgrounds, two shapes of image (two buckets)."""
    folder = data_dir / "uploads" / "char1"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    items = []
    for index in range(count):
        size = (128, 128) if index % 2 == 0 else (160, 112)
        background = tuple(int(v) for v in rng.integers(0, 255, 3))
        image = Image.new("RGB", size, background)
        draw = ImageDraw.Draw(image)
        draw.ellipse((40, 20, 90, 70), fill=(220, 30, 30))
        draw.rectangle((50, 70, 80, 120), fill=(200, 40, 40))
        name = f"img{index}.png"
        image.save(folder / name)
        items.append(DatasetItem(image_path=f"uploads/char1/{name}", caption=f"a photo of [trigger], view {index}",
                                 width=size[0], height=size[1]))  # fmt: skip
    return TrainingInput(character_id="char1", character_name="Red Figure", trigger_word="rdfig", dataset=items)


def quick_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "steps": 20, "rank": 4, "alpha": 4.0, "learning_rate": 2e-3, "resolutions": [64],
        "gradient_checkpointing": False, "mixed_precision": "fp32", "sample_every": 0, "sample_prompts": [],
        "checkpoint_every": 0, "max_sequence_length": 32, "batch_size": 2, "caption_dropout": 0.0,
        "sample_resolution": 64, "sample_steps": 2,
    }  # fmt: skip
    config.update(overrides)
    return config


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Any:
    # The tiny model's ops are too small to gain from threads, and on a busy machine two threads that wait for
    # each other make every step several times slower.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("model") / "tiny-flux")


@pytest.fixture()
def trainer(tmp_path: Path) -> FluxLoraTrainer:
    return FluxLoraTrainer(make_settings(tmp_path / "settings-data"))


def run(trainer: FluxLoraTrainer, ctx: RecordingContext, job: TrainingInput, config: dict[str, Any]) -> dict[str, Any]:
    payload = {"plugin": "flux-lora", "config": config, "input": job.model_dump()}
    return trainer.run(ctx, payload)


# --- One real training run shared by the assertions below ------------------------------------------------------

TRAINED_CONFIG = quick_config(
    steps=150, rank=8, alpha=16.0, learning_rate=3e-3, sample_every=50, checkpoint_every=30, keep_checkpoints=2,
    sample_prompts=["[trigger] standing", "a drawing of [trigger]"], sample_resolution=64, sample_steps=2,
    caption_dropout=0.05,
)  # fmt: skip


@pytest.fixture(scope="module")
def trained(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[RecordingContext, dict[str, Any]]:
    root = tmp_path_factory.mktemp("trained")
    data_dir = root / "data"
    job = make_dataset(data_dir)
    ctx = RecordingContext(data_dir, tiny_model, work_dir=data_dir / "jobs" / "job-test")
    result = run(FluxLoraTrainer(make_settings(root / "settings")), ctx, job, TRAINED_CONFIG)
    return ctx, result


def test_training_lowers_the_loss_on_a_fixed_validation_batch(trained: tuple[RecordingContext, dict[str, Any]]) -> None:
    ctx, result = trained
    start, end = ctx.validation_losses()
    assert result["validation_loss_start"] == pytest.approx(start, abs=1e-5)
    assert end < start * 0.95, f"validation loss did not drop enough: {start:.4f} -> {end:.4f}"


def test_progress_is_reported_every_step_with_loss_and_lr(trained: tuple[RecordingContext, dict[str, Any]]) -> None:
    ctx, result = trained
    losses = ctx.losses()
    assert sorted(losses) == list(range(1, 151))
    assert all(np.isfinite(list(losses.values())))
    assert all(p.lr == pytest.approx(3e-3) for p in ctx.progress if p.loss is not None)
    assert {p.stage for p in ctx.progress if p.step == 0} >= {"loading model", "encoding dataset"}
    assert result["steps"] == 150


def test_samples_use_fixed_seeds_and_show_the_training(trained: tuple[RecordingContext, dict[str, Any]]) -> None:
    ctx, _ = trained
    by_step = {(a.step, a.meta["index"]): ctx.data_dir / a.path for a in ctx.samples}
    assert sorted(by_step) == [(s, i) for s in (50, 100, 150) for i in (0, 1)]
    assert ctx.samples[0].meta["prompt"] == "rdfig standing"  # labelled with the prompt the model got
    early = np.asarray(Image.open(by_step[(50, 0)]), dtype=np.int16)
    late = np.asarray(Image.open(by_step[(150, 0)]), dtype=np.int16)
    assert early.shape == late.shape == (64, 64, 3)
    assert np.abs(early - late).mean() > 0.5  # same seed and prompt: only the LoRA changed


def test_checkpoints_keep_the_last_k_and_are_complete(trained: tuple[RecordingContext, dict[str, Any]]) -> None:
    ctx, _ = trained
    checkpoints = [a for a in ctx.artifacts if a.kind == ArtifactKind.CHECKPOINT]
    assert [a.step for a in checkpoints] == [30, 60, 90, 120]
    assert [a.step for a in ctx.removed] == [30, 60]
    folders = sorted(p.name for p in (ctx.work_dir / "checkpoints").iterdir())
    assert folders == ["step-000090", "step-000120"]
    for folder in folders:
        files = {p.name for p in (ctx.work_dir / "checkpoints" / folder).iterdir()}
        assert {"COMPLETE", "training_state.pt", "artifact.json"} <= files
        assert any(name.endswith(".safetensors") for name in files)
    assert checkpoints[-1].meta["step"] == 120 and checkpoints[-1].meta["rank"] == 8


def test_lora_file_has_header_metadata_and_alpha_tensors(trained: tuple[RecordingContext, dict[str, Any]]) -> None:
    ctx, result = trained
    lora = [a for a in ctx.artifacts if a.kind == ArtifactKind.LORA]
    assert len(lora) == 1 and lora[0].path == result["lora_path"]
    assert lora[0].meta["rank"] == 8 and lora[0].meta["alpha"] == 16.0 and lora[0].meta["trigger_word"] == "rdfig"
    with safe_open(str(ctx.data_dir / lora[0].path), framework="pt") as handle:
        header = handle.metadata()
        keys = list(handle.keys())
        alphas = {k: float(handle.get_tensor(k)) for k in keys if k.endswith(".alpha")}
    assert header["trigger_word"] == "rdfig" and header["rank"] == "8" and header["alpha"] == "16.0"
    assert header["base_model"] and header["dataset_size"] == "4" and header["steps"] == "150"
    assert header["resolution"] == "64"
    # ComfyUI reads the scale from .alpha tensors; diffusers refuses them next to peft adapter metadata.
    assert "lora_adapter_metadata" not in header
    assert all(k.startswith("transformer.") for k in keys)
    lora_modules = {k.split(".lora_A.")[0] for k in keys if ".lora_A." in k}
    assert set(alphas) == {f"{m}.alpha" for m in lora_modules} and set(alphas.values()) == {16.0}


FRESH_PROCESS_SCRIPT = """
import json, sys
import numpy as np, torch
from diffusers import FluxPipeline
model, lora, prompt, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
pipe = FluxPipeline.from_pretrained(model)
pipe.set_progress_bar_config(disable=True)
def image():
    out = pipe(prompt, height=64, width=64, num_inference_steps=2, guidance_scale=3.5, max_sequence_length=32,
               generator=torch.Generator().manual_seed(seed), output_type="np").images[0]
    return np.asarray(out)
base = image()
pipe.load_lora_weights(lora)
with_lora = image()
np.save(sys.argv[5], with_lora)
print(json.dumps({"diff": float(np.abs(base - with_lora).mean()), "adapters": pipe.get_list_adapters()}))
"""


def test_lora_loads_in_a_fresh_diffusers_process_and_reproduces_the_samples(
    trained: tuple[RecordingContext, dict[str, Any]], tiny_model: Path, tmp_path: Path
) -> None:
    ctx, result = trained
    out = tmp_path / "image.npy"
    proc = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS_SCRIPT, str(tiny_model), str(ctx.data_dir / result["lora_path"]),
         "rdfig standing", "42", str(out)],
        capture_output=True, text=True, timeout=120, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["diff"] > 1e-3  # the LoRA changes the picture at a fixed seed
    assert report["adapters"]
    # The final sample (same prompt, seed, size, steps) was rendered by the trainer with the LoRA active in memory:
    # the file reloaded elsewhere must give the same image (up to PNG's 8-bit rounding).
    sample = next(a for a in ctx.samples if a.step == 150 and a.meta["index"] == 0)
    rendered = np.asarray(Image.open(ctx.data_dir / sample.path), dtype=np.float32) / 255.0
    assert np.abs(np.load(out) - rendered).max() < 2.5 / 255


def test_alpha_equal_to_rank_writes_no_alpha_tensors_and_reloads_identically(tiny_model: Path, tmp_path: Path) -> None:
    from diffusers import FluxPipeline
    from peft import LoraConfig

    from isengard.plugins.training.lora_io import load_lora_into, save_lora

    def transformer_output(transformer: Any) -> torch.Tensor:
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            return transformer(
                hidden_states=torch.randn(1, 16, 64, generator=gen),
                encoder_hidden_states=torch.randn(1, 8, 32, generator=gen),
                pooled_projections=torch.randn(1, 32, generator=gen), timestep=torch.tensor([0.5]),
                guidance=torch.tensor([1.0]), img_ids=torch.zeros(16, 3), txt_ids=torch.zeros(8, 3), return_dict=False,
            )[0]  # fmt: skip

    for rank, alpha in ((4, 4.0), (4, 12.0)):
        pipe = FluxPipeline.from_pretrained(tiny_model)
        pipe.transformer.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, target_modules=["attn.to_q", "attn.to_v"]))
        torch.manual_seed(rank + int(alpha))
        for name, param in pipe.transformer.named_parameters():
            if "lora_B" in name:
                param.data.normal_(0, 0.5)
        expected = transformer_output(pipe.transformer)
        path = save_lora(tmp_path / f"r{rank}a{alpha}.safetensors", pipe.transformer, rank=rank, alpha=alpha,
                         metadata={"trigger_word": "x"})  # fmt: skip
        with safe_open(str(path), framework="pt") as handle:
            has_alpha = any(k.endswith(".alpha") for k in handle.keys())  # noqa: SIM118
        assert has_alpha == (alpha != rank)

        fresh = FluxPipeline.from_pretrained(tiny_model)
        fresh.load_lora_weights(str(path))
        assert torch.allclose(transformer_output(fresh.transformer), expected, atol=1e-5)

        # The trainer's own resume loader puts the same weights back.
        again = FluxPipeline.from_pretrained(tiny_model)
        again.transformer.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, target_modules=["attn.to_q", "attn.to_v"]))
        load_lora_into(again.transformer, path)
        assert torch.allclose(transformer_output(again.transformer), expected, atol=1e-6)


# --- Resume and cancellation --------------------------------------------------------------------------------------

RESUME_CONFIG = quick_config(steps=30, checkpoint_every=10, keep_checkpoints=5, resolutions=[64, 128],
                             caption_dropout=0.2, learning_rate=2e-3)  # fmt: skip


def test_cancel_stops_between_steps_and_resume_continues_the_same_loss_curve(
    trainer: FluxLoraTrainer, tiny_model: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    job = make_dataset(data_dir)

    straight = RecordingContext(data_dir, tiny_model, work_dir=data_dir / "jobs" / "straight")
    run(trainer, straight, job, RESUME_CONFIG)

    interrupted_dir = data_dir / "jobs" / "interrupted"
    first = RecordingContext(data_dir, tiny_model, work_dir=interrupted_dir, cancel_at_step=15)
    with pytest.raises(JobCancelled):
        run(trainer, first, job, RESUME_CONFIG)
    assert max(first.losses()) == 15  # stopped right after the step it was cancelled at
    assert not any(a.kind == ArtifactKind.LORA for a in first.artifacts)
    # A crash mid-save leaves a folder without COMPLETE: it must be ignored.
    (interrupted_dir / "checkpoints" / "step-000015").mkdir()

    second = RecordingContext(data_dir, tiny_model, work_dir=interrupted_dir, attempt=2)
    result = run(trainer, second, job, RESUME_CONFIG)
    assert result["resumed_from"] == 10
    resumed = second.losses()
    assert sorted(resumed) == list(range(11, 31))
    # Same data order, noise, optimizer moments and schedule: the curve continues as if never stopped.
    for step in range(11, 31):
        assert resumed[step] == pytest.approx(straight.losses()[step], rel=1e-4, abs=1e-6), step
    assert result["steps"] == 30


# --- Configuration, capabilities and errors ------------------------------------------------------------------------


def test_config_bounds_and_unavailable_optimizers(trainer: FluxLoraTrainer) -> None:
    from pydantic import ValidationError

    for bad in ({"rank": 0}, {"learning_rate": 0}, {"resolutions": [100]}, {"steps": 10, "lr_warmup_steps": 10},
                {"target_modules": ["attn.to_q; rm"]}, {"unknown": 1}):  # fmt: skip
        with pytest.raises(ValidationError):
            FluxLoraConfig.model_validate(bad)
    schema = FluxLoraConfig.model_json_schema()
    assert all(field.get("description") for field in schema["properties"].values())
    if not trainer.capabilities().details["optimizers"].count("prodigy"):
        with pytest.raises(PluginError, match="prodigyopt"):
            trainer.validate_config({"optimizer": "prodigy"})
    assert trainer.validate_config({}).rank == 16


def test_fast_test_capabilities_and_defaults(trainer: FluxLoraTrainer) -> None:
    capability = trainer.capabilities()
    assert capability.available and capability.details["device"] == "cpu"
    defaults = trainer.default_config()
    assert FluxLoraConfig.model_validate(defaults).steps == defaults["steps"] <= 200


def test_production_without_cuda_explains_why(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    capability = FluxLoraTrainer(make_settings(tmp_path, mode="production")).capabilities()
    assert not capability.available and "CUDA" in (capability.reason or "")


def test_missing_captions_and_out_of_memory_fail_with_advice(
    trainer: FluxLoraTrainer, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    job = make_dataset(data_dir, count=2)
    job.dataset[1].caption = ""
    ctx = RecordingContext(data_dir, tiny_model, work_dir=data_dir / "jobs" / "j")
    with pytest.raises(PluginError, match="no caption"):
        run(trainer, ctx, job, quick_config(steps=2))
    result = run(trainer, ctx, job, quick_config(steps=2, allow_empty_captions=True))
    assert result["steps"] == 2

    import isengard.plugins.training.flux_lora_loop as loop

    def out_of_memory(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(loop, "flow_matching_loss", out_of_memory)
    with pytest.raises(PluginError, match=r"batch_size.*gradient_checkpointing.*rank"):
        run(trainer, RecordingContext(data_dir, tiny_model, work_dir=data_dir / "jobs" / "k"), job,
            quick_config(steps=2, allow_empty_captions=True))  # fmt: skip


def test_missing_base_model_is_a_clear_error(trainer: FluxLoraTrainer, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    job = make_dataset(data_dir, count=1)
    ctx = RecordingContext(data_dir, tmp_path / "nowhere", work_dir=data_dir / "jobs" / "j")
    with pytest.raises(PluginError, match="base model not found"):
        run(trainer, ctx, job, quick_config(steps=2))
    shutil.rmtree(data_dir)


def test_prodigy_optimizer_trains_the_lora(trainer: FluxLoraTrainer, tiny_model: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ctx = RecordingContext(data_dir, tiny_model, work_dir=data_dir / "jobs" / "prodigy")
    # Prodigy estimates the step size itself; its lr is a multiplier, 1.0 as its authors advise.
    config = quick_config(steps=10, optimizer="prodigy", learning_rate=1.0, checkpoint_every=8, keep_checkpoints=1)
    result = run(trainer, ctx, make_dataset(data_dir), config)
    assert result["steps"] == 10
    losses = ctx.losses()
    assert sorted(losses) == list(range(1, 11)) and all(np.isfinite(list(losses.values())))

    # lora_B starts at zero, so any non-zero lora_B in the saved file was learned.
    with safe_open(str(ctx.data_dir / result["lora_path"]), framework="pt") as handle:
        lora_b = [handle.get_tensor(k) for k in handle.keys() if ".lora_B." in k]  # noqa: SIM118
    assert lora_b and all(torch.isfinite(t).all() for t in lora_b)
    assert sum(float(t.abs().sum()) for t in lora_b) > 0

    # The optimizer really was Prodigy: its state carries the step-size estimate d, grown from its start d0.
    state = torch.load(ctx.work_dir / "checkpoints" / "step-000008" / "training_state.pt", weights_only=False)
    group = state["optimizer"]["param_groups"][0]
    assert group["d"] > group["d0"]
