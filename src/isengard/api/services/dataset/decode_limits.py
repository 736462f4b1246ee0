"""Bounds on the memory that decoding uploads takes, per request and per API process.

A small file can declare a large image: a 160 KB PNG of 7000x7000 decodes to 147 MB of pixels, and measuring and
storing it briefly needs a few times that. So: at most `ISENGARD_MAX_CONCURRENT_DECODES` images are decoded at once
in the process (the others wait their turn), the images of one request may add up to at most
`ISENGARD_MAX_REQUEST_PIXELS` (the rest are refused with that reason), and after a request the allocator is asked
to give freed memory back to the system, so the process returns to its baseline instead of keeping its peak.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass


@functools.cache
def _slots(count: int) -> threading.BoundedSemaphore:
    # One semaphore per configured count: every request of the process shares it.
    return threading.BoundedSemaphore(count)


@contextlib.contextmanager
def decode_slot(count: int) -> Iterator[None]:
    """Hold one of the process' `count` decode slots while a decoded image is in memory."""
    with _slots(count):
        yield


@dataclass
class PixelBudget:
    """What the images of one request may still decode, in pixels."""

    limit: int
    used: int = 0

    def take(self, pixels: int) -> str | None:
        """Count `pixels` against the budget; the reason for refusing when they do not fit."""
        if self.used + pixels > self.limit:
            return (
                f"the images of one request may hold at most {self.limit:,} pixels together; "
                "send the rest in another request"
            )
        self.used += pixels
        return None


@functools.cache
def _malloc_trim() -> object | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return getattr(libc, "malloc_trim", None) if libc is not None else None


def release_memory() -> None:
    """Hand freed heap pages back to the system (glibc keeps them per thread arena otherwise); no-op elsewhere."""
    trim = _malloc_trim()
    if callable(trim):
        trim(0)
