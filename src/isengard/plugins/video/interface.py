"""The video plugin interface. No engine ships yet; the interface is here so one can be added as a plugin."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel

from isengard.domain import PluginKind
from isengard.plugins.api import JobContext, Plugin


class VideoPlugin(Plugin):
    kind: ClassVar[PluginKind] = PluginKind.VIDEO
    request_model: ClassVar[type[BaseModel]]

    @abstractmethod
    def generate_video(self, ctx: JobContext, request: BaseModel) -> dict[str, Any]:
        """Render a video; save it through `ctx.save_artifact(..., ArtifactKind.OUTPUT)`."""

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        return self.generate_video(ctx, self.request_model.model_validate(payload))
