"""Correlation ids, security headers and the disk guard, as pure ASGI middleware (safe for streaming like SSE)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from isengard.diskspace import InsufficientStorageError, is_disk_full, require_free_space
from isengard.logging import correlation_id, new_correlation_id

log = logging.getLogger(__name__)


class ErrorMessage(BaseModel):
    detail: str


class UnprocessableBody(BaseModel):
    """422: a field-by-field list from request validation, or one sentence from a route's own checks."""

    detail: str | list[dict[str, Any]]
    message: str | None = None


# Answers any /api route can give besides its own, documented once for all of them (the fuzz tests hold the
# API to its schema): a body that is not JSON, the token check, an unknown id, too many failed authentications,
# the disk guard.
COMMON_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorMessage,
        "description": "the request body could not be parsed, or (without a token) the Host is not a loopback name",
    },
    401: {"model": ErrorMessage, "description": "authentication required (when ISENGARD_API_TOKEN is set)"},
    403: {"model": ErrorMessage, "description": "a write from another origin"},
    404: {"model": ErrorMessage, "description": "no such resource"},
    413: {"model": ErrorMessage, "description": "the request body is larger than the route's limit"},
    422: {"model": UnprocessableBody, "description": "the request is well-formed but its values cannot be used"},
    429: {
        "model": ErrorMessage,
        "description": "too many requests (a rate limit, or failed authentications from this address); see Retry-After",
    },
    507: {"model": ErrorMessage, "description": "not enough free disk space in the data folder"},
}

# What a route that receives files can answer besides its own results.
UPLOAD_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    408: {"model": ErrorMessage, "description": "the request body stalled or took too long to arrive"},
    415: {"model": ErrorMessage, "description": "the body is not multipart/form-data"},
}

HEADER = b"x-correlation-id"
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

# The bundle is served from the same origin; inline styles are allowed for the chart library's SVG.
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


class CorrelationIdMiddleware:
    """Takes X-Correlation-ID from the request (or makes one), exposes it to logs, returns it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(HEADER, b"").decode("latin-1")
        # A client-chosen id is kept only if it is harmless in logs.
        cid = incoming if _VALID_ID.match(incoming) else new_correlation_id()
        token = correlation_id.set(cid)
        scope.setdefault("state", {})["correlation_id"] = cid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((HEADER, cid.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            correlation_id.reset(token)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                # The API docs page loads its own assets; the CSP is for the web bundle.
                if not path.startswith("/api/docs"):
                    extra.append((b"content-security-policy", CSP.encode()))
                headers.extend((k, v) for k, v in extra if k not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class TrackedSend:
    """Passes messages on and remembers whether the response has started: after that, no other answer can be sent."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


class UnexpectedErrorMiddleware:
    """Turns an unhandled exception into a JSON 500 inside the correlation-id and security-header middleware.

    Starlette hands exceptions nobody handled to its outermost layer, outside every middleware added here: a 500
    made there would carry neither the correlation id a person needs to find the log line nor the security headers.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response = TrackedSend(send)
        try:
            await self.app(scope, receive, response)
        except Exception as exc:
            if response.started:  # too late for a 500: the server closes the connection
                raise
            log.exception("unhandled error", exc_info=exc)
            body = json.dumps(
                {"detail": "internal error; the server log has the details", "correlation_id": correlation_id.get()}
            ).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 500, "headers": headers})
            await send({"type": "http.response.body", "body": body})


_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})


class DiskGuardMiddleware:
    """Answers 507 Insufficient Storage instead of writing into a full disk.

    Before a write request's body is read, the announced size (Content-Length) must fit with
    ISENGARD_MIN_FREE_BYTES to spare; and a route that still runs into a full disk (ENOSPC, a quota) is answered
    507 with a readable message rather than a 500.
    """

    def __init__(self, app: ASGIApp, *, data_root: Path, min_free_bytes: int) -> None:
        self.app = app
        self.data_root = data_root
        self.min_free_bytes = min_free_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in _WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        length_header = dict(scope.get("headers") or []).get(b"content-length", b"")
        announced = int(length_header) if length_header.isdigit() else 0
        # Small JSON bodies (logins, job submissions) store nothing big; only bodies that carry files are checked.
        if announced >= 64 * 1024:
            try:
                require_free_space(self.data_root, announced, self.min_free_bytes)
            except InsufficientStorageError as exc:
                await _insufficient_storage(send, str(exc))
                return
        response = TrackedSend(send)
        try:
            await self.app(scope, receive, response)
        except OSError as exc:
            if response.started or not is_disk_full(exc):
                raise
            log.warning("write refused: disk full", extra={"path": scope.get("path")})
            message = str(exc) if isinstance(exc, InsufficientStorageError) else "the data folder's disk is full"
            await _insufficient_storage(send, message)


async def _insufficient_storage(send: Send, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 507,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
