"""The production path at full size on a fake CUDA GPU: every base, every memory profile, training and generation.

Each run goes through the project's own loaders, LoRA, block swap, flow-matching step, sampling and generation
pipeline (see isengard/models/rehearsal.py); a wrong device, dtype or shape anywhere fails it. Its measured peaks are
checked against the memory planner, and two planted mistakes show that it catches what it is for.
"""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

from isengard.models.bases import BASES, BaseSpec
from isengard.models.memory_plan import GIB, plan_generation, plan_training
from isengard.models.profiles import PROFILE_NAMES
from isengard.models.rehearsal import RehearsalResult, architecture_key, rehearse_training
from isengard.plugins.training import flow_matching
from tests.rehearsal.conftest import GPU_BYTES

# What torch.cuda.max_memory_allocated can see of the planner's peak (the context and the slack it cannot).
OVERHEADS = ("cuda_context", "allocator_slack")
PLANNER_TOLERANCE = 0.10
# Where the planner is further than that from the rehearsal: the largest ratio seen, and why (README, memory section).
KNOWN_GAPS = {
    # Model CPU offload: the measured peak holds the largest component with its activations; not analysed yet.
    ("generation", "nf4-offload"): 1.3,
    ("generation", "nf4"): 1.15,
}


def assert_near_planner(result: RehearsalResult, base: BaseSpec) -> None:
    ratio = result.loop_peak_bytes / planned_bytes(result, base)
    bound = KNOWN_GAPS.get((result.task, result.profile), 1 + PLANNER_TOLERANCE)
    assert 1 - PLANNER_TOLERANCE <= ratio <= max(bound, 1 + PLANNER_TOLERANCE), (result, ratio)


def planned_bytes(result: RehearsalResult, spec: BaseSpec) -> int:
    if result.task == "training":
        plan = plan_training(
            transformer_config=spec.transformer_config, resolution=result.resolution, batch_size=1, rank=16,
            gradient_checkpointing=True, gpu_bytes=GPU_BYTES, base=spec.name,
        )  # fmt: skip
    else:
        plan = plan_generation(
            transformer_config=spec.transformer_config, resolution=result.resolution, gpu_bytes=GPU_BYTES,
            base=spec.name,
        )  # fmt: skip
    parts = plan.estimate(result.profile).breakdown  # type: ignore[arg-type]
    return sum(value for key, value in parts.items() if key not in OVERHEADS)


def report(results: list[RehearsalResult], base: BaseSpec) -> None:
    for result in results:
        planned = planned_bytes(result, base)
        print(
            f"{result.base:<12} {result.task:<10} {result.profile:<12} {result.resolution:>5} px  "
            f"peak {result.loop_peak_bytes / GIB:6.2f} GiB  planner {planned / GIB:6.2f} GiB  "
            f"ratio {result.loop_peak_bytes / planned:5.2f}  stages "
            + ", ".join(f"{name} {value / GIB:.2f}" for name, value in result.stages.items())
            + f"  (job {result.job_cpu_seconds:.0f} CPU-s)"
        )


# The session's rehearsal (rehearsals fixture) runs in the first of these tests: a few CPU-minutes in all, more wall
# time on a machine busy with other work than pytest's default timeout allows.
FULL_REHEARSAL_TIMEOUT = pytest.mark.timeout(1800)


@pytest.mark.slow
@FULL_REHEARSAL_TIMEOUT
@pytest.mark.parametrize("base_name", list(BASES))
def test_training_at_full_size_under_every_profile(
    base_name: str, rehearsals: dict[tuple[str, str], list[RehearsalResult]]
) -> None:
    base = BASES[base_name]
    results = rehearsals[(base_name, "training")]
    report(results, base)
    assert [result.profile for result in results] == list(PROFILE_NAMES)
    for result in results:
        assert set(result.stages) >= {"text_encoders", "transformer_load", "training_step"}
        assert "training_forward" in result.seconds  # run on the fake GPU (devices and dtypes checked)
        assert_near_planner(result, base)
    # One sample per base (it is the same pipeline code under every profile): klein Base's guided sample included.
    assert sum("sample" in result.stages for result in results) == 1
    # Each smaller profile holds less at its peak.
    peaks = [result.loop_peak_bytes for result in results]
    assert peaks == sorted(peaks, reverse=True)


@pytest.mark.slow
@FULL_REHEARSAL_TIMEOUT
@pytest.mark.parametrize("base_name", list(BASES))
def test_generation_at_full_size_under_every_profile(
    base_name: str, rehearsals: dict[tuple[str, str], list[RehearsalResult]]
) -> None:
    base = BASES[base_name]
    results = rehearsals[(base_name, "generation")]
    report(results, base)
    assert [result.profile for result in results] == list(PROFILE_NAMES)
    for result in results:
        assert "generate" in result.stages
        assert_near_planner(result, base)


def test_bases_of_one_architecture_are_rehearsed_once() -> None:
    """FLUX.1 Krea [dev] is rehearsed as FLUX.1 [dev] only while the registry gives them the same configs."""
    dev, krea = BASES["flux1-dev"], BASES["flux1-krea-dev"]
    assert dev.transformer_config == krea.transformer_config
    assert architecture_key(dev) == architecture_key(krea)
    assert architecture_key(dev) != architecture_key(BASES["flux2-klein-4b"])


def planted(old: str, new: str) -> Any:
    """A copy of the trainer's flow-matching loss with one line changed, in the module's own namespace."""
    source = textwrap.dedent(inspect.getsource(flow_matching.flow_matching_loss))
    assert old in source
    namespace = dict(vars(flow_matching))
    exec(compile(source.replace(old, new), "<planted>", "exec"), namespace)
    return namespace["flow_matching_loss"]


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        # The noise stays on the CPU: a CUDA run fails at the first operation mixing it with the latents.
        (
            "noisy = (1.0 - sigmas) * latents + sigmas * noise",
            "noisy = (1.0 - sigmas) * latents + sigmas * noise.cpu()",
            "device",
        ),
        # The transformer's inputs stay in fp32 while its weights are bf16: CUDA's matmul refuses mixed dtypes.
        (
            "guidance_scale=guidance_scale, weight_dtype=weight_dtype",
            "guidance_scale=guidance_scale, weight_dtype=noise.dtype",
            "dtype",
        ),
    ],
    ids=["wrong-device", "wrong-dtype"],
)
def test_a_planted_mistake_is_caught(old: str, new: str, error: str, default_folder: tuple[BaseSpec, Path]) -> None:
    base, folder = default_folder
    # The same copy without the mistake runs through: what fails below is the mistake, not the copying.
    with pytest.raises((RuntimeError, torch._subclasses.fake_tensor.FakeTensorDeviceMismatchError)) as caught:
        rehearse_training(
            folder, ["bf16"], base=base.name, gpu_bytes=GPU_BYTES, loss_fn=planted(old, new), encode=False
        )
    assert error in str(caught.value).lower()
