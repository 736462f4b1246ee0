"""The scoring side of a run, on a real database: references embedded once and cached by content, "not available"
with the reason when no reference is usable, undecodable files counted, and a broken evaluator that stops scoring
without failing anything."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import pytest
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from isengard.config import Settings
from isengard.db.models import Embedding, Evaluation, Job, SampleScoreRecord
from isengard.db.session import make_engine, make_sessionmaker, session_scope
from isengard.evaluation.scorer import RunScorer, strip_trigger
from isengard.plugins.api import Capability
from isengard.plugins.evaluate.face import FaceEvaluator
from isengard.plugins.evaluate.interface import EvaluatorPlugin, IdentityKind, ImageEmbedding
from isengard.plugins.registry import PluginRegistry
from isengard.worker.scoring import PendingSample, SampleScoring
from tests.image_samples import photo
from tests.portraits import astronaut, augmentations


@pytest.fixture()
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.sqlalchemy_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def registry(*classes: type[EvaluatorPlugin], settings: Settings | None = None) -> PluginRegistry:
    found = PluginRegistry(settings=settings)
    for cls in classes:
        found.add(cls, "test")
    return found


def save(image: Image.Image, path: Path) -> Path:
    image.save(path)
    return path


def test_strip_trigger_removes_the_word_and_its_leftover_punctuation() -> None:
    assert strip_trigger("zxq portrait, smiling", "zxq") == "portrait, smiling"
    assert strip_trigger("a photo of ZXQ, in a red coat", "zxq") == "a photo of, in a red coat"
    assert strip_trigger("zxqa stays", "zxq") == "zxqa stays"
    assert strip_trigger("zxq", "zxq") == ""


def test_face_references_are_embedded_once_and_photos_without_a_face_leave_identity_unavailable(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    faces = [save(image, tmp_path / f"{name}.png") for name, image in augmentations(astronaut()).items()]
    scorer = RunScorer(registry(FaceEvaluator), sessions, faces, "zxq")
    setup = scorer.prepare()
    assert setup.identity_evaluator == "face" and setup.references == len(faces) and setup.unavailable is None
    assert setup.text_evaluator is None and any("no adherence" in note for note in setup.notes)
    with session_scope(sessions) as session:
        cached = session.scalar(select(func.count()).select_from(Embedding))
    assert cached == len(faces)
    # A second run of the same photos embeds nothing new; the cache answers.
    RunScorer(registry(FaceEvaluator), sessions, faces, "zxq").prepare()
    with session_scope(sessions) as session:
        assert session.scalar(select(func.count()).select_from(Embedding)) == cached
    same = scorer.score(faces[0], step=10, index=0, prompt="zxq portrait")
    assert same.subject == "ok" and same.identity is not None and same.identity > FaceEvaluator.same_subject
    blank = save(Image.new("RGB", (128, 128), "gray"), tmp_path / "blank.png")
    nothing = scorer.score(blank, step=10, index=1, prompt="zxq portrait")
    assert nothing.subject == "no_face" and nothing.identity is None
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"garbage")
    assert scorer.score(broken, step=10, index=2, prompt="").subject == "unreadable"

    # No photo shows a face, and there is no whole-image evaluator: not available, with the reason; nothing faked.
    plain = [save(photo(seed, (160, 160)), tmp_path / f"plain{seed}.png") for seed in range(3)]
    no_faces = RunScorer(registry(FaceEvaluator), sessions, [*plain, broken], "zxq")
    setup = no_faces.prepare()
    assert setup.unavailable is not None and setup.skipped == 1
    assert no_faces.score(faces[0], step=10, index=0, prompt="").identity is None


class BrokenEvaluator(EvaluatorPlugin):
    name: ClassVar[str] = "clip"
    identity_kind: ClassVar[IdentityKind] = IdentityKind.IMAGE
    same_subject: ClassVar[float] = 0.8

    def capabilities(self) -> Capability:
        return Capability(available=True)

    def embed_images(self, images: Sequence[Image.Image]) -> list[ImageEmbedding]:
        raise RuntimeError("the model file is corrupt")


def test_a_broken_evaluator_stops_scoring_and_says_why_without_raising(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    with session_scope(sessions) as session:
        session.add(Job(id="j" * 32, kind="training", plugin="flux-lora"))
    references = [save(photo(seed, (96, 96)), tmp_path / f"r{seed}.png") for seed in range(2)]
    lines: list[str] = []
    scoring = SampleScoring(
        "j" * 32,
        sessions,
        lambda: RunScorer(registry(BrokenEvaluator), sessions, references, "zxq"),
        lambda message, level="info": lines.append(message),
    )
    for index in range(3):
        scoring.submit(PendingSample(f"a{index}", references[0], 10, index, "zxq portrait"))
    scoring.close(drain=True)
    assert scoring.failed is not None and "corrupt" in scoring.failed
    assert any("goes on without scores" in line for line in lines)
    with session_scope(sessions) as session:
        assert session.scalar(select(func.count()).select_from(SampleScoreRecord)) == 0
        row = session.get(Evaluation, "j" * 32)
        assert row is not None and row.unavailable is not None and "corrupt" in row.unavailable
