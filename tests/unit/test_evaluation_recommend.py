"""The recommendation rule and its verdicts on fixed score tables (rising, peaked, overtrained, flat), and the
scores' aggregation on fixed embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from isengard.evaluation.recommend import ADHERENCE_MARGIN, COPYING_MARGIN, recommend
from isengard.evaluation.scores import (
    NO_SUBJECT_IDENTITY,
    CheckpointScores,
    SampleScore,
    aggregate,
    copying_score,
    identity_score,
)
from isengard.plugins.evaluate.interface import cosine


def table(identity: list[float], adherence: list[float] | None = None, copying: list[float] | None = None,
          steps: list[int] | None = None) -> list[CheckpointScores]:  # fmt: skip
    steps = steps or [100 * (i + 1) for i in range(len(identity))]
    adherence = adherence or [0.30] * len(identity)
    copying = copying or [0.50] * len(identity)
    return [
        CheckpointScores(step, 4, 0, 0, i, a, c)
        for step, i, a, c in zip(steps, identity, adherence, copying, strict=True)
    ]


def codes(rec) -> list[str]:
    return [verdict.code for verdict in rec.verdicts]


def test_rising_identity_recommends_the_last_checkpoint_and_says_train_longer() -> None:
    rec = recommend(table([0.40, 0.50, 0.58, 0.65]))
    assert rec.step == 400
    assert codes(rec) == ["train_longer"]
    assert rec.verdicts[0].message == "identity still rising at the last checkpoint — train longer"


def test_peaked_identity_recommends_the_peak() -> None:
    rec = recommend(table([0.40, 0.62, 0.55, 0.50]))
    assert rec.step == 200
    assert codes(rec) == ["peaked"]
    assert "use step 200" in rec.verdicts[0].message


def test_overtrained_run_picks_the_last_checkpoint_within_the_margins() -> None:
    # Identity keeps climbing, but from step 400 adherence drops and copying jumps: the photos are being copied.
    rec = recommend(
        table(
            identity=[0.40, 0.55, 0.62, 0.70, 0.74],
            adherence=[0.31, 0.31, 0.30, 0.26, 0.24],
            copying=[0.50, 0.52, 0.54, 0.66, 0.75],
        )
    )
    assert rec.step == 300
    assert rec.eligible == [100, 200, 300]
    assert codes(rec) == ["overtrained"]
    assert rec.verdicts[0].message == "after step 300 adherence falls and copying rises — overtrained; use step 300"


def test_flat_identity_says_the_lora_may_not_be_learning() -> None:
    rec = recommend(table([0.500, 0.505, 0.498, 0.503]))
    assert codes(rec) == ["flat"]
    assert rec.step == 200  # still the best of what there is


def test_margins_are_relative_to_the_runs_best_and_stated() -> None:
    just_inside = table([0.5, 0.6], adherence=[0.30, 0.30 - ADHERENCE_MARGIN * 0.9], copying=[0.5, 0.5])
    just_outside = table([0.5, 0.6], adherence=[0.30, 0.30 - ADHERENCE_MARGIN * 1.1], copying=[0.5, 0.5])
    copying_outside = table([0.5, 0.6], copying=[0.5, 0.5 + COPYING_MARGIN * 1.1])
    assert recommend(just_inside).step == 200
    assert recommend(just_outside).step == 100
    assert recommend(copying_outside).step == 100
    assert recommend(just_inside).adherence_margin == ADHERENCE_MARGIN


def test_ties_go_to_the_earlier_step_and_order_does_not_matter() -> None:
    rows = table([0.6, 0.6, 0.5])
    assert recommend(list(reversed(rows))).step == recommend(rows).step == 100


def test_no_identity_scores_recommend_nothing_and_say_why() -> None:
    rows = [CheckpointScores(100, 4, 0, 0, None, 0.3, 0.5)]
    rec = recommend(rows)
    assert rec.step is None and codes(rec) == ["not_available"]
    assert recommend([]).step is None


def test_samples_without_a_face_are_reported() -> None:
    rows = [CheckpointScores(100, 4, 0, 0, 0.5, 0.3, 0.5), CheckpointScores(200, 4, 2, 0, 0.3, 0.3, 0.5)]
    rec = recommend(rows)
    assert "no_subject" in codes(rec)
    assert any("2 sample(s)" in verdict.message for verdict in rec.verdicts)


# --- Aggregation on fixed embeddings -------------------------------------------------------------------------------


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_identity_is_the_mean_of_the_best_k_matches() -> None:
    references = [unit(1, 0, 0), unit(0, 1, 0), unit(1, 1, 0), unit(0, 0, 1)]
    sample = unit(1, 0.2, 0)
    similarities = sorted((cosine(sample, r) for r in references), reverse=True)
    assert identity_score(sample, references, cosine, k=2) == pytest.approx(np.mean(similarities[:2]))
    assert identity_score(sample, references, cosine, k=1) == pytest.approx(similarities[0])
    assert identity_score(sample, references[:1], cosine, k=3) == pytest.approx(cosine(sample, references[0]))
    with pytest.raises(ValueError):
        identity_score(sample, [], cosine)


def test_copying_is_the_similarity_to_the_single_nearest_training_image() -> None:
    training = [unit(1, 0, 0), unit(0, 1, 0)]
    assert copying_score(unit(1, 0, 0), training, cosine) == pytest.approx(1.0)
    assert copying_score(unit(1, 1, 0), training, cosine) == pytest.approx(np.sqrt(0.5))


def test_a_checkpoint_counts_samples_without_a_face_instead_of_hiding_them() -> None:
    scores = [
        SampleScore(100, 0, "ok", 0.8, 0.3, 0.5),
        SampleScore(100, 1, "no_face", None, 0.2, 0.4),
        SampleScore(100, 2, "unreadable", None, None, None),
        SampleScore(200, 0, "ok", 0.6, 0.3, 0.5),
    ]
    first, second = aggregate(scores)
    assert (first.step, first.samples, first.no_subject, first.unreadable) == (100, 2, 1, 1)
    assert first.identity == pytest.approx((0.8 + NO_SUBJECT_IDENTITY) / 2)
    assert first.adherence == pytest.approx(0.25)
    assert second.identity == pytest.approx(0.6) and second.no_subject == 0
