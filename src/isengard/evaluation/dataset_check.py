"""The dataset's identity check: photos that are probably someone else, photos with no face or several faces, and
near-copies of one photo, found with the same face evaluator that scores the samples.

"Someone else" is judged against the set's consensus, not against one chosen photo: a photo is flagged when its
median similarity to the other faces is below the evaluator's same-person line. The median keeps one stranger
from dragging everyone else's score down, so with most photos of the character only the stranger falls below.

Near-copies are the look-alike links the upload measured (perceptual hashes of the whole picture): a face
descriptor cannot tell one photo saved twice from two photos of one face (both lie within a few hundredths), so the
check reports those links with the faces' distance rather than guess from faces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import median

from isengard.plugins.evaluate.interface import EvaluatorPlugin, ImageEmbedding, Subject

MIN_FACES_FOR_CONSENSUS = 3  # with two faces, which one is "someone else" cannot be told


@dataclass(frozen=True)
class IdentityFinding:
    image_id: str
    kind: str  # someone_else | no_face | several_faces | near_copy | unreadable
    message: str
    distance: float | None = None  # from the consensus (someone_else) or from its twin (near_copy)
    other_image_id: str | None = None  # near_copy: the photo it copies


def identity_findings(
    evaluator: EvaluatorPlugin,
    images: Sequence[tuple[str, ImageEmbedding]],
    look_alikes: Mapping[str, str] | None = None,
) -> tuple[list[IdentityFinding], int]:
    """Findings over (image id, face embedding) pairs, oldest photo first, and how many faces were compared.
    `look_alikes` maps an image to the earlier photo the upload found it a near-duplicate of."""
    findings: list[IdentityFinding] = []
    faces: list[tuple[str, ImageEmbedding]] = []
    for image_id, embedding in images:
        if embedding.subject is Subject.NO_FACE:
            findings.append(IdentityFinding(image_id, "no_face", "no face found"))
        elif embedding.subject is Subject.UNREADABLE:
            findings.append(IdentityFinding(image_id, "unreadable", "the file could not be decoded"))
        elif embedding.subject is Subject.SEVERAL_FACES:
            findings.append(
                IdentityFinding(
                    image_id, "several_faces", f"{len(embedding.faces)} faces: the LoRA may learn the wrong one"
                )
            )
        elif embedding.vector is not None:
            faces.append((image_id, embedding))
    if len(faces) >= MIN_FACES_FOR_CONSENSUS:
        for image_id, embedding in faces:
            assert embedding.vector is not None
            others = [evaluator.similarity(embedding.vector, other.vector) for oid, other in faces
                      if oid != image_id and other.vector is not None]  # fmt: skip
            agreement = median(others)
            if agreement < evaluator.same_subject:
                findings.append(
                    IdentityFinding(
                        image_id,
                        "someone_else",
                        "probably someone else: this face is far from the other photos' faces",
                        distance=round(1.0 - agreement, 3),
                    )
                )
    vectors = {image_id: embedding.vector for image_id, embedding in images}
    for image_id, original_id in (look_alikes or {}).items():
        if image_id not in vectors or original_id not in vectors:
            continue
        mine, theirs = vectors[image_id], vectors[original_id]
        distance = None if mine is None or theirs is None else round(1.0 - evaluator.similarity(mine, theirs), 3)
        findings.append(
            IdentityFinding(
                image_id,
                "near_copy",
                "a near-copy of another photo: one pose and light counted twice",
                distance=distance,
                other_image_id=original_id,
            )
        )
    return findings, len(faces)
