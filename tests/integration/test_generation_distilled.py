"""Generation on a base's distilled sibling (FLUX.2 [klein]'s 4-step checkpoints) on the tiny models: its step count
and guidance come from the registry, a LoRA trained on the Base applies to it, and a base without one is refused; in
production a distilled checkpoint missing on this machine is refused at submit."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import ValidationError

from isengard.api.app import create_app
from isengard.config import Settings
from isengard.domain import LoraRef
from isengard.models.bases import get_base
from isengard.models.locate import local_model_dir
from isengard.models.tiny import save_tiny_model
from isengard.plugins.image.diffusers_flux import DiffusersFluxGenerator, PipelineCache
from isengard.plugins.image.outputs import read_png_params
from isengard.plugins.image.request import ImageRequest
from isengard.queue.workers import write_heartbeat
from tests.support.image_jobs import make_test_lora
from tests.support.production import production_settings
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


@pytest.fixture()
def production(settings: Settings, redis_client: redis.Redis) -> Iterator[TestClient]:
    """Production mode with klein 4B's Base in place (its tiny model stands in) but not its distilled sibling, and
    a GPU worker offering the diffusers engine."""
    production = production_settings(settings)
    worker = {"id": "gpu-1", "kinds": ["generation"], "plugins": {"generation": ["diffusers"]}, "gpu_memory_mb": 81559}
    write_heartbeat(redis_client, "gpu-1", worker, ttl_seconds=30)
    shutil.copytree(save_tiny_model(settings.data_path / "built", base=BASE), local_model_dir(production, BASE))
    with TestClient(create_app(production)) as client:
        yield client


def test_a_missing_distilled_checkpoint_is_refused_at_submit(production: TestClient, settings: Settings) -> None:
    body = {"prompt": "x", "base": BASE, "checkpoint": "distilled"}
    target = local_model_dir(settings, BASE, distilled=True)
    refused = production.post("/api/generation", json=body)
    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"]
    assert "distilled" in detail and str(target) in detail
    assert f"hf download {get_base(BASE).distilled_repo_id}" in detail
    # A folder without its text encoder is named as incomplete, with what it lacks.
    partial = shutil.copytree(local_model_dir(settings, BASE), target)
    shutil.rmtree(partial / "text_encoder")
    incomplete = production.post("/api/generation", json=body)
    assert incomplete.status_code == 422 and "missing text_encoder" in incomplete.json()["detail"]
    assert production.get("/api/jobs").json()["total"] == 0

    shutil.rmtree(partial)
    shutil.copytree(local_model_dir(settings, BASE), target)  # the distilled checkpoint in place
    accepted = production.post("/api/generation", json=body)
    assert accepted.status_code == 202, accepted.text
