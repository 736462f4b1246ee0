"""Scoring a training run's samples as they are made, on a thread of its own, off the training step's path.

`emit_sample` hands each sample over and returns at once; the thread sets the run's scorer up on the first sample
(references embedded, evaluator chosen) and scores one sample at a time, storing each score as it goes. Scoring can
never fail the run: an evaluator that breaks is logged with the reason, recorded on the run's evaluation, and the
run goes on without scores.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from isengard.evaluation.records import save_failure, save_score, save_setup
from isengard.evaluation.scorer import RunScorer

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_SECONDS = 600.0  # the longest a finished run waits for its last samples to be scored


@dataclass(frozen=True)
class PendingSample:
    artifact_id: str
    path: Path
    step: int
    index: int
    prompt: str


class SampleScoring:
    """One run's scoring thread. `submit` never blocks and never raises; `close` stops it."""

    def __init__(
        self,
        job_id: str,
        sessions: sessionmaker[Session],
        make_scorer: Callable[[], RunScorer],
        log_line: Callable[..., None],
    ) -> None:
        self.job_id = job_id
        self.sessions = sessions
        self._make_scorer = make_scorer
        self._log_line = log_line
        self._queue: queue.Queue[PendingSample | None] = queue.Queue()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"scoring-{job_id[:8]}", daemon=True)
        self._thread.start()
        self.scored = 0
        self.failed: str | None = None

    def submit(self, sample: PendingSample) -> None:
        if self.failed is None and not self._stopped.is_set():
            self._queue.put(sample)

    def close(self, *, drain: bool, timeout: float = DRAIN_TIMEOUT_SECONDS) -> None:
        """Stop the thread: after the samples already handed over when `drain`, else at once."""
        if not drain:
            self._stopped.set()
        self._queue.put(None)
        self._thread.join(timeout if drain else 5.0)
        self._stopped.set()

    def _loop(self) -> None:
        scorer: RunScorer | None = None
        while True:
            item = self._queue.get()
            if item is None or self._stopped.is_set():
                return
            if self.failed is not None:
                continue
            try:
                if scorer is None:
                    scorer = self._make_scorer()
                    setup = scorer.prepare()
                    save_setup(self.sessions, self.job_id, setup)
                    if setup.unavailable:
                        self._log_line(f"identity scores not available: {setup.unavailable}", level="warning")
                    else:
                        self._log_line(f"scoring samples: {setup.choice}")
                score = scorer.score(item.path, step=item.step, index=item.index, prompt=item.prompt)
                save_score(self.sessions, self.job_id, item.artifact_id, item.prompt, score)
                self.scored += 1
            except Exception as exc:  # a broken evaluator never fails the run
                self.failed = f"{type(exc).__name__}: {exc}"
                log.exception("sample scoring stopped", extra={"job_id": self.job_id})
                self._log_line(
                    f"sample scoring stopped; the run goes on without scores: {self.failed}", level="warning"
                )
                try:
                    save_failure(self.sessions, self.job_id, self.failed)
                except Exception:
                    log.exception("could not record why scoring stopped", extra={"job_id": self.job_id})
