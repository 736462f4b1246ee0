"""Errors reported by the web client: bounded, redacted again on the server, stored in `client_logs`."""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, field_validator

from isengard.api.deps import DbSession
from isengard.api.ratelimit import rate_limited
from isengard.db.models import ClientLog
from isengard.redaction import redact_text, redact_value

log = logging.getLogger(__name__)

router = APIRouter(tags=["logs"])

MAX_CONTEXT_JSON_CHARS = 8_000


class ClientLogIn(BaseModel):
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


@router.post(
    "/logs",
    status_code=202,
    response_model=ClientLogStored,
    dependencies=[Depends(rate_limited("logs"))],
    summary="Store an error reported by the web client (redacted)",
)
def store_client_log(entry: ClientLogIn, db: DbSession) -> ClientLogStored:
    row = ClientLog(
        level=entry.level,
        message=redact_text(entry.message),
        url=redact_text(entry.url),
        context=redact_value(entry.context),
        correlation_id=entry.correlation_id,
    )
    db.add(row)
    db.flush()
    log.info("client log stored", extra={"client_log_id": row.id, "level": row.level})
    return ClientLogStored(id=row.id, message=row.message)
