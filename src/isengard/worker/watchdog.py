"""The job timeout for plugins that never look at `is_cancelled()`.

The context enforces `ISENGARD_JOB_TIMEOUT_SECONDS` whenever a plugin polls it; a plugin stuck in a call that never
returns (a hung driver, a deadlock, a busy loop without polling) would hold its worker forever. The watchdog, run on
the heartbeat thread, first asks the plugin to stop (reason "timeout"); if the plugin is still running after
`ISENGARD_JOB_TIMEOUT_GRACE_SECONDS`, it fails the job and tells the worker to exit, because a Python thread cannot
be killed and the process can. `isengard up` (or any supervisor) then starts a fresh worker.
"""

from __future__ import annotations

import logging

from isengard.config import Settings
from isengard.worker.runner import CurrentJob, JobRunner

log = logging.getLogger(__name__)


def did_not_stop_message(timeout_seconds: float, grace_seconds: float) -> str:
    return (
        f"timed out after {timeout_seconds:.0f} s and did not stop within {grace_seconds:.0f} s of being asked; "
        "the worker restarted (ISENGARD_JOB_TIMEOUT_SECONDS, ISENGARD_JOB_TIMEOUT_GRACE_SECONDS)"
    )


class JobWatchdog:
    def __init__(self, settings: Settings, runner: JobRunner) -> None:
        self.timeout = settings.job_timeout_seconds
        self.grace = settings.job_timeout_grace_seconds
        self.runner = runner
        self._asked: CurrentJob | None = None

    def check(self) -> bool:
        """One look at the running job; True once it was failed and the process must exit."""
        current = self.runner.current
        ctx = current.ctx if current is not None else None
        if current is None or ctx is None:
            return False
        elapsed = ctx.running_seconds
        if elapsed < self.timeout:
            return False
        if self._asked is not current:
            self._asked = current
            ctx.request_timeout_stop()
            log.warning(
                "job timed out; asked its plugin to stop",
                extra={"job_id": current.job_id, "timeout_s": self.timeout, "grace_s": self.grace},
            )
        if elapsed < self.timeout + self.grace:
            return False
        error = did_not_stop_message(self.timeout, self.grace)
        if not self.runner.abandon(current, error):
            return False  # the plugin returned just now and recorded its own outcome
        log.error("job did not stop after its timeout; failed it, the worker exits", extra={"job_id": current.job_id})
        return True
