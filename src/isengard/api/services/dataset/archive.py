"""Zip uploads (the dataset format Replicate and fal accept): images with optional same-named .txt captions.

Defences, in order: the central directory's own record count and size, read from its end record before the
archive is opened (opening parses every record into memory: a million entries cost half a gigabyte before any
count could refuse them); entry count and the sum of declared sizes are checked before anything is extracted, against
what is left of the request's budget (`ZipBudget`: the limits hold for all the archives of one request together,
not per archive); every entry path is checked (no `..`, no absolute or drive paths, no links, no encrypted
entries); each entry's declared size is checked against the per-file limit and against the free-space guard
before it is written; while extracting, bytes are counted so an entry that holds more than it declares, or
archives that expand past the budget, are stopped. macOS resource forks (`__MACOSX/`) and
dotfiles are skipped silently: archivers add them, people never meant them.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from isengard.api.services.dataset.receiver import MAX_NAME_CHARS, client_file_name

CHUNK_BYTES = 1024 * 1024
# A central directory record is 46 bytes plus its name, extra field and comment; 4 KiB each is generous.
MAX_DIRECTORY_BYTES_PER_RECORD = 4096
# Records that are not files to store (folders, __MACOSX forks, dotfiles) are allowed beside the files, up to
# as many again plus this.
EXTRA_RECORDS = 64
_END_OF_DIRECTORY = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_END = b"PK\x06\x06"
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass
class ZipLimits:
    max_entries: int
    max_uncompressed_bytes: int
    max_entry_bytes: int


def _no_check(_incoming: int) -> None:
    return None


@dataclass
class ZipBudget:
    """What the archives of one request may still expand to, shared by all of them."""

    bytes_left: int
    entries_left: int
    # Raises (InsufficientStorageError) when this many more bytes would not fit beside the free-space reserve.
    reserve_space: Callable[[int], None] = _no_check

    @classmethod
    def of(cls, limits: ZipLimits, reserve_space: Callable[[int], None] = _no_check) -> ZipBudget:
        return cls(limits.max_uncompressed_bytes, limits.max_entries, reserve_space)


@dataclass
class Candidate:
    """A file to consider storing: an uploaded part or a zip entry, already on disk unless rejected."""

    name: str  # shown to the person: file name, or "archive.zip/dir/photo.jpg"
    original_name: str  # base name kept on the image row
    group: str  # captions pair with images of the same group and stem
    path: Path | None
    size: int
    rejected: str | None = None

    @property
    def stem_key(self) -> tuple[str, str]:
        return self.group, PurePosixPath(self.original_name).stem.lower()

    @property
    def is_caption_file(self) -> bool:
        return self.original_name.lower().endswith(".txt")


class ZipRejectedError(ValueError):
    """The archive as a whole is refused; the message says why."""


def _entry_path_problem(raw: str) -> str | None:
    path = raw.replace("\\", "/")
    if path.startswith("/") or _DRIVE.match(path):
        return "absolute paths are not accepted"
    if ".." in path.split("/"):
        return "paths with `..` are not accepted"
    return None


def _skipped(raw: str) -> bool:
    parts = [part for part in raw.replace("\\", "/").split("/") if part]
    # `..` is not a dotfile: such entries must be reported as unsafe, not skipped quietly.
    hidden = any(part.startswith(".") and part not in (".", "..") for part in parts)
    return not parts or parts[0] == "__MACOSX" or hidden


def _is_link(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return stat.S_ISLNK(mode) if mode else False


def expand_zip(
    zip_path: Path, zip_name: str, folder: Path, limits: ZipLimits, prefix: str, budget: ZipBudget | None = None
) -> list[Candidate]:
    """Extract the acceptable entries of one archive into `folder`; refused entries come back with a reason.

    `budget` is what is left of the request's limits (a fresh one, for one archive alone, when not given); what
    this archive extracts is taken from it."""
    budget = budget if budget is not None else ZipBudget.of(limits)
    _check_directory_size(zip_path, limits, budget)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError):
        raise ZipRejectedError("not a valid zip archive") from None
    with archive:
        entries = [info for info in archive.infolist() if not info.is_dir() and not _skipped(info.filename)]
        if len(entries) > budget.entries_left:
            raise ZipRejectedError(
                f"the archive has {len(entries)} files; at most {limits.max_entries} are accepted "
                f"in the archives of one request ({budget.entries_left} left)"
            )
        declared = sum(info.file_size for info in entries)
        if declared > budget.bytes_left:
            raise ZipRejectedError(
                f"the archive expands to {declared:,} bytes; the limit is {limits.max_uncompressed_bytes:,} "
                f"for the archives of one request ({budget.bytes_left:,} left)"
            )
        budget.entries_left -= len(entries)
        return [
            _extract_entry(archive, info, zip_name, folder / f"{prefix}-{index:05d}", limits, budget)
            for index, info in enumerate(entries)
        ]


def _extract_entry(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    zip_name: str,
    target: Path,
    limits: ZipLimits,
    budget: ZipBudget,
) -> Candidate:
    entry_name = info.filename.replace("\\", "/")
    shown = "".join(ch for ch in entry_name if ch.isprintable())[:MAX_NAME_CHARS]
    parent = str(PurePosixPath(entry_name).parent)
    candidate = Candidate(
        name=f"{zip_name}/{shown}",
        original_name=client_file_name(entry_name),
        group=f"{zip_name}\0{parent}",
        path=None,
        size=info.file_size,
    )
    problem = _entry_path_problem(entry_name)
    if problem is None and _is_link(info):
        problem = "links are not accepted"
    if problem is None and info.flag_bits & 0x1:
        problem = "encrypted entries are not accepted"
    if problem is None and info.file_size > limits.max_entry_bytes:
        problem = f"the file is larger than the limit of {limits.max_entry_bytes:,} bytes"
    if problem is not None:
        candidate.rejected = problem
        return candidate
    allowed = min(info.file_size, limits.max_entry_bytes, budget.bytes_left)
    # The temporary copy takes disk space like any stored file: refused (507) when it would eat the reserve.
    budget.reserve_space(allowed)
    written = 0
    try:
        with archive.open(info) as source, open(target, "xb") as sink:
            while chunk := source.read(CHUNK_BYTES):
                written += len(chunk)
                if written > allowed:
                    raise ZipRejectedError("the entry holds more data than its header declares (a zip bomb?)")
                sink.write(chunk)
    except ZipRejectedError as exc:
        candidate.rejected = str(exc)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        # Bad CRC, unsupported compression, truncated data...
        candidate.rejected = f"the entry could not be extracted ({str(exc)[:100] or type(exc).__name__})"
    if candidate.rejected is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        return candidate
    budget.bytes_left -= written
    candidate.path = target
    candidate.size = written
    return candidate


def central_directory(zip_path: Path) -> tuple[int, int] | None:
    """(records, bytes) of the archive's central directory as its end record states them, without reading the
    directory; None when there is no end record (not a zip: opening it says so)."""
    size = zip_path.stat().st_size
    with zip_path.open("rb") as handle:
        tail_bytes = min(size, 22 + 0xFFFF)  # the end record (22 bytes) and a comment of at most 64 KiB
        handle.seek(size - tail_bytes)
        tail = handle.read(tail_bytes)
        at = tail.rfind(_END_OF_DIRECTORY)
        if at < 0 or len(tail) - at < 22:
            return None
        records, directory_bytes = struct.unpack("<HI", tail[at + 10 : at + 16])
        if records != 0xFFFF and directory_bytes != 0xFFFFFFFF:
            return records, directory_bytes
        # ZIP64: the locator just before the end record points at the 64-bit end record.
        locator = tail[at - 20 : at] if at >= 20 else b""
        if not locator.startswith(_ZIP64_LOCATOR):
            return records, directory_bytes
        (offset,) = struct.unpack("<Q", locator[8:16])
        if offset + 56 > size:
            return None
        handle.seek(offset)
        end64 = handle.read(56)
    if not end64.startswith(_ZIP64_END):
        return None
    records64, directory_bytes64 = struct.unpack("<QQ", end64[32:48])
    return int(records64), int(directory_bytes64)


def _check_directory_size(zip_path: Path, limits: ZipLimits, budget: ZipBudget) -> None:
    found = central_directory(zip_path)
    if found is None:
        return
    records, directory_bytes = found
    allowed = 2 * budget.entries_left + EXTRA_RECORDS
    if records > allowed or directory_bytes > allowed * MAX_DIRECTORY_BYTES_PER_RECORD:
        raise ZipRejectedError(
            f"the archive lists {records:,} entries; at most {limits.max_entries} files are accepted "
            f"in the archives of one request ({budget.entries_left} left)"
        )
