"""Which checkpoint is the character: the recommendation rule and its plain-language verdicts, as one pure function.

The rule. Among the checkpoints with an identity score, keep those whose adherence is within `adherence_margin` of
the run's best adherence and whose copying is within `copying_margin` of the run's lowest copying (a score that is
missing does not exclude). The recommendation is the kept checkpoint with the best identity; a tie goes to the
earlier step (less trained, more flexible). Identity alone would pick the checkpoint that copies the training photos
best; the margins stop that, while allowing the small loss of adherence every LoRA costs.

The verdicts say what the table shows, in the words a person training a character LoRA uses:
- identity still rising at the last checkpoint: train longer;
- adherence falls and copying rises after some step: overtrained, use the recommended step;
- identity peaks before the end: later checkpoints drift away;
- identity flat across the run: the LoRA may not be learning the character;
- samples with no face, counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from isengard.evaluation.scores import CheckpointScores

ADHERENCE_MARGIN = 0.02  # CLIP-score units: about the spread of one prompt's score over seeds
COPYING_MARGIN = 0.05
RISING = 0.01  # identity gained from the previous checkpoint that still counts as rising
FLAT = 0.02  # an identity range across the run below this is flat


@dataclass(frozen=True)
class Verdict:
    code: str  # train_longer | overtrained | peaked | flat | no_subject | not_available
    message: str
    step: int | None = None


@dataclass(frozen=True)
class Recommendation:
    step: int | None  # None: nothing to recommend (no identity scores)
    verdicts: list[Verdict] = field(default_factory=list)
    eligible: list[int] = field(default_factory=list)  # steps within the margins
    adherence_margin: float = ADHERENCE_MARGIN
    copying_margin: float = COPYING_MARGIN


def _within_margins(row: CheckpointScores, best_adherence: float | None, least_copying: float | None,
                    adherence_margin: float, copying_margin: float) -> bool:  # fmt: skip
    if row.adherence is not None and best_adherence is not None and row.adherence < best_adherence - adherence_margin:
        return False
    return not (row.copying is not None and least_copying is not None and row.copying > least_copying + copying_margin)


def recommend(
    table: Sequence[CheckpointScores],
    *,
    adherence_margin: float = ADHERENCE_MARGIN,
    copying_margin: float = COPYING_MARGIN,
) -> Recommendation:
    """The recommended checkpoint of a run and the verdicts on its scores (`table` in any order)."""
    rows = sorted((row for row in table if row.identity is not None), key=lambda row: row.step)
    if not rows:
        return Recommendation(
            None,
            [Verdict("not_available", "no identity scores: nothing to recommend")],
            adherence_margin=adherence_margin,
            copying_margin=copying_margin,
        )
    adherences = [row.adherence for row in rows if row.adherence is not None]
    copyings = [row.copying for row in rows if row.copying is not None]
    best_adherence = max(adherences) if adherences else None
    least_copying = min(copyings) if copyings else None
    eligible = [
        row for row in rows if _within_margins(row, best_adherence, least_copying, adherence_margin, copying_margin)
    ]
    # Margins are relative to the run's own best, so at least the best-adherence checkpoint is usually eligible;
    # when none is (adherence best where copying is worst), identity alone decides.
    candidates = eligible or rows
    pick = max(candidates, key=lambda row: (row.identity, -row.step))
    verdicts = _verdicts(
        rows, pick, {row.step for row in eligible}, (best_adherence, adherence_margin), (least_copying, copying_margin)
    )
    return Recommendation(
        pick.step,
        verdicts,
        [row.step for row in eligible],
        adherence_margin=adherence_margin,
        copying_margin=copying_margin,
    )


def _verdicts(
    rows: list[CheckpointScores],
    pick: CheckpointScores,
    eligible: set[int],
    adherence: tuple[float | None, float],  # the run's best adherence and its margin
    copying: tuple[float | None, float],  # the run's lowest copying and its margin
) -> list[Verdict]:
    (best_adherence, adherence_margin), (least_copying, copying_margin) = adherence, copying
    verdicts: list[Verdict] = []
    identities = [row.identity for row in rows if row.identity is not None]
    last = rows[-1]
    first_bad = next((row for row in rows if row.step > pick.step and row.step not in eligible), None)
    if len(rows) >= 2 and max(identities) - min(identities) < FLAT:
        verdicts.append(
            Verdict(
                "flat",
                f"identity barely changes across the run ({min(identities):.3f} to {max(identities):.3f}) — the LoRA "
                "may not be learning the character: check the photos, the captions and the learning rate",
            )
        )
    elif len(rows) >= 2 and last.step == pick.step and last.identity is not None and rows[-2].identity is not None \
            and last.identity - rows[-2].identity >= RISING:  # fmt: skip
        verdicts.append(
            Verdict("train_longer", "identity still rising at the last checkpoint — train longer", last.step)
        )
    elif first_bad is not None:
        good_until = max(row.step for row in rows if row.step < first_bad.step)
        adherence_fell = (
            first_bad.adherence is not None
            and best_adherence is not None
            and first_bad.adherence < best_adherence - adherence_margin
        )
        copying_rose = (
            first_bad.copying is not None
            and least_copying is not None
            and first_bad.copying > least_copying + copying_margin
        )
        what = " and ".join(
            part for part, shown in (("adherence falls", adherence_fell), ("copying rises", copying_rose)) if shown
        )
        verdicts.append(
            Verdict(
                "overtrained",
                f"after step {good_until} {what} — overtrained; use step {pick.step}",
                pick.step,
            )
        )
    elif pick.step != last.step:
        verdicts.append(
            Verdict(
                "peaked",
                f"identity peaks at step {pick.step}; later checkpoints drift away from the references — use step "
                f"{pick.step}",
                pick.step,
            )
        )
    no_subject = sum(row.no_subject for row in rows)
    if no_subject:
        verdicts.append(
            Verdict("no_subject", f"{no_subject} sample(s) had no usable face; they count as the lowest identity")
        )
    return verdicts
