"""The recording JobContext the plugin tests run against keeps to the plugin contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from isengard.domain import ArtifactKind
from isengard.plugins.api import JobCancelled, JobContext
from tests.support.recording_context import RecordingContext


def test_it_is_a_job_context(tmp_path: Path) -> None:
    assert isinstance(RecordingContext(tmp_path, tmp_path / "model"), JobContext)


def test_cancel_at_a_training_step(tmp_path: Path) -> None:
    ctx = RecordingContext(tmp_path, tmp_path / "model", cancel_at_step=3)
    ctx.report_progress(2, 10, loss=0.5)
    assert not ctx.is_cancelled()
    ctx.report_progress(3, 10, loss=0.4)
    with pytest.raises(JobCancelled):
        ctx.raise_if_cancelled()
    assert ctx.losses() == {2: 0.5, 3: 0.4}


def test_cancel_after_generating_steps_counts_only_generating_reports(tmp_path: Path) -> None:
    ctx = RecordingContext(tmp_path, tmp_path / "model", cancel_after_generating=2)
    ctx.report_progress(0, 4, stage="loading model")
    ctx.report_progress(1, 4, stage="generating")
    assert not ctx.is_cancelled()
    ctx.report_progress(2, 4, stage="generating")
    assert ctx.is_cancelled()


def test_latest_checkpoint_needs_the_complete_marker(tmp_path: Path) -> None:
    ctx = RecordingContext(tmp_path, tmp_path / "model", work_dir=tmp_path / "jobs" / "j")
    assert ctx.latest_checkpoint() is None
    for step in (5, 10):
        folder = ctx.work_dir / "checkpoints" / f"step-{step:06d}"
        folder.mkdir(parents=True)
        (folder / "COMPLETE").touch()
    (ctx.work_dir / "checkpoints" / "step-000015").mkdir()  # a save cut short
    assert ctx.latest_checkpoint() == ctx.work_dir / "checkpoints" / "step-000010"


def test_artifacts_are_recorded_under_the_data_dir_and_removed_ones_listed(tmp_path: Path) -> None:
    ctx = RecordingContext(tmp_path, tmp_path / "model")
    image = ctx.work_dir / "image.png"
    image.write_bytes(b"png")
    artifact = ctx.save_artifact(image, ArtifactKind.OUTPUT, meta={"seed": 1})
    sample = ctx.work_dir / "sample.png"
    sample.write_bytes(b"png")
    ctx.emit_sample(sample, step=2, prompt="a knight")
    assert (tmp_path / artifact.path) == image
    assert ctx.artifacts == [artifact] and ctx.samples[0].meta == {"index": 0, "prompt": "a knight"}
    ctx.remove_artifact(artifact)
    assert not image.exists() and ctx.removed == [artifact]
    with pytest.raises(AssertionError, match="outside the job's work_dir"):
        outside = tmp_path / "elsewhere.png"
        outside.write_bytes(b"png")
        ctx.save_artifact(outside, ArtifactKind.OUTPUT)
