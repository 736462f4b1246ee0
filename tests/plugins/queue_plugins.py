"""Plugins with controllable workloads for the job system's tests (load with ISENGARD_PLUGIN_MODULES).

They are real plugins run by the real worker: they report progress, write checkpoints by the convention of
`JobContext.latest_checkpoint`, resume from them, and leave a trace of every step they ran in `trace.log` so a
test can prove that no step ran twice at the same time and that a resumed run started where the last one stopped.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, ClassVar

from isengard.domain import ArtifactKind, PluginKind
from isengard.plugins.api import Capability, JobContext, Plugin, PluginError, atomic_write_bytes

TRACE = "trace.log"


def trace(ctx: JobContext, line: str) -> None:
    with (ctx.work_dir / TRACE).open("a", encoding="utf-8") as handle:
        handle.write(f"{line} pid={os.getpid()} attempt={ctx.attempt} t={time.time():.3f}\n")


def write_checkpoint(ctx: JobContext, step: int) -> Path:
    folder = ctx.work_dir / "checkpoints" / f"step-{step:06d}"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / "lora.safetensors", f"weights at step {step}".encode())
    atomic_write_bytes(folder / "state.json", json.dumps({"step": step}).encode())
    # Written last: a crash before this line leaves a folder latest_checkpoint() ignores.
    atomic_write_bytes(folder / "COMPLETE", b"")
    return folder


class StepsTrainer(Plugin):
    """Runs `steps` steps of `sleep` seconds, checkpointing every `checkpoint_every` steps, resuming from them."""

    name: ClassVar[str] = "test-steps"
    kind: ClassVar[PluginKind] = PluginKind.TRAINING
    description: ClassVar[str] = "a training plugin with controllable steps for tests"

    def capabilities(self) -> Capability:
        return Capability(available=True)

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        steps = int(payload.get("steps", 10))
        sleep = float(payload.get("sleep", 0.01))
        every = int(payload.get("checkpoint_every", 0))
        start = 0
        checkpoint = ctx.latest_checkpoint()
        if checkpoint is not None:
            start = int(json.loads((checkpoint / "state.json").read_text())["step"])
            ctx.log(f"resuming from checkpoint at step {start}", step=start)
        trace(ctx, f"start from={start}")
        for step in range(start + 1, steps + 1):
            ctx.raise_if_cancelled()
            time.sleep(sleep)
            trace(ctx, f"step {step}")
            ctx.report_progress(step, steps, loss=1.0 / step, lr=1e-3, stage="train")
            if every and step % every == 0 and step < steps:
                folder = write_checkpoint(ctx, step)
                ctx.save_artifact(folder / "lora.safetensors", ArtifactKind.CHECKPOINT, name=f"step-{step}", step=step)
        final = ctx.work_dir / "lora.safetensors"
        atomic_write_bytes(final, b"final weights")
        ctx.save_artifact(final, ArtifactKind.LORA, step=steps, meta={"rank": 4})
        trace(ctx, "done")
        return {"steps": steps, "resumed_from": start, "attempt": ctx.attempt}


class CrashingTrainer(Plugin):
    """Kills its own worker process, the way a CUDA fault or the OOM killer would."""

    name: ClassVar[str] = "test-crash"
    kind: ClassVar[PluginKind] = PluginKind.TRAINING

    def capabilities(self) -> Capability:
        return Capability(available=True)

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        trace(ctx, "crash")
        time.sleep(float(payload.get("sleep", 0.0)))
        os._exit(int(payload.get("code", 137)))


class HangingTrainer(Plugin):
    """Never returns and never polls `is_cancelled()`: a plugin stuck in a call that does not come back."""

    name: ClassVar[str] = "test-hang"
    kind: ClassVar[PluginKind] = PluginKind.TRAINING

    def capabilities(self) -> Capability:
        return Capability(available=True)

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        trace(ctx, "hang")
        while True:
            time.sleep(3600)


class ThreadsProbe(Plugin):
    """Reports how many CPU threads torch uses inside the worker."""

    name: ClassVar[str] = "test-threads"
    kind: ClassVar[PluginKind] = PluginKind.TRAINING

    def capabilities(self) -> Capability:
        return Capability(available=True)

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        import torch

        return {"threads": torch.get_num_threads()}


class PickyTrainer(Plugin):
    """Runs only on workers started with ISENGARD_TEST_PICKY=1, as a GPU plugin runs only where there is a GPU."""

    name: ClassVar[str] = "test-picky"
    kind: ClassVar[PluginKind] = PluginKind.TRAINING

    def capabilities(self) -> Capability:
        if os.environ.get("ISENGARD_TEST_PICKY") == "1":
            return Capability(available=True)
        return Capability(available=False, reason="needs the picky hardware this machine lacks")

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        trace(ctx, "picky")
        return {"ran_on": os.getpid()}


class FailingTrainer(Plugin):
    name: ClassVar[str] = "test-fail"
    kind: ClassVar[PluginKind] = PluginKind.TRAINING

    def capabilities(self) -> Capability:
        return Capability(available=True)

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        raise PluginError(str(payload.get("message", "the dataset is empty")))


class NoopTrainer(Plugin):
    """Returns at once: measures the queue, not the work."""

    name: ClassVar[str] = "test-noop"
    kind: ClassVar[PluginKind] = PluginKind.TRAINING

    def capabilities(self) -> Capability:
        return Capability(available=True)

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        return {}


class EchoGenerator(Plugin):
    """Writes one small output file per requested image and registers it as a gallery output."""

    name: ClassVar[str] = "test-echo"
    kind: ClassVar[PluginKind] = PluginKind.IMAGE

    def capabilities(self) -> Capability:
        return Capability(available=True)

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        count = int(payload.get("count", 1))
        prompt = str(payload.get("prompt", ""))
        for index in range(count):
            ctx.raise_if_cancelled()
            target = ctx.work_dir / f"image-{index}.txt"
            atomic_write_bytes(target, f"{prompt} #{index}".encode())
            meta = {"prompt": prompt, "seed": index, "width": 64, "height": 64, "steps": 1, "guidance": 1.0}
            ctx.save_artifact(target, ArtifactKind.OUTPUT, meta=meta)
            ctx.report_progress(index + 1, count)
        return {"images": count}


ISENGARD_PLUGINS = [
    StepsTrainer,
    CrashingTrainer,
    HangingTrainer,
    ThreadsProbe,
    PickyTrainer,
    FailingTrainer,
    NoopTrainer,
    EchoGenerator,
]
