"""What a finished training run records of its speed (see `isengard.jobs.speeds`): seconds per step, at the
resolution its plugin names, on this worker's device."""

from __future__ import annotations

import sys
from typing import Any

from pydantic import ValidationError

from isengard.jobs.speeds import speed_entry
from isengard.plugins.api import Plugin
from isengard.plugins.training.interface import TrainingJob, TrainingPlugin


def device_name(mode: str) -> str:
    """The GPU's name, or "cpu"; a fast-test run (the tiny model) is kept apart from real ones on the same device."""
    torch = sys.modules.get("torch")
    name = "cpu"
    if torch is not None and torch.cuda.is_available():
        name = str(torch.cuda.get_device_name(0))
    return f"{name}, tiny model" if mode == "fast-test" else name


def run_speed(
    plugin: Plugin, payload: dict[str, Any], seconds_per_step: float | None, mode: str
) -> dict[str, Any] | None:
    if not isinstance(plugin, TrainingPlugin) or seconds_per_step is None:
        return None
    try:
        config = plugin.validate_config(TrainingJob.model_validate(payload).config)
    except ValidationError:
        return None
    return speed_entry(seconds_per_step, plugin.speed_resolution(config), device_name(mode))
