"""The data tree: where every file lives, paths that cannot escape it, and atomic writes.

File names on disk are always made by the server (ids), never taken from users.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

SUBDIRS = ("uploads", "thumbnails", "datasets", "loras", "outputs", "jobs", "models", "redis", "tmp", "imports")


class UnsafePathError(ValueError):
    pass


class DataTree:
    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()

    def ensure(self) -> None:
        for sub in SUBDIRS:
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    # Well-known folders ---------------------------------------------------------------------------------------
    def uploads(self, character_id: str) -> Path:
        return self.safe_join("uploads", character_id)

    def thumbnails(self, character_id: str) -> Path:
        return self.safe_join("thumbnails", character_id)

    def loras(self, character_id: str) -> Path:
        return self.safe_join("loras", character_id)

    def outputs(self, character_id: str) -> Path:
        return self.safe_join("outputs", character_id)

    def job_dir(self, job_id: str) -> Path:
        return self.safe_join("jobs", job_id)

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    # Safety -----------------------------------------------------------------------------------------------------
    def safe_join(self, *parts: str) -> Path:
        """Join parts under the root; refuse anything that would land outside it."""
        # Checked where it really leads (a link may point outside), but returned as the tree names it: a path that
        # goes through a link then differs from its resolved form, which is how `regular_file` refuses to serve it.
        named = Path(os.path.normpath(self.root.joinpath(*parts)))
        for candidate in (named, named.resolve()):
            if candidate != self.root and self.root not in candidate.parents:
                raise UnsafePathError(f"path escapes the data tree: {'/'.join(parts)}")
        return named

    def resolve_relative(self, relative: str) -> Path:
        """Turn a stored relative path back into an absolute one inside the tree."""
        if Path(relative).is_absolute():
            raise UnsafePathError("stored paths are relative to the data tree")
        return self.safe_join(relative)

    def stored_file(self, relative: str | None) -> Path | None:
        """The file a row's stored relative path names; None when the path is empty, would leave the tree, or
        names no file (one removed by hand, or never written), or is reached through a link (see regular_file)."""
        if not relative or Path(relative).is_absolute():
            return None
        return self.regular_file(self.root / relative)

    def regular_file(self, path: Path) -> Path | None:
        """`path` if it is a regular file inside the tree whose resolved path is the path itself; None otherwise.

        Isengard never makes links in the data tree, so a file reached through one (a planted symlink to a file,
        or to a folder, even one inside the tree) is not served: only what was stored where its row says."""
        expected = Path(os.path.abspath(path))
        try:
            resolved = expected.resolve(strict=True)
            mode = os.lstat(resolved).st_mode
        except (OSError, RuntimeError):  # missing, or a link loop
            return None
        if resolved != expected or self.root not in resolved.parents or not stat.S_ISREG(mode):
            return None
        return resolved

    def relative(self, path: Path) -> str:
        resolved = path.resolve()
        if self.root not in resolved.parents:
            raise UnsafePathError(f"{path} is outside the data tree")
        return resolved.relative_to(self.root).as_posix()


def atomic_write_bytes(target: Path, data: bytes) -> None:
    """Write to a temporary file beside the target, fsync, then rename: readers never see half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path to write (e.g. by a library's save function); rename it to `target` on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=f".part{target.suffix}")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
