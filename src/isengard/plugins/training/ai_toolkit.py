"""The `ai-toolkit` trainer: runs an installed ai-toolkit as a subprocess and turns what it does into job events.

Isengard writes the dataset folder (images + caption .txt files) and the YAML job, starts `python run.py
config.yaml` in the ai-toolkit folder in its own process group, reads its tqdm progress lines (`123/2000 [...,
lr: 1.0e-04 loss: 3.2e-01]`), and watches its output folder: sample images and step LoRAs appear there while it
trains. Cancelling terminates the whole process group. ai-toolkit resumes from its own latest step LoRA when run
again with the same output folder, so a retried job continues.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import yaml
from pydantic import BaseModel

from isengard.captions import substitute_trigger
from isengard.domain import ArtifactKind, TrainingInput
from isengard.plugins.api import Artifact, Capability, JobCancelled, JobContext, PluginError
from isengard.plugins.training.ai_toolkit_config import AiToolkitConfig, job_config
from isengard.plugins.training.interface import TrainingPlugin

log = logging.getLogger(__name__)

# "my_lora:  12%|█▏   | 250/2000 [05:00<35:00,  1.20s/it, lr: 1.0e-04 loss: 4.123e-01]"
_STEP = re.compile(r"\|\s*(\d+)/(\d+)\s*\[")
_LOSS = re.compile(r"loss:\s*([-+0-9.eE]+|nan|inf)")
_LR = re.compile(r"lr:\s*([-+0-9.eE]+)")
# samples/1718000000000__000000250_0.jpg
_SAMPLE = re.compile(r"__(\d+)_(\d+)\.(?:jpg|jpeg|png|webp)$")
POLL_SECONDS = 0.2
STOP_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class ProgressLine:
    step: int
    total: int
    loss: float | None
    lr: float | None


def parse_progress(line: str, name: str | None = None) -> ProgressLine | None:
    """The step, total, loss and lr of ai-toolkit's training bar, or None for any other line.

    With `name`, only the bar labelled with the job's name counts (not "Caching latents" and other bars)."""
    step = _STEP.search(line)
    if step is None or (name is not None and f"{name}:" not in line[: step.start()]):
        return None
    loss = _LOSS.search(line)
    lr = _LR.search(line)

    def number(match: re.Match[str] | None) -> float | None:
        if match is None:
            return None
        try:
            return float(match.group(1))
        except ValueError:
            return None

    return ProgressLine(int(step.group(1)), int(step.group(2)), number(loss), number(lr))


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


def prepare_dataset(job: TrainingInput, data_dir: Path, folder: Path) -> int:
    """ai-toolkit reads a folder of images with same-named .txt captions; links (or copies) them there."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for index, item in enumerate(job.dataset):
        source = data_dir / item.image_path
        target = folder / f"{index:04d}{source.suffix.lower()}"
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
        caption = substitute_trigger(item.caption or "", job.trigger_word).strip() or job.trigger_word
        (folder / f"{index:04d}.txt").write_text(caption, encoding="utf-8")
    return len(job.dataset)


class AiToolkitTrainer(TrainingPlugin):
    name = "ai-toolkit"
    description = "Runs an installed ostris/ai-toolkit (ISENGARD_AI_TOOLKIT_PATH) and follows it live"
    config_model = AiToolkitConfig

    def _folder(self) -> Path | None:
        path = getattr(self.settings, "ai_toolkit_path", None)
        return Path(path).expanduser() if path else None

    def python_for(self, folder: Path) -> str:
        # ai-toolkit's install guide makes a venv inside its folder; use it when it is there.
        for candidate in (folder / "venv" / "bin" / "python", folder / ".venv" / "bin" / "python"):
            if candidate.exists():
                return str(candidate)
        return sys.executable

    def capabilities(self) -> Capability:
        folder = self._folder()
        if folder is None:
            return Capability(
                available=False, reason="ai-toolkit is not installed: set ISENGARD_AI_TOOLKIT_PATH to its folder"
            )
        if not (folder / "run.py").is_file():
            return Capability(available=False, reason=f"no ai-toolkit at {folder} (run.py not found)")
        return Capability(available=True, details={"path": str(folder), "python": self.python_for(folder)})

    def default_config(self) -> dict[str, Any]:
        return AiToolkitConfig().model_dump()

    def train(self, ctx: JobContext, config: BaseModel, job: TrainingInput) -> dict[str, Any]:
        folder = self._folder()
        capability = self.capabilities()
        if folder is None or not capability.available:
            raise PluginError(capability.reason or "ai-toolkit is not available")
        return AiToolkitRun(ctx, cast(AiToolkitConfig, config), job, folder, self.python_for(folder)).run()


class AiToolkitRun:
    """One ai-toolkit subprocess and the bookkeeping of what it wrote."""

    def __init__(self, ctx: JobContext, config: AiToolkitConfig, job: TrainingInput, folder: Path, python: str) -> None:
        self.ctx = ctx
        self.config = config
        self.job = job
        self.folder = folder
        self.python = python
        self.name = re.sub(r"[^a-z0-9_]+", "_", job.character_name.lower()).strip("_") or "lora"
        self.work_dir = Path(ctx.work_dir)
        self.output_dir = self.work_dir / "ai-toolkit" / self.name
        # The local folder: ai-toolkit loads a diffusers folder as well as a hub id, and must not download.
        self.base_model = str(ctx.base_model_path)
        self.seen_samples: set[Path] = set()
        self.checkpoints: dict[Path, Artifact] = {}
        self.last_progress: ProgressLine | None = None
        self.tail: list[str] = []

    def write_job(self) -> Path:
        dataset_dir = self.work_dir / "dataset"
        prepare_dataset(self.job, Path(self.ctx.data_dir), dataset_dir)
        document = job_config(
            self.config,
            name=self.name,
            trigger_word=self.job.trigger_word,
            dataset_dir=dataset_dir,
            training_folder=self.work_dir / "ai-toolkit",
            base_model=self.base_model,
        )
        path = self.work_dir / "ai-toolkit-job.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        return path

    def run(self) -> dict[str, Any]:
        config_path = self.write_job()
        self.ctx.log("starting ai-toolkit", command=f"{self.python} run.py {config_path}")
        process = subprocess.Popen(
            [self.python, "run.py", str(config_path)],
            cwd=self.folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: cancel stops it and every child it started
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        lines: queue.Queue[str | None] = queue.Queue()
        assert process.stdout is not None
        reader = threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True)
        reader.start()
        try:
            self.follow(process, lines)
        except BaseException:
            stop_process_group(process)
            raise
        finally:
            reader.join(timeout=5)
        return self.finish(process.returncode)

    def follow(self, process: subprocess.Popen[bytes], lines: queue.Queue[str | None]) -> None:
        finished_output = False
        while not finished_output or process.poll() is None:
            if self.ctx.is_cancelled():
                stop_process_group(process)
                self.ctx.raise_if_cancelled()
                raise JobCancelled("cancelled")
            try:
                line = lines.get(timeout=POLL_SECONDS)
            except queue.Empty:
                line = ""
            if line is None:
                finished_output = True
            elif line:
                self.handle_line(line)
            self.scan_outputs()
        process.wait()

    def handle_line(self, line: str) -> None:
        self.tail = [*self.tail[-40:], line]
        progress = parse_progress(line, self.name)
        if progress is None:
            self.ctx.log(line[:1000], source="ai-toolkit")
            return
        previous = self.last_progress
        # tqdm repeats a step while it refreshes; report each step once (or when the loss first appears).
        if previous is None or progress.step != previous.step or (progress.loss is not None and previous.loss is None):
            self.ctx.report_progress(
                progress.step, progress.total, loss=progress.loss, lr=progress.lr, stage="training"
            )
        self.last_progress = progress

    def scan_outputs(self, *, finished: bool = False) -> None:
        samples = self.output_dir / "samples"
        if samples.is_dir():
            for path in sorted(samples.iterdir()):
                match = _SAMPLE.search(path.name)
                if match is None or path in self.seen_samples or not (finished or _settled(path)):
                    continue
                self.seen_samples.add(path)
                index = int(match.group(2))
                prompts = self.config.sample_prompts
                prompt = prompts[index] if index < len(prompts) else ""
                self.ctx.emit_sample(path, step=int(match.group(1)), index=index, prompt=prompt)
        step_file = re.compile(rf"^{re.escape(self.name)}_(\d+)\.safetensors$")
        present = set()
        if self.output_dir.is_dir():
            for path in sorted(self.output_dir.glob("*.safetensors")):
                match = step_file.match(path.name)
                if match is None:
                    continue
                present.add(path)
                if path not in self.checkpoints and (finished or _settled(path)):
                    step = int(match.group(1))
                    self.checkpoints[path] = self.ctx.save_artifact(
                        path, ArtifactKind.CHECKPOINT, step=step, meta=self.meta(step)
                    )
        # ai-toolkit deletes step LoRAs beyond max_step_saves_to_keep: drop their records too.
        for path in [p for p in self.checkpoints if p not in present]:
            self.ctx.remove_artifact(self.checkpoints.pop(path))

    def meta(self, step: int) -> dict[str, Any]:
        return {
            "rank": self.config.rank,
            "alpha": self.config.alpha,
            "base_model": self.base_model,
            "trigger_word": self.job.trigger_word,
            "step": step,
            "trainer": "ai-toolkit",
            "resolution": max(self.config.resolutions),
            "dataset_size": len(self.job.dataset),
        }

    def finish(self, returncode: int | None) -> dict[str, Any]:
        self.scan_outputs(finished=True)
        final = self.output_dir / f"{self.name}.safetensors"
        if returncode != 0 or not final.exists():
            last = " | ".join(self.tail[-5:]) or "no output"
            raise PluginError(f"ai-toolkit stopped with exit code {returncode}: {last[-800:]}")
        steps = self.config.steps
        artifact = self.ctx.save_artifact(final, ArtifactKind.LORA, step=steps, meta=self.meta(steps))
        return {
            "lora_artifact_id": artifact.id,
            "lora_path": artifact.path,
            "steps": steps,
            "final_loss": self.last_progress.loss if self.last_progress else None,
        }


def _settled(path: Path) -> bool:
    """A file still being written may be half there: wait until it has not changed for a moment."""
    try:
        return time.time() - path.stat().st_mtime > 0.3
    except FileNotFoundError:
        return False


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole group (ai-toolkit starts workers), then SIGKILL what is left after a grace period."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass
