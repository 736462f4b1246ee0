"""Errors reported by the web client: bounded, redacted again on the server, stored in `client_logs`."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends

from isengard.api.deps import DbSession
from isengard.api.ratelimit import rate_limited
from isengard.api.redaction import redact_text, redact_value
from isengard.api.schemas.logs import ClientLogIn, ClientLogStored
from isengard.db.models import ClientLog

log = logging.getLogger(__name__)

router = APIRouter(tags=["logs"])


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
