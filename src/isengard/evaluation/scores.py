"""From embeddings to scores: one sample's identity, adherence and copying, and a checkpoint's aggregate.

Pure functions over vectors and a similarity (the evaluator's own); nothing here loads a model or a row.

- identity: the mean of the sample's best-k similarities to the references. Best-k rather than the mean over every
  reference because a character's photos differ in angle and light: a good sample resembles a few of them closely,
  not all of them equally. Best-k rather than the single best so one lucky match does not decide.
- adherence: the sample against its prompt's text (trigger word removed: the word means nothing to the text model).
- copying: the similarity to the single nearest training image: high means the LoRA reproduces a photo.
- a checkpoint's identity counts samples with no usable subject ("no face") as the floor score 0, so a checkpoint
  that stops drawing faces scores lower instead of having its failures dropped; how many there were is reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from statistics import fmean

import numpy as np

Vector = np.ndarray
Similarity = Callable[[Vector, Vector], float]

BEST_K = 3
NO_FACE = "no_face"  # the subject of a sample in which the identity evaluator found no face
NO_SUBJECT_IDENTITY = 0.0  # what a sample with no face counts for in its checkpoint's identity


def identity_score(sample: Vector, references: Sequence[Vector], similarity: Similarity, k: int = BEST_K) -> float:
    """Mean of the `k` highest similarities of `sample` to the references (all of them when fewer)."""
    if not references:
        raise ValueError("identity needs at least one reference")
    ranked = sorted((similarity(sample, reference) for reference in references), reverse=True)
    return fmean(ranked[: max(1, k)])


def copying_score(sample: Vector, training: Sequence[Vector], similarity: Similarity) -> float:
    """Similarity to the nearest training image."""
    if not training:
        raise ValueError("copying needs at least one training image")
    return max(similarity(sample, image) for image in training)


@dataclass(frozen=True)
class SampleScore:
    """One sample's scores; None where the score could not be taken (the reason is the sample's `subject`)."""

    step: int
    index: int
    # The identity evaluator's Subject value (ok, no_face, several_faces, unreadable), or "unscored" when identity
    # could not be scored at all (no usable reference).
    subject: str
    identity: float | None
    adherence: float | None
    copying: float | None


@dataclass(frozen=True)
class CheckpointScores:
    step: int
    samples: int  # samples scored at this step (unreadable ones not included)
    no_subject: int  # samples in which the identity evaluator found no usable subject (no face)
    unreadable: int
    identity: float | None
    adherence: float | None
    copying: float | None


def _mean(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return fmean(present) if present else None


def aggregate(scores: Iterable[SampleScore]) -> list[CheckpointScores]:
    """Per-step aggregates, in step order."""
    by_step: dict[int, list[SampleScore]] = {}
    for score in scores:
        by_step.setdefault(score.step, []).append(score)
    table = []
    for step in sorted(by_step):
        rows = by_step[step]
        readable = [row for row in rows if row.subject != "unreadable"]
        no_subject = [row for row in readable if row.subject == NO_FACE]
        identities = [row.identity for row in readable if row.identity is not None]
        counted = identities + [NO_SUBJECT_IDENTITY] * len(no_subject) if identities or no_subject else []
        table.append(
            CheckpointScores(
                step=step,
                samples=len(readable),
                no_subject=len(no_subject),
                unreadable=len(rows) - len(readable),
                identity=fmean(counted) if counted else None,
                adherence=_mean(row.adherence for row in readable),
                copying=_mean(row.copying for row in readable),
            )
        )
    return table
