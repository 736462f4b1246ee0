"""Where a job keeps resumable checkpoints: `work_dir/checkpoints/step-NNNNNN/`, complete once it holds `COMPLETE`.

This is the convention of `JobContext.latest_checkpoint` (plugins/api.py). One module states it, so the worker that
finds the checkpoint to resume from and the trainers that write and prune checkpoints agree on what counts as one.
`COMPLETE` is written last: a crash in the middle of a save leaves a folder that never counts.
"""

from __future__ import annotations

import re
from pathlib import Path

CHECKPOINTS = "checkpoints"
COMPLETE = "COMPLETE"
_STEP_FOLDER = re.compile(r"^step-(\d+)$")


def checkpoint_dir(work_dir: Path, step: int) -> Path:
    return work_dir / CHECKPOINTS / f"step-{step:06d}"


def complete_checkpoints(work_dir: Path) -> list[Path]:
    """The `step-N` folders of `work_dir` that hold their `COMPLETE` marker, lowest step first."""
    root = work_dir / CHECKPOINTS
    if not root.is_dir():
        return []
    found: list[tuple[int, Path]] = []
    for child in root.iterdir():
        match = _STEP_FOLDER.match(child.name)
        if match and child.is_dir() and (child / COMPLETE).is_file():
            found.append((int(match.group(1)), child))
    return [folder for _, folder in sorted(found)]


def latest_checkpoint_in(work_dir: Path) -> Path | None:
    """The newest complete checkpoint folder, or None."""
    folders = complete_checkpoints(work_dir)
    return folders[-1] if folders else None


def checkpoint_step(folder: Path) -> int | None:
    """The step a `step-N` checkpoint folder was saved at."""
    match = _STEP_FOLDER.match(folder.name)
    return int(match.group(1)) if match else None
