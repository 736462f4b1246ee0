"""Measured training speed: each finished training run records its seconds per step, with its plugin, resolution
and device, in its job row's result (under "speed"); estimates use the median of the most recent runs.

Kept in the job row rather than a table of its own: a run's speed is a fact about that run, and the rows of
succeeded runs are what is looked through (newest first, a bounded number).
"""

from __future__ import annotations

import statistics
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from isengard.db.models import Job
from isengard.domain import JobKind, JobStatus
from isengard.plugins.api import MeasuredSpeed

RESULT_KEY = "speed"
RECENT_RUNS = 10  # how many of the latest measured runs the median is over
SCANNED_RUNS = 200  # how many of a plugin's latest succeeded runs are looked through


def speed_entry(seconds_per_step: float, resolution: int | None, device: str) -> dict[str, Any]:
    return {"seconds_per_step": round(seconds_per_step, 6), "resolution": resolution, "device": device}


def measured_speed(session: Session, plugin: str, resolution: int | None) -> MeasuredSpeed | None:
    """The median seconds per step of the plugin's latest runs at this resolution, on the latest run's device."""
    results = session.scalars(
        select(Job.result)
        .where(Job.kind == JobKind.TRAINING.value, Job.plugin == plugin, Job.status == JobStatus.SUCCEEDED.value)
        .order_by(Job.finished_at.desc())
        .limit(SCANNED_RUNS)
    ).all()
    runs: list[tuple[str, float]] = []
    for result in results:
        entry = (result or {}).get(RESULT_KEY)
        if not isinstance(entry, dict) or entry.get("resolution") != resolution:
            continue
        seconds, device = entry.get("seconds_per_step"), entry.get("device")
        if isinstance(seconds, int | float) and seconds > 0 and isinstance(device, str):
            runs.append((device, float(seconds)))
    if not runs:
        return None
    device = runs[0][0]
    recent = [seconds for on, seconds in runs if on == device][:RECENT_RUNS]
    return MeasuredSpeed(
        seconds_per_step=statistics.median(recent), runs=len(recent), device=device, resolution=resolution
    )
