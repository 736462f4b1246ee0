"""The `flux-lora` trainer: a LoRA on FLUX's transformer with diffusers + peft, in one readable loop.

Written like diffusers' training examples: the config model lives in `flux_lora_config.py`; `train` below reads
top to bottom: load, encode the data once, add the LoRA, (resume), then step, report, sample, checkpoint, save.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel

from isengard.domain import TrainingInput
from isengard.plugins.api import Capability, Estimate, JobContext, MeasuredSpeed, PluginError
from isengard.plugins.training.flux_lora_config import FluxLoraConfig, fast_test_defaults
from isengard.plugins.training.flux_lora_estimate import estimate_run
from isengard.plugins.training.interface import TrainingPlugin

log = logging.getLogger(__name__)

OPTIMIZER_PACKAGES = {"adamw8bit": "bitsandbytes", "prodigy": "prodigyopt"}


class FluxLoraTrainer(TrainingPlugin):
    name = "flux-lora"
    description = "LoRA training on FLUX.1 and FLUX.2 [klein] bases with diffusers + peft (built in)"
    config_model = FluxLoraConfig

    # Environment ---------------------------------------------------------------------------------------------------

    def _mode(self) -> str:
        return self.host.mode

    def estimate(self, config: BaseModel, dataset: TrainingInput, measured: MeasuredSpeed | None) -> Estimate:
        return estimate_run(cast(FluxLoraConfig, config), dataset, measured, self.host.mode)

    def default_config(self) -> dict[str, Any]:
        defaults = FluxLoraConfig().model_dump()
        if self._mode() == "fast-test":
            defaults.update(fast_test_defaults())
        return defaults

    def capabilities(self) -> Capability:
        optimizers = ["adamw"] + [name for name, pkg in OPTIMIZER_PACKAGES.items() if _installed(pkg)]
        details: dict[str, Any] = {"mode": self._mode(), "optimizers": optimizers}
        if self._mode() == "fast-test":
            details["device"] = "cpu"
            details["model"] = "tiny FLUX-architecture model"
            return Capability(available=True, details=details)
        import torch

        if not torch.cuda.is_available():
            return Capability(
                available=False,
                reason="no CUDA GPU: training FLUX.1-dev needs an NVIDIA GPU (`isengard plan` shows which memory "
                "profile fits a card's size; fast-test mode trains the tiny model on a CPU)",
                details=details,
            )
        details["device"] = torch.cuda.get_device_name(0)
        details["gpu_memory_gb"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
        if self.host.base_model:
            model = self.host.locate_base_model()
            if model.path is None:
                return Capability(available=False, reason=f"base model missing: {model.reason}", details=details)
            details["model"] = str(model.path)
        return Capability(available=True, details=details)

    def config_problems(self, config: FluxLoraConfig) -> list[str]:
        """What this machine cannot do of a valid config (an optional optimizer package not installed)."""
        problems = []
        package = OPTIMIZER_PACKAGES.get(config.optimizer)
        if package and not _installed(package):
            problems.append(f"optimizer '{config.optimizer}' needs the {package} package: pip install {package}")
        return problems

    def validate_config(self, config: dict[str, Any]) -> FluxLoraConfig:
        parsed = FluxLoraConfig.model_validate(config)
        problems = self.config_problems(parsed)
        if problems:
            raise PluginError("; ".join(problems))
        return parsed

    def _base_model_name(self, ctx: JobContext) -> str:
        if ctx.mode == "fast-test":
            return "isengard/tiny-flux (fast-test)"
        return self.host.base_model or Path(ctx.base_model_path).name

    # Training ------------------------------------------------------------------------------------------------------

    def train(self, ctx: JobContext, config: BaseModel, job: TrainingInput) -> dict[str, Any]:
        # Imported here: the training loop pulls in torch and diffusers, which listing plugins does not need.
        from isengard.plugins.training.flux_lora_loop import run_training

        return run_training(ctx, cast(FluxLoraConfig, config), job, base_model_name=self._base_model_name(ctx))


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None
