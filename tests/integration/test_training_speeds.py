"""Run-time estimates rest on measured speed: the median of the latest runs of the plugin at the run's resolution,
on the device of the latest run; the stated default only before any such run."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from isengard.config import Settings
from isengard.db.models import Job
from isengard.db.session import make_engine, make_sessionmaker
from isengard.domain import JobKind, JobStatus, TrainingInput, utcnow
from isengard.jobs.speeds import RECENT_RUNS, measured_speed, speed_entry
from isengard.plugins.api import MeasuredSpeed
from isengard.plugins.training.flux_lora import FluxLoraTrainer


def _run(session: Session, age_s: int, seconds: float, *, resolution: int = 512, device: str = "GPU A",
         plugin: str = "flux-lora", status: JobStatus = JobStatus.SUCCEEDED) -> None:  # fmt: skip
    session.add(
        Job(
            kind=JobKind.TRAINING.value,
            status=status.value,
            plugin=plugin,
            result={"speed": speed_entry(seconds, resolution, device)},
            finished_at=utcnow() - timedelta(seconds=age_s),
        )
    )


def test_the_estimate_takes_the_median_of_recent_runs_on_the_latest_device(settings: Settings) -> None:
    sessions = make_sessionmaker(make_engine(settings.sqlalchemy_url))
    with sessions() as session:
        assert measured_speed(session, "flux-lora", 512) is None
        for age, seconds in enumerate([2.0, 1.0, 9.0]):
            _run(session, age + 10, seconds)
        _run(session, 1, 0.5, device="GPU B", resolution=1024)  # another resolution: not counted at 512
        _run(session, 2, 0.1, plugin="ai-toolkit")  # another plugin
        _run(session, 3, 0.1, status=JobStatus.FAILED)  # a failed run measured nothing final
        _run(session, 500, 50.0, device="GPU C")  # an older run on another device
        session.commit()
        measured = measured_speed(session, "flux-lora", 512)
        assert measured is not None
        assert (measured.seconds_per_step, measured.runs, measured.device) == (2.0, 3, "GPU A")
        # Only the latest runs count: a slower stretch long ago does not weigh on today's estimate.
        for age in range(RECENT_RUNS):
            _run(session, age + 5, 3.0)
        session.commit()
        assert measured_speed(session, "flux-lora", 512).seconds_per_step == 3.0  # type: ignore[union-attr]
        # The device of the latest run decides which runs count.
        _run(session, 0, 7.0, device="GPU C")
        session.commit()
        latest = measured_speed(session, "flux-lora", 512)
        assert latest is not None and (latest.device, latest.seconds_per_step, latest.runs) == ("GPU C", 28.5, 2)


def test_the_plugin_states_its_default_and_uses_a_measurement_when_there_is_one(settings: Settings) -> None:
    plugin = FluxLoraTrainer(settings)
    config = plugin.validate_config({"steps": 100, "resolutions": [512], "sample_every": 0, "sample_prompts": []})
    dataset = TrainingInput(character_id="c", character_name="C", trigger_word="zxq", dataset=[])
    default = plugin.estimate(config, dataset, None)
    assert "no run measured yet" in default.basis
    measured = MeasuredSpeed(seconds_per_step=0.25, runs=4, device="GPU A", resolution=512)
    estimate = plugin.estimate(config, dataset, measured)
    assert estimate.seconds_per_step == 0.25 and "4 recent runs at 512 px on GPU A" in estimate.basis
    assert estimate.estimated_seconds >= 100 * 0.25
