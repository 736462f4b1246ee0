"""Generation on a base's distilled sibling (FLUX.2 [klein]'s 4-step checkpoints) on the tiny models: its step count
and guidance come from the registry, a LoRA trained on the Base applies to it, and a base without one is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from isengard.domain import LoraRef
from isengard.models.bases import get_base
from isengard.models.tiny import save_tiny_model
from isengard.plugins.image.diffusers_flux import DiffusersFluxGenerator, PipelineCache
from isengard.plugins.image.outputs import read_png_params
from isengard.plugins.image.request import ImageRequest
from tests.support.image_jobs import make_test_lora
from tests.support.recording_context import RecordingContext

BASE = "flux2-klein-4b"


@pytest.fixture(scope="module")
def klein(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny klein Base model and a data folder with a LoRA made on it."""
    model = save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-flux2-klein", base=BASE)
    data_dir = tmp_path_factory.mktemp("data")
    make_test_lora(model, data_dir / "loras" / "char" / "lora.safetensors", base=BASE, scale=0.5)
    return model, data_dir


def _run(ctx: RecordingContext, plugin: DiffusersFluxGenerator, **request: object) -> tuple[np.ndarray, dict]:  # type: ignore[type-arg]
    values: dict[str, object] = {"prompt": "a portrait", "width": 64, "height": 64, "seed": 7, "base": BASE}
    values.update(request)
    before = len(ctx.artifacts)
    plugin.run(ctx, values)
    (artifact,) = ctx.artifacts[before:]
    path = ctx.data_dir / artifact.path
    return np.asarray(Image.open(path)), read_png_params(path)


def test_the_distilled_checkpoint_samples_with_its_own_steps_and_guidance(klein: tuple[Path, Path]) -> None:
    model, data_dir = klein
    ctx = RecordingContext(data_dir, model)
    plugin = DiffusersFluxGenerator(cache=PipelineCache())
    expected = get_base(BASE).distilled_defaults
    assert expected is not None
    distilled, params = _run(ctx, plugin, checkpoint="distilled")
    assert (params["steps"], params["guidance"]) == (expected.sample_steps, expected.guidance)
    assert params["checkpoint"] == "distilled" and "distilled" in params["base_model"]
    assert [p.step for p in ctx.progress if p.stage == "generating"][-1] == expected.sample_steps
    # Not the Base: the same seed, steps and guidance on the Base checkpoint give another image.
    base, base_params = _run(ctx, plugin, steps=expected.sample_steps, guidance=expected.guidance)
    assert base_params["checkpoint"] == "base" and not np.array_equal(base, distilled)
    # Asked steps win over the registry's.
    assert _run(ctx, plugin, checkpoint="distilled", steps=2)[1]["steps"] == 2


def test_a_lora_trained_on_the_base_applies_to_the_distilled_checkpoint(klein: tuple[Path, Path]) -> None:
    model, data_dir = klein
    ctx = RecordingContext(data_dir, model)
    plugin = DiffusersFluxGenerator(cache=PipelineCache())
    lora = LoraRef(lora_id="l1", path="loras/char/lora.safetensors", name="lora", base=BASE).model_dump()
    without, _ = _run(ctx, plugin, checkpoint="distilled")
    with_lora, params = _run(ctx, plugin, checkpoint="distilled", loras=[lora])
    assert params["loras"][0]["lora_id"] == "l1"
    assert not np.array_equal(without, with_lora)


def test_a_base_without_a_distilled_checkpoint_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"FLUX.1 \[dev\] has no distilled checkpoint"):
        ImageRequest.model_validate({"prompt": "x", "base": "flux1-dev", "checkpoint": "distilled"})
    with pytest.raises(ValidationError):
        ImageRequest.model_validate({"prompt": "x", "base": BASE, "checkpoint": "turbo"})
