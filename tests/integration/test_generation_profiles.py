"""The diffusers image plugin holding a quantized FLUX resident (as on a 16-24 GB card), LoRAs switched on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from isengard.domain import LoraRef
from isengard.models.profiles import ProfileName
from isengard.models.tiny import QUANTIZABLE_SHAPE, save_tiny_model
from isengard.plugins.image.diffusers_flux import DiffusersFluxGenerator, PipelineCache
from tests.support.image_jobs import make_test_lora
from tests.support.recording_context import RecordingContext


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threads only wait for each other on a busy machine
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-flux-wide", shape=QUANTIZABLE_SHAPE)


@pytest.fixture(scope="module")
def lora_data(wide_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    data_dir = tmp_path_factory.mktemp("data")
    return data_dir, [make_test_lora(wide_model, data_dir / "loras" / f"l{i}.safetensors", seed=i) for i in range(2)]


def _image(ctx: RecordingContext, plugin: DiffusersFluxGenerator, loras: list[Path]) -> np.ndarray:
    refs = [
        LoraRef(lora_id=p.stem, path=p.relative_to(ctx.data_dir).as_posix(), weight=1.0, name=p.stem).model_dump()
        for p in loras
    ]
    plugin.run(ctx, {"prompt": "a portrait", "width": 64, "height": 64, "steps": 2, "seed": 5, "loras": refs})
    return np.asarray(Image.open(ctx.data_dir / ctx.artifacts[-1].path), dtype=np.int16)


@pytest.mark.parametrize("name", ["int8", "nf4"])
def test_a_quantized_transformer_stays_resident_and_switches_loras(
    name: ProfileName, wide_model: Path, lora_data: tuple[Path, list[Path]]
) -> None:
    data_dir, loras = lora_data
    cache = PipelineCache(memory_profile=name)
    plugin = DiffusersFluxGenerator(cache=cache)
    ctx = RecordingContext(data_dir, wide_model, work_dir=data_dir / "jobs" / name)

    base = _image(ctx, plugin, [])
    loaded = cache.loaded
    assert loaded is not None and loaded.memory_profile == name and loaded.placement == "resident"
    kind = type(loaded.pipe.transformer.transformer_blocks[0].ff.net[2].weight).__name__
    assert kind == {"int8": "Int8Tensor", "nf4": "NF4Tensor"}[name]
    # Resident: no offload hooks move components per call.
    assert not getattr(loaded.pipe.transformer, "_hf_hook", None)

    first, second = _image(ctx, plugin, loras[:1]), _image(ctx, plugin, loras[1:])
    again, without = _image(ctx, plugin, loras[:1]), _image(ctx, plugin, [])
    assert np.abs(first - base).mean() > 0.5 and np.abs(second - first).mean() > 0.5
    assert np.array_equal(first, again) and np.array_equal(without, base)
    assert cache.loads == 1 and loaded.lora_loads == 2


def test_on_a_cpu_the_engine_picks_the_unquantized_pipeline(wide_model: Path, tmp_path: Path) -> None:
    cache = PipelineCache()
    _image(RecordingContext(tmp_path, wide_model), DiffusersFluxGenerator(cache=cache), [])
    assert cache.loaded is not None and cache.loaded.memory_profile == "bf16"
    assert type(cache.loaded.pipe.transformer.transformer_blocks[0].ff.net[2].weight).__name__ == "Parameter"


def test_on_a_gpu_the_planner_keeps_a_quantized_model_resident_where_it_fits() -> None:
    from isengard.models.bases.flux1 import FLUX_DEV_TRANSFORMER
    from isengard.models.memory_plan import plan_generation
    from isengard.plugins.image.flux_memory import setup_from_plan

    def setup(gib: float, requested: ProfileName | None = None) -> tuple[str, str]:
        plan = plan_generation(transformer_config=dict(FLUX_DEV_TRANSFORMER), resolution=1024,
                               gpu_bytes=int(gib * 2**30))  # fmt: skip
        chosen = setup_from_plan(plan, requested)
        return chosen.profile.name, chosen.placement

    assert setup(80) == ("bf16", "resident")
    assert setup(24) == ("int8", "resident")  # a 24 GB card: quantized and resident, no per-call copies
    assert setup(16) == ("nf4", "resident")
    assert setup(8)[1] == "offload"  # nothing fits whole: every component visits the GPU in turn
    assert setup(24, "bf16") == ("bf16", "offload")  # forced but too big: it still runs, offloaded
