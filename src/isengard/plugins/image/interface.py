"""The image plugin interface: a request model and `generate(ctx, request)`."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel

from isengard.domain import PluginKind
from isengard.plugins.api import JobContext, Plugin


class ImagePlugin(Plugin):
    kind: ClassVar[PluginKind] = PluginKind.IMAGE
    request_model: ClassVar[type[BaseModel]]

    @abstractmethod
    def generate(self, ctx: JobContext, request: BaseModel) -> dict[str, Any]:
        """Generate; save each image through `ctx.save_artifact(..., ArtifactKind.OUTPUT)`; return a summary."""

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        return self.generate(ctx, self.request_model.model_validate(payload))
