"""A stand-in for ai-toolkit's `run.py`, for tests: CI cannot install ai-toolkit (it pins diffusers to a git commit).

It does not train, but everything the adapter can observe is what the real program does (see NOTES on ai-toolkit):
- the config dump, `Caching latents` and `Quantizing` progress bars of the stages before training;
- the training bar on stderr, labelled with the job name, with the new loss drawn *before* the counter advances and
  one counter redraw suppressed after every save or sample;
- `<name>_{idx:09d}.safetensors` where idx is the 0-based index of the last completed step, pruned by ctime to
  `max_step_saves_to_keep`, `optimizer.pt`, the final `<name>.safetensors`; LoRA files in PEFT layout with the
  `transformer.` prefix, float16, no `.alpha` tensors (alpha = rank whatever `linear_alpha` says), ai-toolkit's
  header metadata; they load into the model named by `model.name_or_path`;
- samples `samples/<epoch ms>__{step:09d}_{i}.jpg` written in `samples/.tmp/` then moved, thumbnails in
  `samples/.thumbs/`, baseline samples at step 0 before training, final ones at the last step;
- `loss_log.db` (SQLite in WAL mode, tables steps / metric_keys / metrics, committed at the 0-based step index
  from index 1 on: the first step's loss is on the progress line only)
  when `logging.use_ui_logger` is on;
- resuming from the newest step file when run again.

Test hooks (environment): AITK_DOUBLE_STEP_SECONDS (time per step), AITK_DOUBLE_FAIL (exit 3 at start),
AITK_DOUBLE_PID_FILE (where to write its pid), AITK_DOUBLE_NO_UI_LOGGER (behave like a version without the logger).
"""

from __future__ import annotations

import glob
import json
import os
import sqlite3
import sys
import time
from typing import Any

import numpy as np
import yaml
from PIL import Image
from safetensors import safe_open
from safetensors.numpy import save_file


class Bar:
    """tqdm's redraws as ai-toolkit's ToolkitProgressBar makes them: `\\r` + the whole bar, on stderr."""

    def __init__(self, desc: str, total: int, initial: int = 0) -> None:
        self.desc, self.total, self.n, self.postfix = desc, total, initial, ""
        self.started = time.time()
        self.draw()

    def draw(self) -> None:
        elapsed = max(time.time() - self.started, 1e-6)
        percent = 100 * self.n // max(self.total, 1)
        filled = 10 * self.n // max(self.total, 1)
        rate = f"{self.n / elapsed:5.2f}it/s" if self.n else "?it/s"
        postfix = f", {self.postfix}" if self.postfix else ""
        bar = "█" * filled + " " * (10 - filled)
        sys.stderr.write(f"\r{self.desc}: {percent:3d}%|{bar}| {self.n}/{self.total} [00:00<00:00, {rate}{postfix}]")
        sys.stderr.flush()

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text
        self.draw()

    def update(self, count: int, *, redraw: bool = True) -> None:
        self.n += count
        if redraw:
            self.draw()

    def close(self) -> None:
        self.draw()
        sys.stderr.write("\n")
        sys.stderr.flush()


class UILogger:
    """ai-toolkit's loss_log.db: WAL, buffered writes flushed at most every 0.25 s, future steps pruned on resume."""

    def __init__(self, path: str) -> None:
        self.con = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        self.con.execute("PRAGMA journal_mode=WAL;")
        self.con.execute("CREATE TABLE IF NOT EXISTS steps (step INTEGER PRIMARY KEY, wall_time REAL NOT NULL)")
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS metric_keys (key TEXT PRIMARY KEY, first_seen_step INTEGER, "
            "last_seen_step INTEGER)"
        )
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS metrics (step INTEGER NOT NULL, key TEXT NOT NULL, value_real REAL, "
            "value_text TEXT, PRIMARY KEY (step, key))"
        )
        self.pending: list[tuple[int, float, dict[str, float]]] = []
        self.first = True
        self.last_flush = time.time()

    def commit(self, step: int, values: dict[str, float]) -> None:
        if self.first:
            self.con.execute("DELETE FROM metrics WHERE step > ?", (step,))
            self.con.execute("DELETE FROM steps WHERE step > ?", (step,))
            self.first = False
        self.pending.append((step, time.time(), values))
        if time.time() - self.last_flush >= 0.25:
            self.flush()

    def flush(self) -> None:
        self.con.execute("BEGIN")
        for step, wall_time, values in self.pending:
            self.con.execute(
                "INSERT INTO steps(step, wall_time) VALUES(?, ?) ON CONFLICT(step) DO UPDATE SET wall_time=?",
                (step, wall_time, wall_time),
            )
            for key, value in values.items():
                self.con.execute(
                    "INSERT INTO metric_keys(key, first_seen_step, last_seen_step) VALUES(?, ?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET last_seen_step=MAX(last_seen_step, excluded.last_seen_step)",
                    (key, step, step),
                )
                self.con.execute(
                    "INSERT INTO metrics(step, key, value_real, value_text) VALUES(?, ?, ?, NULL) "
                    "ON CONFLICT(step, key) DO UPDATE SET value_real=excluded.value_real",
                    (step, key, value),
                )
        self.con.execute("COMMIT")
        self.pending.clear()
        self.last_flush = time.time()

    def close(self) -> None:
        self.flush()
        self.con.close()


def lora_shapes(base_model: str, rank: int) -> dict[str, tuple[int, ...]]:
    """lora_A / lora_B shapes of the attention projections of the FLUX transformer at `base_model`."""
    config_path = os.path.join(base_model, "transformer", "config.json")
    with open(config_path, encoding="utf-8") as handle:
        config = json.load(handle)
    inner = int(config["num_attention_heads"]) * int(config["attention_head_dim"])
    shapes: dict[str, tuple[int, ...]] = {}
    modules = [f"transformer_blocks.{b}.attn.{p}" for b in range(config["num_layers"])
               for p in ("to_q", "to_k", "to_v", "to_out.0")]  # fmt: skip
    modules += [f"single_transformer_blocks.{b}.attn.{p}" for b in range(config["num_single_layers"])
                for p in ("to_q", "to_k", "to_v")]  # fmt: skip
    for module in modules:
        shapes[f"transformer.{module}.lora_A.weight"] = (rank, inner)
        shapes[f"transformer.{module}.lora_B.weight"] = (inner, rank)
    return shapes


def save_lora(path: str, name: str, base_model: str, rank: int, steps_done: int) -> None:
    generator = np.random.default_rng(steps_done)
    tensors = {
        key: (generator.standard_normal(shape) * 0.05).astype(np.float16)
        for key, shape in lora_shapes(base_model, rank).items()
    }
    metadata = {
        "format": "pt",
        "name": name,
        "ss_output_name": name,
        "training_info": json.dumps({"step": steps_done, "epoch": 0}),
        "ss_base_model_version": "flux.1",
        "software": json.dumps({"name": "ai-toolkit", "repo": "https://github.com/ostris/ai-toolkit"}),
    }
    save_file(tensors, path, metadata=metadata)


def write_samples(out: str, prompts: list[str], step: int) -> None:
    folder = os.path.join(out, "samples")
    for sub in (".tmp", ".thumbs"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    for index, _prompt in enumerate(prompts):
        name = f"{int(time.time() * 1000)}__{step:09d}_{index}.jpg"
        image = Image.new("RGB", (32, 32), ((step * 37) % 255, (index * 90) % 255, 120))
        temporary = os.path.join(folder, ".tmp", name)
        image.save(temporary, format="JPEG")
        os.replace(temporary, os.path.join(folder, name))
        image.resize((16, 16)).save(os.path.join(folder, ".thumbs", name), format="JPEG")


def step_loss(step: int) -> float:
    """The loss the double reports for optimizer step `step` (1-based): distinct for neighbouring steps."""
    return round(0.5 / step + 0.01 * (step % 3), 6)


def stage_bar(desc: str, total: int, delay: float) -> None:
    bar = Bar(desc, total)
    for _ in range(total):
        time.sleep(delay)
        bar.update(1)
    bar.close()


def main() -> None:
    config_path = sys.argv[1]
    with open(config_path, encoding="utf-8") as handle:
        job: dict[str, Any] = yaml.safe_load(handle)
    name = job["config"]["name"]
    process = job["config"]["process"][0]
    if os.environ.get("AITK_DOUBLE_PID_FILE"):
        with open(os.environ["AITK_DOUBLE_PID_FILE"], "w", encoding="utf-8") as handle:
            handle.write(str(os.getpid()))
    print("Running 1 job", flush=True)
    print(json.dumps(job, indent=4), flush=True)  # ai-toolkit dumps the whole job before it starts
    if os.environ.get("AITK_DOUBLE_FAIL"):
        print("Error: CUDA is required", flush=True)
        sys.exit(3)
    delay = float(os.environ.get("AITK_DOUBLE_STEP_SECONDS", "0"))
    out = os.path.join(process["training_folder"], name)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.yaml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump(job, handle)

    train, save, sample, model = process["train"], process["save"], process["sample"], process["model"]
    steps, rank = int(train["steps"]), int(process["network"]["linear"])
    save_every, sample_every = int(save.get("save_every") or 0), int(sample.get("sample_every") or 0)
    keep = int(save.get("max_step_saves_to_keep", 4))
    print(f"create LoRA network. base dim (rank): {rank}, alpha: {rank}", flush=True)

    dataset = process["datasets"][0]["folder_path"]
    images = [p for p in os.listdir(dataset) if not p.endswith(".txt") and not p.startswith(("_", "."))]
    os.makedirs(os.path.join(dataset, "_latent_cache"), exist_ok=True)
    with open(os.path.join(dataset, ".aitk_size.json"), "w", encoding="utf-8") as handle:
        json.dump({name: [32, 32] for name in images}, handle)
    stage_bar("Caching latents to disk", len(images), delay)
    if model.get("quantize"):
        print("Quantizing transformer", flush=True)
        stage_bar("Quantizing", 4, delay)

    start = 0
    saved = sorted(glob.glob(os.path.join(out, f"{name}_*.safetensors")), key=os.path.getctime)
    if saved:
        print(f"#### IMPORTANT RESUMING FROM {saved[-1]} ####", flush=True)
        with safe_open(saved[-1], framework="numpy") as handle:
            start = int(json.loads(handle.metadata()["training_info"])["step"])
        print(f"Found step {start} in metadata, starting from there", flush=True)
    logger = None
    if process.get("logging", {}).get("use_ui_logger") and not os.environ.get("AITK_DOUBLE_NO_UI_LOGGER"):
        logger = UILogger(os.path.join(out, "loss_log.db"))
    if start <= 1:
        print("Generating baseline samples before training", flush=True)
        write_samples(out, sample["prompts"], start)

    bar = Bar(name, steps, initial=start)
    lr = float(train["lr"])
    for step in range(start, steps):
        time.sleep(delay)
        loss = step_loss(step + 1)
        bar.set_postfix_str(f"lr: {lr:.1e} loss: {loss:.3e}")
        did_something = False
        if step != start and sample_every and step % sample_every == 0:
            write_samples(out, sample["prompts"], step)
            did_something = True
        if step != start and save_every and step % save_every == 0:
            print(f"\nSaving at step {step}", flush=True)
            path = os.path.join(out, f"{name}_{step:09d}.safetensors")
            save_lora(path, name, model["name_or_path"], rank, step + 1)
            with open(os.path.join(out, "optimizer.pt"), "wb") as handle:
                handle.write(b"optimizer state")
            print(f"Saved checkpoint to {path}", flush=True)
            kept = sorted(glob.glob(os.path.join(out, f"{name}_*.safetensors")), key=os.path.getctime)
            for old in kept[:-keep] if len(kept) > keep else []:
                print(f"Removing old save: {old}", flush=True)
                os.remove(old)
            did_something = True
        # Its loss log starts at its step 1 (0-based): the first step's loss is only on the progress line.
        if logger is not None and step >= 1:
            logger.commit(step, {"loss/loss": loss, "learning_rate": lr})
        # After a save or a sample the paused bar swallows one counter redraw.
        bar.update(1, redraw=not did_something)
    bar.close()
    if logger is not None:
        logger.close()
    write_samples(out, sample["prompts"], steps)
    save_lora(os.path.join(out, f"{name}.safetensors"), name, model["name_or_path"], rank, steps)
    print(f"Saved to {os.path.join(out, name + '.safetensors')}", flush=True)


if __name__ == "__main__":
    main()
