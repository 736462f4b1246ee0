"""Free-space checks for the data folder: refuse new files cleanly before the disk is full, not halfway.

A full disk mid-write leaves a truncated file or a failed fsync; checking first turns it into a clear refusal
(HTTP 507 for uploads, a failed job with a readable error for artifacts). `ISENGARD_MIN_FREE_BYTES` is the floor
kept free for the database, Redis' persistence and logs; 0 disables the check.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path


class InsufficientStorageError(OSError):
    """Not enough free space to store something; an OSError with ENOSPC so generic handlers treat it as such."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.ENOSPC, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def free_bytes(path: Path) -> int:
    """Free bytes on the file system holding `path` (the nearest existing parent, for paths not made yet)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def _mib(value: int) -> str:
    return f"{value / (1024 * 1024):.0f} MiB"


def require_free_space(path: Path, incoming_bytes: int, min_free_bytes: int) -> None:
    """Raise InsufficientStorageError unless `incoming_bytes` fit on path's disk with `min_free_bytes` left over."""
    if min_free_bytes <= 0 and incoming_bytes <= 0:
        return
    available = free_bytes(path)
    if available - max(incoming_bytes, 0) < min_free_bytes:
        raise InsufficientStorageError(
            f"not enough free disk space for the data folder: {_mib(available)} free, "
            f"{_mib(max(incoming_bytes, 0))} needed and {_mib(min_free_bytes)} kept in reserve "
            "(ISENGARD_MIN_FREE_BYTES); free some space and try again"
        )


def is_disk_full(exc: BaseException) -> bool:
    """Whether an exception means the disk (or a quota) is full."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def remove_partial_files(folder: Path) -> int:
    """Delete the temporary files that atomic writes leave behind when a process is killed mid-write.

    `isengard.storage` writes `.<name>.<random>.part<suffix>` beside the target and renames it when whole, so
    such a file is never a finished result: after a crash it is only wasted space. Returns how many were removed.
    """
    removed = 0
    if not folder.is_dir():
        return removed
    for path in folder.rglob(".*.part*"):
        if path.is_file() and ".part" in path.name:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
