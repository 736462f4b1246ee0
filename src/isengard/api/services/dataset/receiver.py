"""Stream a multipart upload to disk, one bounded temporary file per part, never holding a body in memory.

Starlette's own form parser would spool every file whole before the route sees it, with no size limit per file.
Here each part of the `files` field is written in chunks to a server-named file in a private temporary folder;
a part that grows past its limit stops being written (the rest of it is read and dropped) and is reported as
rejected, and parts beyond the per-request count are not written at all. A part that starts like a zip archive
may be as large as the zip limit; any other part as large as the per-file limit.

A client that stalls (no bytes for `idle_timeout` seconds) or takes longer than `total_timeout` for the whole body
is answered 408; the caller removes what it had sent. Parts are counted as they arrive, whatever their field: a
body of a million empty parts is refused with 413 at the limit, before it costs memory for each. Routes receive
the body before they take a database connection, so slow clients hold sockets, not the connection pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from fastapi import HTTPException, Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

FIELD_NAME = "files"
ZIP_MAGIC = b"PK\x03\x04"
MAX_NAME_CHARS = 255
# Parts beyond the file limit are still reported one by one (with "too many files"), up to this many; past that,
# or past it in parts of other fields, the whole request is refused.
EXTRA_PARTS = 50


def _no_check(_incoming: int) -> None:
    return None


@dataclass
class ReceiveLimits:
    max_file_bytes: int
    max_zip_bytes: int
    max_files: int
    idle_timeout: float = 30.0
    total_timeout: float = 3600.0
    # Raises (InsufficientStorageError, answered 507) when this many more bytes would eat into the free-space
    # reserve. Checked before every write, so a body without Content-Length (chunked) is held to it too.
    reserve_space: Callable[[int], None] = _no_check


@dataclass
class ReceivedFile:
    """One `files` part: where its bytes are (None when it was not kept) and why it was refused, if it was."""

    original_name: str
    path: Path | None = None
    size: int = 0
    head: bytes = b""  # the first bytes, to tell a zip from an image without opening the file again
    rejected: str | None = None

    @property
    def looks_like_zip(self) -> bool:
        return self.head.startswith(ZIP_MAGIC)


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    received: ReceivedFile | None = None
    handle: BinaryIO | None = None
    ended: bool = False


def client_file_name(raw: str) -> str:
    """The name a client gave, for display only: last path component, printable, bounded. Never used on disk."""
    base = raw.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip()
    return cleaned[:MAX_NAME_CHARS] or "unnamed"


class MultipartReceiver:
    def __init__(self, folder: Path, limits: ReceiveLimits) -> None:
        self.folder = folder
        self.limits = limits
        self.files: list[ReceivedFile] = []
        self._part = _Part()
        self._header_name = b""
        self._header_value = b""
        self._parts: list[_Part] = []
        self._pending: list[tuple[_Part, bytes]] = []
        self._finished: list[_Part] = []
        self._part_count = 0

    # Parser callbacks (synchronous, no I/O: writes are queued and done in a worker thread) ----------------------
    def _on_part_begin(self) -> None:
        self._part = _Part()
        self._part_count += 1

    @property
    def max_parts(self) -> int:
        return self.limits.max_files + EXTRA_PARTS

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._part.headers[self._header_name.lower()] = self._header_value
        self._header_name = b""
        self._header_value = b""

    def _on_headers_finished(self) -> None:
        _disposition, options = parse_options_header(self._part.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name != FIELD_NAME or self._part_count > self.max_parts:
            return  # other fields are read past and ignored; a request past the part limit is refused whole
        raw_filename = options.get(b"filename")
        shown = raw_filename.decode("utf-8", "replace") if raw_filename else ""
        received = ReceivedFile(original_name=client_file_name(shown))
        self._part.received = received
        self._parts.append(self._part)
        self.files.append(received)
        if raw_filename is None:
            received.rejected = "not a file: the `files` field must carry files"
        elif len(self.files) > self.limits.max_files:
            received.rejected = f"too many files in one request: at most {self.limits.max_files}"
        else:
            received.path = self.folder / f"part-{len(self.files):05d}"

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        received = self._part.received
        if received is None or received.rejected is not None:
            return
        chunk = data[start:end]
        if len(received.head) < len(ZIP_MAGIC):
            received.head += chunk[: len(ZIP_MAGIC) - len(received.head)]
        received.size += len(chunk)
        limit = self.limits.max_zip_bytes if received.looks_like_zip else self.limits.max_file_bytes
        if received.size > limit:
            kind = "zip archive" if received.looks_like_zip else "file"
            received.rejected = f"{kind} is larger than the limit of {_megabytes(limit)}"
            self._pending.append((self._part, b""))  # lets the writer close and remove what it had written
            return
        self._pending.append((self._part, chunk))

    def _on_part_end(self) -> None:
        self._part.ended = True
        if self._part.received is not None:
            self._finished.append(self._part)

    # Disk work, in a worker thread ------------------------------------------------------------------------------
    def _flush(self) -> None:
        self.limits.reserve_space(sum(len(chunk) for _part, chunk in self._pending))
        for part, chunk in self._pending:
            received = part.received
            assert received is not None
            if received.rejected is not None:
                self._discard(part)
                continue
            if part.handle is None:
                assert received.path is not None
                part.handle = open(received.path, "xb")  # noqa: SIM115 - closed in _flush, _discard or _close_all
            part.handle.write(chunk)
        self._pending.clear()
        for part in self._finished:
            if part.received is not None and part.received.rejected is not None:
                self._discard(part)
            elif part.handle is not None:
                part.handle.close()
                part.handle = None
            elif part.received is not None and part.received.path is not None:
                part.received.path.touch()  # an empty file is still a file, rejected later with its reason
        self._finished.clear()

    def _discard(self, part: _Part) -> None:
        if part.handle is not None:
            part.handle.close()
            part.handle = None
        if part.received is not None and part.received.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part.received.path)
            part.received.path = None

    async def receive(self, request: Request) -> list[ReceivedFile]:
        content_type = request.headers.get("content-type", "")
        media_type, params = parse_options_header(content_type)
        if media_type != b"multipart/form-data" or b"boundary" not in params:
            raise HTTPException(
                status_code=415, detail="send the images as multipart/form-data, one or more parts named `files`"
            )
        parser = MultipartParser(
            params[b"boundary"],
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
            },
        )
        try:
            async for chunk in _timed(request, self.limits):
                parser.write(chunk)
                if self._part_count > self.max_parts:
                    raise HTTPException(
                        status_code=413,
                        detail=f"too many parts in one request: at most {self.limits.max_files} files",
                    )
                if self._pending or self._finished:
                    await run_in_threadpool(self._flush)
            parser.finalize()
            await run_in_threadpool(self._flush)
        except FormParserError:
            raise HTTPException(status_code=400, detail="the multipart body is malformed") from None
        finally:
            # Whatever happened, no handle stays open; the caller removes the temporary folder.
            await run_in_threadpool(self._close_all)
        return self.files

    def _close_all(self) -> None:
        self._pending.clear()
        self._finished.clear()
        for part in self._parts:
            if not part.ended and part.received is not None and part.received.rejected is None:
                part.received.rejected = "the upload ended before this file was complete"
            if part.handle is not None:
                part.handle.close()
                part.handle = None


async def _timed(request: Request, limits: ReceiveLimits) -> AsyncIterator[bytes]:
    """The body's chunks; 408 when the client stalls or the whole body takes too long."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.total_timeout
    chunks = request.stream().__aiter__()
    while True:
        wait = min(limits.idle_timeout, deadline - loop.time())
        try:
            chunk = await asyncio.wait_for(anext(chunks), timeout=max(wait, 0.0))
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise HTTPException(
                status_code=408, detail="the upload was too slow: the request body did not arrive in time"
            ) from None
        yield chunk


def _megabytes(value: int) -> str:
    if value >= 1024 * 1024:
        return f"{value / (1024 * 1024):.0f} MB"
    return f"{value / 1024:.0f} KB"
