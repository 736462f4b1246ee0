"""The ai-toolkit adapter: YAML generation, progress parsing, and runs against a stand-in `run.py`.

ai-toolkit itself cannot be installed in CI, so the runs use `tests/support/ai_toolkit_run.py`, which behaves like
its `run.py` from the outside (redraw order of the progress bar, file names, samples, loss_log.db, resume).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from safetensors import safe_open

from isengard.domain import ArtifactKind
from isengard.plugins.api import Artifact, JobCancelled, PluginError
from isengard.plugins.training.ai_toolkit import (
    AiToolkitRun,
    AiToolkitSettings,
    AiToolkitTrainer,
    parse_progress,
    prepare_dataset,
)
from isengard.plugins.training.ai_toolkit_config import AiToolkitConfig, job_config
from tests.conftest import make_settings
from tests.support.ai_toolkit_run import step_loss
from tests.support.recording_context import RecordingContext
from tests.unit.test_training_flux_lora import make_dataset

DOUBLE = Path(__file__).resolve().parents[1] / "support" / "ai_toolkit_run.py"
TINY_TRANSFORMER = {"num_attention_heads": 2, "attention_head_dim": 16, "num_layers": 2, "num_single_layers": 2}


@pytest.fixture()
def toolkit(tmp_path: Path) -> Path:
    folder = tmp_path / "ai-toolkit"
    folder.mkdir()
    shutil.copyfile(DOUBLE, folder / "run.py")
    return folder


@pytest.fixture()
def model_dir(tmp_path: Path) -> Path:
    """Just enough of a FLUX folder for the stand-in to shape its LoRA files."""
    folder = tmp_path / "model"
    (folder / "transformer").mkdir(parents=True)
    (folder / "transformer" / "config.json").write_text(json.dumps(TINY_TRANSFORMER))
    return folder


def _trainer(tmp_path: Path, toolkit: Path) -> AiToolkitTrainer:
    # The stand-in needs only the test interpreter; a real install has its own .venv.
    return AiToolkitTrainer(make_settings(tmp_path / "s"), AiToolkitSettings(path=toolkit, python=sys.executable))


def _context(tmp_path: Path, model_dir: Path, **options: Any) -> RecordingContext:
    data_dir = tmp_path / "data"
    return RecordingContext(data_dir, model_dir, work_dir=data_dir / "loras" / "char1" / "job1", **options)


def _run(trainer: AiToolkitTrainer, ctx: RecordingContext, **config: Any) -> dict[str, Any]:
    job = make_dataset(ctx.data_dir, count=2)
    values = {"steps": 12, "checkpoint_every": 3, "keep_checkpoints": 2, "sample_every": 4,
              "sample_prompts": ["[trigger] a", "[trigger] b"], "resolutions": [128], **config}  # fmt: skip
    return trainer.run(ctx, {"plugin": "ai-toolkit", "config": values, "input": job.model_dump()})


def test_progress_lines_are_parsed() -> None:
    line = "my_lora:  12%|█▏        | 250/2000 [05:00<35:00,  1.20s/it, lr: 1.0e-04 loss: 4.123e-01]"
    progress = parse_progress(line)
    assert progress is not None
    assert (progress.step, progress.total, progress.loss, progress.lr) == (250, 2000, pytest.approx(0.4123), 1e-4)
    bare = parse_progress("my_lora:   0%|          | 0/2000 [00:00<?, ?it/s]")
    assert bare is not None and bare.step == 0 and bare.loss is None
    assert parse_progress("Loading transformer") is None
    caching = "Caching latents: 100%|####| 12/12 [00:03<00:00]"
    assert parse_progress(caching) is not None and parse_progress(caching, "my_lora") is None
    assert parse_progress(line, "my_lora") == progress


def test_job_yaml_writes_what_ai_toolkit_acts_on(tmp_path: Path) -> None:
    config = AiToolkitConfig(steps=1500, rank=32, resolutions=[1024, 512], sample_prompts=["[trigger] x"],
                             low_vram=True, sample_every=0)  # fmt: skip
    document = job_config(config, name="anna", trigger_word="ann4", dataset_dir=tmp_path / "ds",
                          training_folder=tmp_path / "out", base_model="/models/flux")  # fmt: skip
    process = yaml.safe_load(yaml.safe_dump(document))["config"]["process"][0]
    assert process["type"] == "sd_trainer" and process["trigger_word"] == "ann4"
    # ai-toolkit trains FLUX with alpha = rank: the file says so instead of asking for something else.
    assert process["network"] == {"type": "lora", "linear": 32, "linear_alpha": 32}
    assert "device" not in process  # ai-toolkit runs on accelerate's device whatever this says
    assert process["train"]["steps"] == 1500 and process["train"]["noise_scheduler"] == "flowmatch"
    assert process["train"]["optimizer"] == "adamw8bit" and process["train"]["gradient_checkpointing"] is True
    assert process["datasets"][0]["resolution"] == [512, 1024]
    assert process["datasets"][0]["folder_path"] == str(tmp_path / "ds")
    assert process["model"] == {"name_or_path": "/models/flux", "is_flux": True, "quantize": True,
                                "qtype": "qfloat8", "low_vram": True}  # fmt: skip
    assert process["logging"]["use_ui_logger"] is True
    assert process["sample"]["prompts"] == ["[trigger] x"] and process["sample"]["walk_seed"] is False
    assert process["sample"]["sample_every"] == 0  # falsy: ai-toolkit then samples only before and after
    with pytest.raises(ValueError):
        AiToolkitConfig(resolutions=[500])
    with pytest.raises(ValidationError, match="alpha"):
        AiToolkitConfig.model_validate({"alpha": 8})  # a knob ai-toolkit ignores for FLUX is not offered


def test_the_form_names_the_real_low_vram_options() -> None:
    properties = AiToolkitConfig.model_json_schema()["properties"]
    assert "model.quantize" in properties["quantize"]["description"]
    assert "qfloat8" in properties["quantize"]["description"]
    assert "model.low_vram" in properties["low_vram"]["description"]
    assert "train.gradient_checkpointing" in properties["gradient_checkpointing"]["description"]
    assert properties["optimizer"]["default"] == "adamw8bit"
    assert "bitsandbytes" in properties["optimizer"]["description"]
    assert "alpha" not in properties and "device" not in properties
    # The shared sample settings come after the trainer's own knobs in the form.
    names = list(properties)
    assert names.index("caption_dropout") < names.index("sample_every")


def test_dataset_folder_has_images_and_substituted_captions(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    job = make_dataset(data_dir, count=2)
    count = prepare_dataset(job, data_dir, tmp_path / "ds")
    assert count == 2
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["0000.png", "0000.txt", "0001.png", "0001.txt"]
    assert (tmp_path / "ds" / "0001.txt").read_text() == "a photo of rdfig, view 1"


def test_not_installed_is_unavailable_with_a_reason(tmp_path: Path) -> None:
    assert "ISENGARD_AI_TOOLKIT_PATH" in (AiToolkitTrainer(None, AiToolkitSettings()).capabilities().reason or "")
    missing = AiToolkitTrainer(None, AiToolkitSettings(path=tmp_path / "nope")).capabilities()
    assert not missing.available and "run.py" in (missing.reason or "")


def _fake_python(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_its_own_virtual_environment_runs_it_never_isengards(toolkit: Path, tmp_path: Path) -> None:
    settings = AiToolkitSettings(path=toolkit)
    bare = AiToolkitTrainer(None, settings).capabilities()
    # Without a venv of its own, ai-toolkit is not run with Isengard's interpreter: the reason says what is missing.
    assert not bare.available
    assert ".venv" in (bare.reason or "") and "ISENGARD_AI_TOOLKIT_PYTHON" in (bare.reason or "")
    venv = _fake_python(toolkit / "venv" / "bin" / "python")
    assert AiToolkitTrainer(None, settings).capabilities().details["python"] == str(venv)
    dot_venv = _fake_python(toolkit / ".venv" / "bin" / "python")  # what its installer and UI use: preferred
    assert AiToolkitTrainer(None, settings).capabilities().details["python"] == str(dot_venv)
    elsewhere = _fake_python(tmp_path / "envs" / "aitk" / "bin" / "python")
    chosen = AiToolkitSettings(path=toolkit, python=elsewhere)
    assert AiToolkitTrainer(None, chosen).capabilities().details["python"] == str(elsewhere)
    wrong = AiToolkitSettings(path=toolkit, python=tmp_path / "none" / "python")
    refused = AiToolkitTrainer(None, wrong).capabilities()
    assert not refused.available and str(tmp_path / "none" / "python") in (refused.reason or "")


def _expected_samples(steps: int, every: int) -> list[int]:
    """Baseline at 0, then after step index i (i % every == 0, i > 0: i + 1 steps trained), final at the end."""
    return [0, *(i + 1 for i in range(1, steps) if i % every == 0), steps]


@pytest.mark.parametrize("ui_logger", [True, False], ids=["loss-log-db", "progress-bar-only"])
def test_each_step_gets_its_own_loss(
    toolkit: Path, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ui_logger: bool
) -> None:
    if not ui_logger:
        monkeypatch.setenv("AITK_DOUBLE_NO_UI_LOGGER", "1")
    ctx = _context(tmp_path, model_dir)
    result = _run(_trainer(tmp_path, toolkit), ctx)
    # Every step's own loss, saves and samples notwithstanding (they suppress a redraw of the bar).
    # (The bar shows four significant digits.)
    assert ctx.losses() == {step: pytest.approx(step_loss(step), rel=1e-3) for step in range(1, 13)}
    assert result["final_loss"] == pytest.approx(step_loss(12), rel=1e-3)
    assert all(p.lr == pytest.approx(1e-4) for p in ctx.progress if p.stage == "training")


def test_run_turns_output_into_samples_and_artifacts(toolkit: Path, model_dir: Path, tmp_path: Path) -> None:
    ctx = _context(tmp_path, model_dir)
    result = _run(_trainer(tmp_path, toolkit), ctx, rank=4)
    # Baseline samples are step 0; a sample named with step index i shows i + 1 trained steps.
    assert sorted((a.step, a.meta["index"]) for a in ctx.samples) == [
        (s, i) for s in _expected_samples(12, 4) for i in (0, 1)
    ]
    assert ctx.samples[0].meta["prompt"] == "[trigger] a"
    lora = [a for a in ctx.artifacts if a.kind == ArtifactKind.LORA]
    assert len(lora) == 1 and lora[0].path == result["lora_path"] and lora[0].meta["trigger_word"] == "rdfig"
    assert lora[0].step == 12
    # `<name>_000000003` holds 4 optimizer steps; ai-toolkit kept the last 2 (after 7 and 10 steps).
    checkpoints = [a for a in ctx.artifacts if a.kind == ArtifactKind.CHECKPOINT]
    assert {a.step for a in checkpoints} - {a.step for a in ctx.removed} == {7, 10}
    for artifact in [*checkpoints, *lora]:
        assert artifact.meta["step"] == artifact.step
        # Alpha is what the file means: ai-toolkit wrote no .alpha tensors, so alpha = rank.
        assert artifact.meta["rank"] == 4 and artifact.meta["alpha"] == 4
    with safe_open(str(ctx.data_dir / lora[0].path), framework="numpy") as handle:
        assert not any(key.endswith(".alpha") for key in handle.keys())  # noqa: SIM118
        assert json.loads(handle.metadata()["training_info"])["step"] == 12


def test_the_run_log_has_one_line_per_stage(toolkit: Path, model_dir: Path, tmp_path: Path) -> None:
    ctx = _context(tmp_path, model_dir)
    _run(_trainer(tmp_path, toolkit), ctx)
    messages = [line.message for line in ctx.logs]
    assert sum("Caching latents" in m for m in messages) == 1
    assert sum(m.startswith("Quantizing:") or "Quantizing: " in m for m in messages) == 1
    assert not any("lr: " in m for m in messages)  # the training bar is progress, not log lines
    # The configuration dump is one line, not one per line of JSON.
    assert not any(m.strip() in {"{", "}", "},"} for m in messages)
    assert sum("configuration" in m for m in messages) == 1
    assert any(m.startswith("Saving at step 3") for m in messages)
    assert len(messages) < 40


class PruningContext(RecordingContext):
    """ai-toolkit deletes the oldest step file while Isengard registers it (its max_step_saves_to_keep pruning runs
    whenever it saves): here it happens at exactly that moment, for the first checkpoint."""

    pruned: Path | None = None

    def save_artifact(self, path: Path, kind: ArtifactKind, **options: Any) -> Artifact:
        if kind == ArtifactKind.CHECKPOINT and self.pruned is None:
            self.pruned = path
            path.unlink()
        return super().save_artifact(path, kind, **options)


def test_a_checkpoint_pruned_while_it_is_registered_is_skipped(toolkit: Path, model_dir: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ctx = PruningContext(data_dir, model_dir, work_dir=data_dir / "loras" / "char1" / "job1")
    result = _run(_trainer(tmp_path, toolkit), ctx)
    assert ctx.pruned is not None
    registered = {a.name for a in ctx.artifacts if a.kind == ArtifactKind.CHECKPOINT}
    assert ctx.pruned.name not in registered
    assert registered, "the later checkpoints are still registered"
    assert result["lora_path"]


def test_a_retried_attempt_does_not_re_emit_what_the_first_recorded(
    toolkit: Path, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Slow enough that the step-3 checkpoint has settled (written 0.3 s ago, see ai_toolkit._settled) by the cancel
    # at step 8 on a loaded machine: a younger file may still be half-written and is left for the next scan.
    monkeypatch.setenv("AITK_DOUBLE_STEP_SECONDS", "0.12")
    trainer = _trainer(tmp_path, toolkit)
    ctx = _context(tmp_path, model_dir, cancel_at_step=8)
    with pytest.raises(JobCancelled):
        _run(trainer, ctx, steps=20)
    first_samples, first_artifacts = list(ctx.samples), list(ctx.artifacts)
    assert first_samples and first_artifacts
    # The worker runs the job again with the same recorded history; ai-toolkit resumes from its newest step file.
    ctx.cancel_at_step, ctx.attempt = None, 2
    _run(trainer, ctx, steps=20)
    sample_paths = [a.path for a in ctx.samples]
    assert len(sample_paths) == len(set(sample_paths))
    artifact_paths = [a.path for a in ctx.artifacts]
    assert len(artifact_paths) == len(set(artifact_paths))
    assert any("RESUMING" in line.message for line in ctx.logs)
    assert max(a.step or 0 for a in ctx.samples) == 20


def test_a_run_stops_the_ai_toolkit_an_earlier_attempt_left_running(
    toolkit: Path, model_dir: Path, tmp_path: Path
) -> None:
    ctx = _context(tmp_path, model_dir)
    trainer = _trainer(tmp_path, toolkit)
    # What a worker killed with -9 leaves behind: ai-toolkit still running this job's config, in its own session.
    config = AiToolkitConfig(steps=500, resolutions=[128])
    config_path = AiToolkitRun(ctx, config, make_dataset(ctx.data_dir, 2), toolkit, sys.executable).write_job()
    orphan = subprocess.Popen(
        [sys.executable, "run.py", str(config_path)], cwd=toolkit, start_new_session=True,
        env={**os.environ, "AITK_DOUBLE_STEP_SECONDS": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    (ctx.work_dir / "ai-toolkit.pid").write_text(str(orphan.pid))
    try:
        _run(trainer, ctx)
        assert orphan.wait(timeout=5) is not None
        assert any("left running" in line.message for line in ctx.logs)
        assert not (ctx.work_dir / "ai-toolkit.pid").exists()  # the finished run leaves no pid behind
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()


def test_cancel_stops_the_whole_process_group(
    toolkit: Path, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AITK_DOUBLE_STEP_SECONDS", "0.2")
    pid_file = tmp_path / "double.pid"
    monkeypatch.setenv("AITK_DOUBLE_PID_FILE", str(pid_file))
    ctx = _context(tmp_path, model_dir, cancel_at_step=3)
    with pytest.raises(JobCancelled):
        _run(_trainer(tmp_path, toolkit), ctx, steps=200)
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)
    assert max(ctx.losses()) < 50


def test_a_failed_run_reports_its_last_output(
    toolkit: Path, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AITK_DOUBLE_FAIL", "1")
    ctx = _context(tmp_path, model_dir)
    with pytest.raises(PluginError, match=r"exit code 3.*CUDA is required"):
        _run(_trainer(tmp_path, toolkit), ctx)


def test_the_stand_in_draws_and_names_as_ai_toolkit_does(toolkit: Path, model_dir: Path, tmp_path: Path) -> None:
    """The facts the adapter is built on, asserted on the stand-in itself (see NOTES on ai-toolkit)."""
    ctx = _context(tmp_path, model_dir)
    config = AiToolkitConfig(steps=7, checkpoint_every=3, keep_checkpoints=5, sample_every=0, resolutions=[128])
    config_path = AiToolkitRun(ctx, config, make_dataset(ctx.data_dir, 2), toolkit, sys.executable).write_job()
    done = subprocess.run([sys.executable, "run.py", str(config_path)], cwd=toolkit, capture_output=True, check=True)
    bar = [parse_progress(part, "red_figure") for part in done.stderr.decode().replace("\n", "\r").split("\r")]
    drawn = [(line.step, line.loss) for line in bar if line is not None]
    loss = {step: float(f"{step_loss(step):.3e}") for step in range(1, 8)}
    # The loss is drawn before the counter advances; after the saves at step indices 3 and 6 the counter's own
    # redraw is missing, so the next thing drawn is the following step's loss.
    assert drawn == [
        (0, None), (0, loss[1]), (1, loss[1]), (1, loss[2]), (2, loss[2]), (2, loss[3]), (3, loss[3]),
        (3, loss[4]), (4, loss[5]), (5, loss[5]), (5, loss[6]), (6, loss[6]), (6, loss[7]), (7, loss[7]),
    ]  # fmt: skip
    out = ctx.work_dir / "ai-toolkit" / "red_figure"
    for index, held in (("000000003", 4), ("000000006", 7), (None, 7)):
        name = f"red_figure_{index}.safetensors" if index else "red_figure.safetensors"
        with safe_open(str(out / name), framework="numpy") as handle:
            assert json.loads(handle.metadata()["training_info"])["step"] == held
    with sqlite3.connect(out / "loss_log.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        rows = db.execute("SELECT step, value_real FROM metrics WHERE key = 'loss/loss' ORDER BY step").fetchall()
    # From index 1 on, as ai-toolkit's log does: the first step's loss is on the bar only.
    assert rows == [(index, pytest.approx(step_loss(index + 1))) for index in range(1, 7)]
    assert sorted({int(p.name.split("__")[1][:9]) for p in (out / "samples").glob("*.jpg")}) == [0, 7]


def test_the_base_is_passed_through_as_arch_and_a_base_the_checkout_lacks_is_refused(
    toolkit: Path, tmp_path: Path
) -> None:
    def model(base: str) -> dict[str, Any]:
        document = job_config(AiToolkitConfig(base=base), name="a", trigger_word="t", dataset_dir=tmp_path,
                              training_folder=tmp_path, base_model="/m")  # fmt: skip
        section: dict[str, Any] = document["config"]["process"][0]["model"]
        return section

    assert model("flux1-krea-dev")["is_flux"] is True and "arch" not in model("flux1-krea-dev")
    assert model("flux2-klein-9b")["arch"] == "flux2_klein_9b" and "is_flux" not in model("flux2-klein-9b")

    trainer = _trainer(tmp_path, toolkit)
    assert trainer.validate_config({"base": "flux1-krea-dev"}).base == "flux1-krea-dev"
    # The stand-in's checkout has no model registry: an older ai-toolkit, which knows no klein arch.
    with pytest.raises(PluginError, match=r"cannot train flux2-klein-4b.*'flux2_klein_4b'"):
        trainer.validate_config({"base": "flux2-klein-4b"})
    models = toolkit / "toolkit" / "models"
    models.mkdir(parents=True)
    (models / "registry.py").write_text('ARCHS = ["flux", "flux2_klein_4b"]\n')
    assert trainer.validate_config({"base": "flux2-klein-4b"}).base == "flux2-klein-4b"
    with pytest.raises(ValidationError, match="unknown base"):
        trainer.validate_config({"base": "sdxl"})
