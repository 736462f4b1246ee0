"""A log entry the web client reports, bounded before anything is stored."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from isengard.api.support.text import RequestModel

MAX_CONTEXT_JSON_CHARS = 8_000


class ClientLogIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    level: Literal["debug", "info", "warn", "error"] = "error"
    message: str = Field(min_length=1, max_length=4_000)
    url: str = Field(default="", max_length=2_000)
    context: dict[str, Any] = Field(default_factory=dict)
    correlation_id: str | None = Field(default=None, max_length=64)

    @field_validator("context")
    @classmethod
    def _bounded_context(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Bounded by its serialized size: a stack trace fits, a dumped store does not.
        if len(json.dumps(value, default=str)) > MAX_CONTEXT_JSON_CHARS:
            raise ValueError(f"must serialize to at most {MAX_CONTEXT_JSON_CHARS} characters")
        return value


class ClientLogStored(BaseModel):
    id: int
    message: str
