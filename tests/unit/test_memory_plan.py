"""The memory planner: profile choice, refusals with reasons, and its activation model against fake-tensor traces."""

from __future__ import annotations

import pytest

from isengard.models.bases.flux1 import FLUX_DEV_TRANSFORMER, flux_layout
from isengard.models.memory_activations import step_working_bytes
from isengard.models.memory_plan import (
    GIB,
    MemoryPlan,
    ProfileDoesNotFit,
    choose_profile,
    next_profile_that_fits,
    plan_generation,
    plan_training,
)
from isengard.models.profiles import PROFILE_NAMES


def training(gpu_gib: float | None, *, resolution: int = 1024, **overrides: object) -> MemoryPlan:
    values: dict[str, object] = {"batch_size": 1, "rank": 16, "gradient_checkpointing": True, **overrides}
    gpu = None if gpu_gib is None else int(gpu_gib * GIB)
    return plan_training(
        transformer_config=FLUX_DEV_TRANSFORMER,
        resolution=resolution,
        gpu_bytes=gpu,
        **values,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("gpu_gib", [6, 8, 12, 16, 24, 48, 80])
def test_auto_takes_the_fastest_profile_that_fits(gpu_gib: int) -> None:
    plan = training(gpu_gib)
    fitting = [e.profile for e in plan.estimates if e.estimated_peak_bytes <= gpu_gib * GIB]

    assert [e.profile for e in plan.estimates] == list(PROFILE_NAMES)  # fastest first
    assert [e.profile for e in plan.estimates if e.fits] == fitting
    assert plan.chosen == (fitting[0] if fitting else None)
    if fitting:
        assert choose_profile("auto", plan) == fitting[0]
        assert plan.reason.startswith(f"fits your {gpu_gib} GB GPU with {fitting[0]} (est. ")
    else:
        with pytest.raises(ProfileDoesNotFit, match="no profile fits"):
            choose_profile("auto", plan)


def test_the_targets_of_the_profiles_hold_at_1024_px() -> None:
    # FLUX.1-dev's bf16 weights alone are 22.2 GiB: a 24 GB card needs a quantized base; 12 GB takes NF4, 8 GB
    # block offloading.
    assert training(24).chosen == "int8"
    assert training(12).chosen == "nf4"
    assert training(8).chosen == "nf4-offload"
    assert training(80).chosen == "bf16"


def test_estimates_add_up_and_shrink_profile_by_profile() -> None:
    plan = training(None)
    peaks = [e.estimated_peak_bytes for e in plan.estimates]

    for estimate in plan.estimates:
        assert estimate.estimated_peak_bytes == sum(estimate.breakdown.values())
        assert estimate.fits is None
    assert peaks == sorted(peaks, reverse=True)
    assert plan.chosen is None and plan.reason.startswith("no GPU")
    assert MemoryPlan.model_validate_json(plan.model_dump_json()) == plan


def test_activations_follow_resolution_batch_and_checkpointing() -> None:
    def activations(**kwargs: object) -> int:
        return training(None, **kwargs).estimate("nf4").breakdown["activations"]  # type: ignore[arg-type]

    assert activations(resolution=1024) > 2 * activations(resolution=512)
    assert activations(batch_size=2) == pytest.approx(2 * activations(batch_size=1), abs=2)
    assert activations(gradient_checkpointing=False) > 10 * activations(gradient_checkpointing=True)


def test_a_forced_profile_that_does_not_fit_is_refused_with_the_next_that_does() -> None:
    plan = training(24)
    bf16 = plan.estimate("bf16").estimated_peak_bytes
    int8 = plan.estimate("int8").estimated_peak_bytes

    with pytest.raises(ProfileDoesNotFit) as refused:
        choose_profile("bf16", plan)
    message = str(refused.value)
    assert f"{bf16 / GIB:.1f} GB" in message
    assert "24 GB GPU" in message
    assert f"int8 fits (est. {int8 / GIB:.1f} GB)" in message
    assert choose_profile("nf4", plan) == "nf4"
    assert next_profile_that_fits("bf16", plan) == "int8"
    assert next_profile_that_fits("nf4-offload", plan) is None
    assert next_profile_that_fits("bf16", training(None)) is None


def test_without_a_gpu_any_profile_may_be_asked_for() -> None:
    plan = training(None)
    assert choose_profile("auto", plan) == PROFILE_NAMES[0]
    assert choose_profile("nf4", plan) == "nf4"


def test_generation_keeps_a_quantized_transformer_resident_where_it_fits() -> None:
    def chosen(gpu_gib: int) -> str | None:
        return plan_generation(transformer_config=FLUX_DEV_TRANSFORMER, resolution=1024, gpu_bytes=gpu_gib * GIB).chosen

    assert chosen(48) == "bf16"
    assert chosen(24) == "int8"
    assert chosen(16) == "nf4"  # with the T5 encoder in int8 beside it, as the engine loads it
    # Training's estimates are not generation's: no optimizer, no gradients, but the text encoders visit.
    generation = plan_generation(transformer_config=FLUX_DEV_TRANSFORMER, resolution=1024, gpu_bytes=None)
    assert generation.estimate("bf16").estimated_peak_bytes != training(None).estimate("bf16").estimated_peak_bytes


@pytest.mark.slow
@pytest.mark.parametrize("checkpointing", [True, False], ids=["checkpointing", "no-checkpointing"])
def test_per_block_model_predicts_a_traced_full_width_slice(checkpointing: bool) -> None:
    """The calibrated per-block model against a fake-tensor run of the real step on 3 double + 5 single blocks of
    FLUX.1-dev's width at a resolution the calibration did not use."""
    from isengard.models.memory_trace import trace_training_step

    config = {**FLUX_DEV_TRANSFORMER, "num_layers": 3, "num_single_layers": 5}
    traced = trace_training_step(config, resolution=768, batch_size=1, rank=16, gradient_checkpointing=checkpointing)
    predicted = step_working_bytes(
        flux_layout(config), resolution=768, batch_size=1, gradient_checkpointing=checkpointing
    )
    assert abs(predicted - traced.working_bytes) <= 0.05 * traced.working_bytes
