"""What a new run on a base starts from: the registry's recommended settings of that base (sampling steps, guidance
and size, training resolution and guidance embedding) in a training engine's config fields, for the form to apply
when a person switches base. Only fields the engine's config has are given."""

from __future__ import annotations

from typing import Any

from isengard.models.bases import BASES, BaseSpec

# On the tiny fast-test model the engine's small sizes and step counts stay: the registry's are the full-size
# model's (1024 px, 28-50 sampling steps), which would take minutes there instead of seconds.
FULL_SIZE_ONLY = ("resolutions", "sample_resolution", "sample_steps")


def _from_registry(spec: BaseSpec, engine_defaults: dict[str, Any]) -> dict[str, Any]:
    defaults = spec.defaults
    values: dict[str, Any] = {
        "sample_steps": defaults.sample_steps,
        "sample_guidance": defaults.guidance,
        "sample_resolution": defaults.resolution,
    }
    if defaults.training_guidance is not None:  # klein has no guidance embedding: the field means nothing there
        values["guidance_scale"] = defaults.training_guidance
    listed = engine_defaults.get("resolutions")
    if isinstance(listed, list) and listed:
        # The engine's buckets up to the base's own resolution, which is always one of them.
        values["resolutions"] = sorted({*(r for r in listed if isinstance(r, int) and r < defaults.resolution),
                                        defaults.resolution})  # fmt: skip
    return values


def base_run_defaults(engine_defaults: dict[str, Any], *, fast_test: bool) -> dict[str, dict[str, Any]]:
    """Per base name, the config values a run on it starts from, among the fields of `engine_defaults` (an
    engine's default config)."""
    out = {}
    for spec in BASES.values():
        values = _from_registry(spec, engine_defaults)
        out[spec.name] = {
            key: value
            for key, value in values.items()
            if key in engine_defaults and not (fast_test and key in FULL_SIZE_ONLY)
        }
    return out
