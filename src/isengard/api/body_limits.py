"""Every request body is bounded before it is read: an announced size over the route's limit is answered 413 at
once, and a body sent without Content-Length (chunked) is counted as it arrives and cut off at the limit.

FastAPI parses a JSON body before any dependency runs (the login's rate limit included), so a bound inside a
route would come too late: a few megabytes of `[{},{},…]` become hundreds of megabytes of Python objects. This
pure ASGI middleware sits outside the routes and the token check, so the public login is bounded too.

The limits per route: the login is a token of at most 4 KiB; every other JSON body (forms, captions, client logs)
`ISENGARD_MAX_JSON_BODY_BYTES`; the two multipart routes are streamed to disk by their receivers, which bound each
part, the number of parts and the whole body themselves.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

LOGIN_PATH = "/api/auth/login"
# A login body holds one token of at most 4,096 characters (4 bytes each at worst in UTF-8) and its JSON frame.
LOGIN_BODY_BYTES = 4 * 4096 + 1024

# The routes that stream multipart bodies to disk; their receivers apply the upload limits.
_STREAMED_UPLOADS = (re.compile(r"^/api/characters/[^/]+/images/?$"), re.compile(r"^/api/loras/import/?$"))


class BodyTimeoutError(HTTPException):
    def __init__(self) -> None:
        super().__init__(status_code=408, detail="the request body stalled: send it without pauses")


class BodyTooLargeError(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"the request body is larger than the limit of {limit} bytes")


@dataclass(frozen=True)
class BodyLimits:
    json_bytes: int
    login_bytes: int = LOGIN_BODY_BYTES
    # Longest pause between two pieces of a body still arriving (not after it: a stream waits for disconnects).
    idle_seconds: float = 30.0

    def for_path(self, path: str) -> int | None:
        """The most bytes a body sent to `path` may have; None for the streamed uploads (bounded by their receiver)."""
        if path == LOGIN_PATH:
            return self.login_bytes
        if any(pattern.match(path) for pattern in _STREAMED_UPLOADS):
            return None
        return self.json_bytes


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.for_path(scope.get("path", ""))
        if limit is None:
            await self.app(scope, receive, send)
            return
        announced = _content_length(scope)
        if announced is not None and announced > limit:
            log.info("request body refused: too large", extra={"path": scope.get("path"), "bytes": announced})
            await _refuse(send, 413, f"the request body is larger than the limit of {limit} bytes")
            return
        received = 0
        body_done = False

        async def bounded_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), timeout=self.limits.idle_seconds)
            except TimeoutError:
                log.info("request body refused: stalled", extra={"path": scope.get("path")})
                raise BodyTimeoutError() from None
            if message["type"] == "http.request":
                body_done = not message.get("more_body", False)
                received += len(message.get("body", b""))
                if received > limit:
                    log.info("request body refused: too large", extra={"path": scope.get("path")})
                    raise BodyTooLargeError(limit)
            return message

        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracked_send)
        except (BodyTooLargeError, BodyTimeoutError) as exc:
            # Raised where no exception handler runs (a middleware reading the body); inside a route FastAPI's own
            # handler has already answered.
            if started:
                raise
            await _refuse(send, exc.status_code, str(exc.detail))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        # The rest of the body is not read: the connection cannot carry another request.
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
