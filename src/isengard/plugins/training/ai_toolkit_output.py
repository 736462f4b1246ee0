"""Reading what ai-toolkit prints and writes while it trains: its progress bar, its loss log, its file names.

The facts this module is built on (ai-toolkit's own behaviour):
- The training bar (tqdm, labelled with the job name) draws a step's loss *before* it advances the counter, and
  after a save or a sample the next counter redraw is suppressed. So a loss drawn while the counter shows n is the
  loss of step n + 1; reading "the loss on the line that first shows count n" mislabels steps.
- With `logging.use_ui_logger`, the steps' losses are in `<output>/loss_log.db` (SQLite in WAL mode; tables `steps`,
  `metric_keys`, `metrics` with keys `loss/loss` and `learning_rate`), committed at the 0-based step index from
  index 1 on: the first step's loss is on the progress bar only.
- Step LoRAs `<name>_{idx:09d}.safetensors` and in-training samples `__{idx:09d}_{i}` carry the 0-based index of the
  last completed step (idx + 1 steps trained); baseline samples are step 0, the final ones the last step.
"""

from __future__ import annotations

import os
import queue
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import IO

# "my_lora:  12%|█▏   | 250/2000 [05:00<35:00,  1.20s/it, lr: 1.0e-04 loss: 4.123e-01]"
_STEP = re.compile(r"\|\s*(\d+)/(\d+)\s*\[")
_LOSS = re.compile(r"loss:\s*([-+0-9.eE]+|nan|inf)")
_LR = re.compile(r"lr:\s*([-+0-9.eE]+)")
_BAR_LABEL = re.compile(r"^\s*(.*?):\s*\d+%\|")


@dataclass(frozen=True)
class ProgressLine:
    step: int
    total: int
    loss: float | None
    lr: float | None


@dataclass(frozen=True)
class StepLoss:
    step: int  # 1-based optimizer step
    loss: float
    lr: float | None


def _number(match: re.Match[str] | None) -> float | None:
    if match is None:
        return None
    try:
        return float(match.group(1))
    except ValueError:
        return None


def parse_progress(line: str, name: str | None = None) -> ProgressLine | None:
    """The count, total, loss and lr of a tqdm bar line, or None for any other line.

    With `name`, only the bar labelled with the job's name counts (not "Caching latents" and other bars)."""
    step = _STEP.search(line)
    if step is None or (name is not None and f"{name}:" not in line[: step.start()]):
        return None
    return ProgressLine(int(step.group(1)), int(step.group(2)), _number(_LOSS.search(line)), _number(_LR.search(line)))


def read_lines(stream: IO[bytes], sink: queue.Queue[str | None]) -> None:
    """tqdm redraws with carriage returns: both CR and LF end a line here."""
    buffer = b""
    while chunk := os.read(stream.fileno(), 4096):
        buffer += chunk
        parts = re.split(rb"[\r\n]", buffer)
        buffer = parts.pop()
        for part in parts:
            if part.strip():
                sink.put(part.decode("utf-8", errors="replace"))
    if buffer.strip():
        sink.put(buffer.decode("utf-8", errors="replace"))
    sink.put(None)


class BarLosses:
    """Per-step losses from the training bar.

    A loss drawn while the counter shows n belongs to step n + 1. The counter's own redraw repeats the previous
    step's loss, so the value that counts is the last one drawn at count n; it is final once the counter moves on
    (or the run ends: `flush`)."""

    def __init__(self) -> None:
        self.count: int | None = None
        self.pending: StepLoss | None = None

    def feed(self, line: ProgressLine) -> StepLoss | None:
        final = None
        if self.count is None or line.step != self.count:
            final = self.flush()
            self.count = line.step
        if line.loss is not None and line.step < line.total:
            self.pending = StepLoss(line.step + 1, line.loss, line.lr)
        return final

    def flush(self) -> StepLoss | None:
        final, self.pending = self.pending, None
        return final


class LossLog:
    """ai-toolkit's `loss_log.db`, read-only, while ai-toolkit writes it."""

    QUERY = (
        "SELECT s.step, loss.value_real, lr.value_real FROM steps AS s "
        "JOIN metrics AS loss ON loss.step = s.step AND loss.key = 'loss/loss' "
        "LEFT JOIN metrics AS lr ON lr.step = s.step AND lr.key = 'learning_rate' "
        "WHERE s.step >= ? AND s.wall_time >= ? ORDER BY s.step"
    )

    def __init__(self, path: Path, since_wall_time: float) -> None:
        self.path = path
        self.since = since_wall_time  # rows of an earlier attempt stay in the file; they were reported then
        self.next_index = 0

    def exists(self) -> bool:
        return self.path.is_file()

    def new_losses(self) -> list[StepLoss]:
        """Losses committed since the last call; nothing (not an error) while the file is busy or not there."""
        if not self.exists():
            return []
        try:
            connection = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0)
            try:
                rows = connection.execute(self.QUERY, (self.next_index, self.since)).fetchall()
            finally:
                connection.close()
        except sqlite3.Error:
            return []
        found = []
        for index, loss, lr in rows:
            if loss is None:
                continue
            found.append(StepLoss(int(index) + 1, float(loss), float(lr) if lr is not None else None))
            self.next_index = int(index) + 1
        return found


class StageLog:
    """What of ai-toolkit's other output goes to the run log: one line per stage, not one per redraw.

    Progress bars of other stages (caching latents, quantizing) are logged once, when a new one starts; the JSON dump
    of the job it prints first becomes one line.
    """

    def __init__(self) -> None:
        self.last_bar: str | None = None
        self.dump_depth = 0
        self.dump_lines = 0

    def feed(self, line: str) -> str | None:
        stripped = line.strip()
        if self.dump_depth or stripped == "{":
            self.dump_depth += stripped.count("{") + stripped.count("[") - stripped.count("}") - stripped.count("]")
            self.dump_lines += 1
            if self.dump_depth > 0:
                return None
            lines, self.dump_depth, self.dump_lines = self.dump_lines, 0, 0
            return f"ai-toolkit printed its configuration ({lines} lines)"
        label = _BAR_LABEL.match(line)
        if label is not None and _STEP.search(line):
            if label.group(1) == self.last_bar:
                return None
            self.last_bar = label.group(1)
            return stripped
        self.last_bar = None
        return stripped


def checkpoint_step(index: int) -> int:
    """Optimizer steps in `<name>_{index:09d}.safetensors`: the index is that of the last completed step."""
    return index + 1


def sample_step(index: int, total: int) -> int:
    """Trained steps behind a sample named with `index`: 0 = baseline, `total` = final, else index + 1."""
    if index <= 0 or index >= total:
        return max(0, min(index, total))
    return index + 1
