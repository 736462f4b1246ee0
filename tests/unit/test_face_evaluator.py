"""The face evaluator with its real model (dlib) on real photographs: the same person under crop, flip, scale and
lighting changes is the same person; two different people are not; no face and several faces are said so."""

from __future__ import annotations

from pathlib import Path

import pytest

from isengard.evaluation import face_boxes
from isengard.plugins.evaluate.face import FaceEvaluator
from isengard.plugins.evaluate.interface import Subject
from tests.portraits import astronaut, augmentations, grace_hopper, side_by_side


@pytest.fixture(scope="module")
def evaluator() -> FaceEvaluator:
    found = FaceEvaluator()
    assert found.capabilities().available, found.capabilities().reason
    return found


@pytest.mark.parametrize("person", [astronaut, grace_hopper])
def test_one_person_under_crop_flip_scale_and_lighting_is_the_same_person(evaluator: FaceEvaluator, person) -> None:
    original = person()
    variants = augmentations(original)
    embedded = evaluator.embed_images([original, *variants.values()])
    subjects = {name: e.subject for name, e in zip(["original", *variants], embedded, strict=True)}
    assert set(subjects.values()) == {Subject.OK}, subjects
    reference = embedded[0].vector
    assert reference is not None
    for name, variant in zip(variants, embedded[1:], strict=True):
        assert variant.vector is not None
        assert evaluator.similarity(reference, variant.vector) >= evaluator.same_subject, name


def test_two_different_people_are_different(evaluator: FaceEvaluator) -> None:
    one, other = evaluator.embed_images([astronaut(), grace_hopper()])
    assert one.vector is not None and other.vector is not None
    apart = evaluator.similarity(one.vector, other.vector)
    assert apart < evaluator.same_subject
    # Far below even the least alike augmentation of one person.
    worst_same = min(
        evaluator.similarity(one.vector, e.vector)
        for e in evaluator.embed_images(list(augmentations(astronaut()).values()))
        if e.vector is not None
    )
    assert apart < worst_same - 0.2


def test_no_face_and_several_faces_are_explicit(evaluator: FaceEvaluator, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("RGB", (256, 256), (120, 130, 140)).save(blank)
    pair = tmp_path / "pair.png"
    side_by_side(astronaut(), grace_hopper()).save(pair)
    nothing, two, unreadable = evaluator.embed_paths([blank, pair, broken])
    assert nothing.subject is Subject.NO_FACE and nothing.vector is None
    assert two.subject is Subject.SEVERAL_FACES and len(two.faces) == 2
    assert unreadable.subject is Subject.UNREADABLE and unreadable.vector is None


def test_face_boxes_are_in_the_image_pixels_largest_first() -> None:
    pair = side_by_side(astronaut(), grace_hopper())
    boxes = face_boxes(pair)
    assert len(boxes) == 2
    assert boxes[0].area >= boxes[1].area
    for box in boxes:
        assert 0 <= box.left < box.right <= pair.width and 0 <= box.top < box.bottom <= pair.height
    # Grace Hopper's face is the larger one and lies in the right-hand photo.
    assert boxes[0].left >= astronaut().width
