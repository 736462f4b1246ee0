"""The `ai-toolkit` trainer: runs an installed ai-toolkit as a subprocess and turns what it does into job events.

Isengard writes the dataset folder (images + caption .txt files) and the YAML job, starts `python run.py
config.yaml` in the ai-toolkit folder in its own process group with ai-toolkit's own interpreter, follows its output
(per-step losses from its `loss_log.db`, or from its progress bar when there is none) and watches its output folder:
sample images and step LoRAs appear there while it trains. Cancelling terminates the whole process group.
ai-toolkit resumes from its own latest step LoRA when run again with the same output folder, so a retried job
continues; what the first attempt already recorded is not announced again.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, cast

import yaml
from pydantic import BaseModel

from isengard.domain import ArtifactKind, TrainingInput
from isengard.plugins.api import (
    Artifact,
    Capability,
    JobCancelled,
    JobContext,
    PluginError,
    PluginSettings,
    SettingsConfigDict,
    get_base,
    substitute_trigger,
)
from isengard.plugins.training.ai_toolkit_config import AiToolkitConfig, job_config
from isengard.plugins.training.ai_toolkit_output import (
    BarLosses,
    LossLog,
    ProgressLine,
    StageLog,
    StepLoss,
    checkpoint_step,
    parse_progress,
    read_lines,
    sample_step,
)
from isengard.plugins.training.ai_toolkit_process import stop_leftover, stop_process_group
from isengard.plugins.training.interface import TrainingPlugin

log = logging.getLogger(__name__)

# samples/1718000000000__000000250_0.jpg
_SAMPLE = re.compile(r"__(\d+)_(\d+)\.(?:jpg|jpeg|png|webp)$")
POLL_SECONDS = 0.2
PID_FILE = "ai-toolkit.pid"
__all__ = ["AiToolkitTrainer", "parse_progress", "prepare_dataset"]


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


class AiToolkitSettings(PluginSettings):
    """ISENGARD_AI_TOOLKIT_PATH: the ai-toolkit checkout; ISENGARD_AI_TOOLKIT_PYTHON: the Python that runs it when
    it is neither <path>/.venv nor <path>/venv."""

    model_config = SettingsConfigDict(env_prefix="ISENGARD_AI_TOOLKIT_")

    path: Path | None = None
    python: Path | None = None


class AiToolkitTrainer(TrainingPlugin):
    name = "ai-toolkit"
    description = "Runs an installed ostris/ai-toolkit (ISENGARD_AI_TOOLKIT_PATH) and follows it live"
    config_model = AiToolkitConfig

    settings_model = AiToolkitSettings
    config: AiToolkitSettings

    def _folder(self) -> Path | None:
        path = self.config.path
        return Path(path).expanduser() if path else None

    def python_for(self, folder: Path) -> tuple[Path | None, str]:
        """ai-toolkit's interpreter and, when there is none, what is missing.

        An interpreter set in ISENGARD_AI_TOOLKIT_PYTHON wins; otherwise `<folder>/.venv` (what ai-toolkit's
        installer and UI make), then `<folder>/venv`. Never Isengard's own: ai-toolkit pins its own diffusers."""
        configured = self.config.python
        if configured:
            path = Path(configured).expanduser()
            if path.is_file() and os.access(path, os.X_OK):
                return path, ""
            return None, f"ISENGARD_AI_TOOLKIT_PYTHON is {path}, which is not an executable file"
        for venv in (".venv", "venv"):
            candidate = folder / venv / "bin" / "python"
            if candidate.exists():
                return candidate, ""
        return None, (
            f"no Python environment for ai-toolkit: neither {folder / '.venv'} nor {folder / 'venv'} exists; "
            "install ai-toolkit's requirements there or set ISENGARD_AI_TOOLKIT_PYTHON to its interpreter"
        )

    def capabilities(self) -> Capability:
        folder = self._folder()
        if folder is None:
            return Capability(
                available=False, reason="ai-toolkit is not installed: set ISENGARD_AI_TOOLKIT_PATH to its folder"
            )
        if not (folder / "run.py").is_file():
            return Capability(available=False, reason=f"no ai-toolkit at {folder} (run.py not found)")
        python, missing = self.python_for(folder)
        if python is None:
            return Capability(available=False, reason=missing)
        return Capability(available=True, details={"path": str(folder), "python": str(python)})

    def default_config(self) -> dict[str, Any]:
        return AiToolkitConfig().model_dump()

    def validate_config(self, config: dict[str, Any]) -> AiToolkitConfig:
        parsed = AiToolkitConfig.model_validate(config)
        problem = self.base_problem(parsed.base)
        if problem:
            raise PluginError(problem)
        return parsed

    def base_problem(self, base: str) -> str | None:
        """Why this ai-toolkit cannot train `base` (None: it can). A base other than FLUX.1 is an `arch` of its
        model registry, which older checkouts lack: the arch's name must appear in its source."""
        arch = get_base(base).ai_toolkit_arch
        folder = self._folder()
        if arch is None or folder is None or not (folder / "run.py").is_file():
            return None  # FLUX.1 (every ai-toolkit), or no ai-toolkit at all: capabilities say so
        for name in ("toolkit", "extensions_built_in"):
            for source in (folder / name).rglob("*.py"):
                try:
                    if arch in source.read_text(encoding="utf-8", errors="ignore"):
                        return None
                except OSError:
                    continue
        return (
            f"ai-toolkit cannot train {base}: the checkout at {folder} does not know the arch '{arch}' (it came in "
            "January 2026); update it (git pull, then install its requirements) or train with flux-lora"
        )

    def train(self, ctx: JobContext, config: BaseModel, job: TrainingInput) -> dict[str, Any]:
        folder = self._folder()
        capability = self.capabilities()
        if folder is None or not capability.available:
            raise PluginError(capability.reason or "ai-toolkit is not available")
        python = str(capability.details["python"])
        return AiToolkitRun(ctx, cast(AiToolkitConfig, config), job, folder, python).run()


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
        self.base_model = str(ctx.base_model_dir(config.base))
        # What earlier attempts recorded is known already: a retry announces only new files.
        self.seen_samples: set[Path] = set()
        self.checkpoints: dict[Path, Artifact] = {}
        data_dir = Path(ctx.data_dir)
        for artifact in ctx.recorded_artifacts():
            if artifact.kind == ArtifactKind.SAMPLE:
                self.seen_samples.add(data_dir / artifact.path)
            elif artifact.kind == ArtifactKind.CHECKPOINT:
                self.checkpoints[data_dir / artifact.path] = artifact
        self.bar_losses = BarLosses()
        self.loss_log = LossLog(self.output_dir / "loss_log.db", since_wall_time=time.time())
        self.loss_source: str | None = None  # "db" or "bar", fixed at the first loss the bar shows
        self.first_bar_step: int | None = None  # the first step this process trained, as the bar drew it
        self.reported_step = 0
        self.last_db_read = 0.0
        self.last_loss: float | None = None
        self.bar: ProgressLine | None = None
        self.stage_log = StageLog()
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
        pid_file = self.work_dir / PID_FILE
        # An earlier attempt's ai-toolkit outlives a worker killed with -9 (it has its own session): stop it before
        # a second one writes into the same folder.
        if stop_leftover(pid_file, config_path):
            self.ctx.log("stopped the ai-toolkit an earlier attempt had left running", level="warning")
        self.ctx.log("starting ai-toolkit", command=f"{self.python} run.py {config_path}")
        process = subprocess.Popen(
            [self.python, "run.py", str(config_path)],
            cwd=self.folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: cancel stops it and every child it started
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        pid_file.write_text(str(process.pid), encoding="utf-8")
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
            pid_file.unlink(missing_ok=True)
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
            self.read_loss_log()
            self.scan_outputs()
        process.wait()

    def handle_line(self, line: str) -> None:
        self.tail = [*self.tail[-40:], line]
        progress = parse_progress(line, self.name)
        if progress is None:
            message = self.stage_log.feed(line)
            if message:
                self.ctx.log(message[:1000], source="ai-toolkit")
            return
        self.bar = progress  # the bar keeps telling that it runs, whichever source the losses come from
        if self.loss_source is None and progress.loss is not None:
            self.loss_source = "db" if self.loss_log.exists() else "bar"
        step = self.bar_losses.feed(progress)
        if step is None:
            return
        if self.first_bar_step is None:
            self.first_bar_step = step.step
        # The loss log starts one step in (at ai-toolkit's index 1): its first step's loss is the bar's alone.
        if self.loss_source == "bar" or step.step == self.first_bar_step:
            self.report(step)

    def read_loss_log(self, *, now: bool = False) -> None:
        # At most a few reads a second: ai-toolkit itself flushes its log only every quarter second.
        if self.loss_source != "db" or (not now and time.monotonic() - self.last_db_read < POLL_SECONDS):
            return
        if self.first_bar_step is None and not now:
            return  # the first step's loss is the bar's alone: the log's later steps wait for it, so none is lost
        self.last_db_read = time.monotonic()
        for step in self.loss_log.new_losses():
            self.report(step)

    def report(self, step: StepLoss) -> None:
        if step.step <= self.reported_step or step.step > self.config.steps:
            return
        self.reported_step = step.step
        self.last_loss = step.loss
        self.ctx.report_progress(step.step, self.config.steps, loss=step.loss, lr=step.lr, stage="training")

    def scan_outputs(self, *, finished: bool = False) -> None:
        samples = self.output_dir / "samples"
        if samples.is_dir():
            # ai-toolkit writes samples in samples/.tmp/ and moves them here: a file here is complete.
            for path in sorted(samples.iterdir()):
                match = _SAMPLE.search(path.name)
                if match is None or path in self.seen_samples or not path.is_file():
                    continue
                self.seen_samples.add(path)
                index = int(match.group(2))
                prompts = self.config.sample_prompts
                prompt = prompts[index] if index < len(prompts) else ""
                step = sample_step(int(match.group(1)), self.config.steps)
                self.ctx.emit_sample(path, step=step, index=index, prompt=prompt)
        step_file = re.compile(rf"^{re.escape(self.name)}_(\d+)\.safetensors$")
        present = set()
        if self.output_dir.is_dir():
            for path in sorted(self.output_dir.glob("*.safetensors")):
                match = step_file.match(path.name)
                if match is None:
                    continue
                if path not in self.checkpoints and (finished or _settled(path)):
                    artifact = self.register_checkpoint(path, checkpoint_step(int(match.group(1))))
                    if artifact is None:
                        continue
                    self.checkpoints[path] = artifact
                present.add(path)
        # ai-toolkit deletes step LoRAs beyond max_step_saves_to_keep: drop their records too.
        for path in [p for p in self.checkpoints if p not in present]:
            self.ctx.remove_artifact(self.checkpoints.pop(path))

    def register_checkpoint(self, path: Path, step: int) -> Artifact | None:
        """The step file as a checkpoint artifact; None when ai-toolkit deleted it meanwhile (its pruning to
        max_step_saves_to_keep runs whenever it saves, so a listed file can be gone a moment later)."""
        try:
            return self.ctx.save_artifact(path, ArtifactKind.CHECKPOINT, step=step, meta=self.meta(step))
        except (PluginError, FileNotFoundError):
            if path.exists():
                raise
            log.info("a checkpoint was pruned by ai-toolkit before it was registered", extra={"file": path.name})
            return None

    def meta(self, step: int) -> dict[str, Any]:
        return {
            "rank": self.config.rank,
            # ai-toolkit writes no alpha tensors for FLUX: loaders then scale by alpha = rank, and so it trained.
            "alpha": float(self.config.rank),
            "base_model": self.base_model,
            "base": self.config.base,
            "trigger_word": self.job.trigger_word,
            "step": step,
            "trainer": "ai-toolkit",
            "resolution": max(self.config.resolutions),
            "dataset_size": len(self.job.dataset),
        }

    def finish(self, returncode: int | None) -> dict[str, Any]:
        self.read_loss_log(now=True)  # ai-toolkit flushed its last rows when it closed the log
        pending = self.bar_losses.flush() if self.loss_source == "bar" else None
        if pending is not None:
            self.report(pending)
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
            "final_loss": self.last_loss,
        }


def _settled(path: Path) -> bool:
    """A file still being written may be half there: wait until it has not changed for a moment."""
    try:
        return time.time() - path.stat().st_mtime > 0.3
    except FileNotFoundError:
        return False
