"""The ai-toolkit adapter: YAML generation, progress parsing, and runs against a stand-in `run.py`.

ai-toolkit itself needs a CUDA GPU and FLUX.1-dev, so the runs use a small script written here that behaves like
its `run.py` from the outside: reads the YAML job, prints tqdm lines, writes samples and step LoRAs, prunes them.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from isengard.domain import ArtifactKind
from isengard.plugins.api import JobCancelled, PluginError
from isengard.plugins.training.ai_toolkit import AiToolkitTrainer, parse_progress, prepare_dataset
from isengard.plugins.training.ai_toolkit_config import AiToolkitConfig, job_config
from tests.conftest import make_settings
from tests.support.recording_context import RecordingContext
from tests.unit.test_training_flux_lora import make_dataset

FAKE_RUN_PY = textwrap.dedent(
    """
    import os, sys, time
    import yaml

    job = yaml.safe_load(open(sys.argv[1]))
    process = job["config"]["process"][0]
    name = job["config"]["name"]
    out = os.path.join(process["training_folder"], name)
    os.makedirs(os.path.join(out, "samples"), exist_ok=True)
    with open(os.path.join(os.path.dirname(sys.argv[1]), "fake.pid"), "w") as handle:
        handle.write(str(os.getpid()))
    if os.environ.get("FAKE_FAIL"):
        print("Error: CUDA is required", flush=True)
        sys.exit(3)
    steps = process["train"]["steps"]
    every = process["save"]["save_every"]
    keep = process["save"]["max_step_saves_to_keep"]
    sample_every = process["sample"]["sample_every"]
    delay = float(os.environ.get("FAKE_DELAY", "0"))
    print("Loading Flux model", flush=True)
    saved = []
    for step in range(1, steps + 1):
        loss = 0.5 / step
        sys.stdout.write(f"\\r{name}:  {step * 100 // steps}%|##   | {step}/{steps} [00:01<00:02,  2.00it/s, "
                         f"lr: 1.0e-04 loss: {loss:.3e}]")
        sys.stdout.flush()
        time.sleep(delay)
        if step % sample_every == 0:
            for index, _prompt in enumerate(process["sample"]["prompts"]):
                sample = f"{int(time.time() * 1000)}__{step:09d}_{index}.jpg"
                with open(os.path.join(out, "samples", sample), "wb") as f:
                    f.write(b"\\xff\\xd8 fake jpeg")
        if step % every == 0 and step < steps:
            path = os.path.join(out, f"{name}_{step:09d}.safetensors")
            open(path, "wb").write(b"weights")
            saved.append(path)
            while len(saved) > keep:
                os.remove(saved.pop(0))
    open(os.path.join(out, f"{name}.safetensors"), "wb").write(b"final weights")
    print("\\nDone", flush=True)
    """
)


@pytest.fixture()
def toolkit(tmp_path: Path) -> Path:
    folder = tmp_path / "ai-toolkit"
    folder.mkdir()
    (folder / "run.py").write_text(FAKE_RUN_PY)
    return folder


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


def test_job_yaml_follows_ai_toolkit_layout(tmp_path: Path) -> None:
    config = AiToolkitConfig(steps=1500, rank=32, alpha=16, resolutions=[1024, 512], sample_prompts=["[trigger] x"])
    document = job_config(config, name="anna", trigger_word="ann4", dataset_dir=tmp_path / "ds",
                          training_folder=tmp_path / "out", base_model="/models/flux")  # fmt: skip
    text = yaml.safe_dump(document)
    process = yaml.safe_load(text)["config"]["process"][0]
    assert process["type"] == "sd_trainer" and process["trigger_word"] == "ann4"
    assert process["network"] == {"type": "lora", "linear": 32, "linear_alpha": 16.0}
    assert process["train"]["steps"] == 1500 and process["train"]["noise_scheduler"] == "flowmatch"
    assert process["datasets"][0]["resolution"] == [512, 1024]
    assert process["datasets"][0]["folder_path"] == str(tmp_path / "ds")
    assert process["model"] == {"name_or_path": "/models/flux", "is_flux": True, "quantize": True}
    assert process["sample"]["prompts"] == ["[trigger] x"] and process["sample"]["walk_seed"] is False
    with pytest.raises(ValueError):
        AiToolkitConfig(resolutions=[500])


def test_dataset_folder_has_images_and_substituted_captions(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    job = make_dataset(data_dir, count=2)
    count = prepare_dataset(job, data_dir, tmp_path / "ds")
    assert count == 2
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["0000.png", "0000.txt", "0001.png", "0001.txt"]
    assert (tmp_path / "ds" / "0001.txt").read_text() == "a photo of rdfig, view 1"


def test_not_installed_is_unavailable_with_a_reason(tmp_path: Path) -> None:
    assert "ISENGARD_AI_TOOLKIT_PATH" in (AiToolkitTrainer(make_settings(tmp_path)).capabilities().reason or "")
    missing = AiToolkitTrainer(make_settings(tmp_path, ai_toolkit_path=tmp_path / "nope")).capabilities()
    assert not missing.available and "run.py" in (missing.reason or "")


def _run(trainer: AiToolkitTrainer, ctx: RecordingContext, tmp_path: Path, **config: Any) -> dict[str, Any]:
    job = make_dataset(ctx.data_dir, count=2)
    values = {"steps": 12, "checkpoint_every": 3, "keep_checkpoints": 2, "sample_every": 4,
              "sample_prompts": ["[trigger] a", "[trigger] b"], **config}  # fmt: skip
    return trainer.run(ctx, {"plugin": "ai-toolkit", "config": values, "input": job.model_dump()})


def test_run_turns_output_into_progress_samples_and_artifacts(toolkit: Path, tmp_path: Path) -> None:
    trainer = AiToolkitTrainer(make_settings(tmp_path / "s", ai_toolkit_path=toolkit))
    assert trainer.capabilities().available
    data_dir = tmp_path / "data"
    ctx = RecordingContext(data_dir, tmp_path / "model", work_dir=data_dir / "loras" / "char1" / "job1")
    result = _run(trainer, ctx, tmp_path)

    losses = ctx.losses()
    assert sorted(losses) == list(range(1, 13))
    assert losses[4] == pytest.approx(0.125, rel=1e-3)
    assert all(p.lr == pytest.approx(1e-4) for p in ctx.progress)
    assert sorted((a.step, a.meta["index"]) for a in ctx.samples) == [(s, i) for s in (4, 8, 12) for i in (0, 1)]
    assert ctx.samples[0].meta["prompt"] == "[trigger] a"
    lora = [a for a in ctx.artifacts if a.kind == ArtifactKind.LORA]
    assert len(lora) == 1 and lora[0].path == result["lora_path"] and lora[0].meta["trigger_word"] == "rdfig"
    # ai-toolkit kept the last 2 step LoRAs (6 and 9); whatever it deleted is no longer recorded.
    checkpoints = {a.step for a in ctx.artifacts if a.kind == ArtifactKind.CHECKPOINT}
    removed = {a.step for a in ctx.removed}
    assert checkpoints - removed == {6, 9}
    assert any("Loading Flux model" in line.message for line in ctx.logs)


def test_cancel_stops_the_whole_process_group(toolkit: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_DELAY", "0.2")
    trainer = AiToolkitTrainer(make_settings(tmp_path / "s", ai_toolkit_path=toolkit))
    data_dir = tmp_path / "data"
    ctx = RecordingContext(
        data_dir, tmp_path / "model", work_dir=data_dir / "loras" / "char1" / "job1", cancel_at_step=3
    )
    with pytest.raises(JobCancelled):
        _run(trainer, ctx, tmp_path, steps=200)
    pid = int((ctx.work_dir / "fake.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert max(ctx.losses()) < 50


def test_a_failed_run_reports_its_last_output(toolkit: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_FAIL", "1")
    trainer = AiToolkitTrainer(make_settings(tmp_path / "s", ai_toolkit_path=toolkit))
    data_dir = tmp_path / "data"
    ctx = RecordingContext(data_dir, tmp_path / "model", work_dir=data_dir / "loras" / "char1" / "job1")
    with pytest.raises(PluginError, match=r"exit code 3.*CUDA is required"):
        _run(trainer, ctx, tmp_path)
