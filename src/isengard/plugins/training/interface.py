"""The training plugin interface: a config model and `train(ctx, job)`."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel

from isengard.domain import PluginKind, TrainingInput
from isengard.plugins.api import JobContext, Plugin


class TrainingJob(BaseModel):
    """The payload of a training job: the plugin's validated config and the dataset snapshot."""

    plugin: str
    config: dict[str, Any]
    input: TrainingInput


class TrainingPlugin(Plugin):
    kind: ClassVar[PluginKind] = PluginKind.TRAINING
    config_model: ClassVar[type[BaseModel]]

    def validate_config(self, config: dict[str, Any]) -> BaseModel:
        return self.config_model.model_validate(config)

    @abstractmethod
    def train(self, ctx: JobContext, config: BaseModel, job: TrainingInput) -> dict[str, Any]:
        """Train; save the LoRA through `ctx.save_artifact(..., ArtifactKind.LORA)`; return a summary."""

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        job = TrainingJob.model_validate(payload)
        return self.train(ctx, self.validate_config(job.config), job.input)
