"""`bench/gpu_memory.py --dry-run`: every base's full-size transformer and text encoder on the meta device and the
planner's table per base."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from isengard.models.bases import BASES
from isengard.models.profiles import PROFILE_NAMES

ROOT = Path(__file__).resolve().parents[2]


def test_dry_run_builds_every_bases_full_size_models_and_prints_every_profile() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_memory.py"), "--dry-run", "--gpu-memory", "24"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-2000:]  # 1 when a meta-built model and the planner's layout disagree
    out = run.stdout
    assert "flux1-dev transformer (meta device): 11.901 B parameters, planner 11.901 B" in out
    assert "flux1-dev text encoder T5EncoderModel (meta device): 4.762 B parameters, planner 4.762 B" in out
    for spec in BASES.values():
        assert f"== {spec.label} ({spec.name}) ==" in out
        built = re.search(rf"{spec.name} transformer \(meta device\): ([\d.]+) B parameters, planner ([\d.]+) B", out)
        assert built is not None and built.group(1) == built.group(2)
        encoder = spec.family.text_encoders[-1].class_name
        assert f"{spec.name} text encoder {encoder} (meta device)" in out
        for task in ("training", "generation"):
            for resolution in (512, 1024):
                title = f"{spec.name} {task} at {resolution} px"
                section = out.split(title, 1)[1].split("\n\n", 1)[0]
                rows = [line.split()[0] for line in section.splitlines()[2:] if line and not line.startswith("auto:")]
                assert rows == list(PROFILE_NAMES), section
                assert "auto: " in section


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_memory_bench", ROOT / "bench" / "gpu_memory.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("profile", ["bf16", "int8", "nf4", "nf4-offload"])
def test_the_gpu_code_path_runs_each_profile_on_a_tiny_model(profile: str) -> None:
    """What the bench runs on a GPU, on this CPU with a tiny FLUX that torchao can quantize: the trainer's loading
    under the profile, its step and the bare loop (catches a broken call site before device time is spent)."""
    from tests.unit.test_memory_storage import QUANTIZABLE_TINY

    bench = load_bench()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model gains nothing from threads, and loses much on a shared machine
    try:
        result = bench.measure(profile, 64, 1, 4, torch.device("cpu"), QUANTIZABLE_TINY, text_tokens=16)
    finally:
        torch.set_num_threads(threads)
    assert result["seconds"] > 0 and result["bare"] > 0
