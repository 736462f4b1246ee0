"""The dataset identity check of one character: the face evaluator's findings on its photos.

Kept apart from the quick dataset report (which reads rows only): the first check of a photo runs the face model
on it (about half a second a photo on a CPU); its embedding is then cached by content, so later checks are fast.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from isengard.api.schemas.evaluation import DatasetIdentityReport, IdentityFindingOut
from isengard.api.services.dataset.characters import get_character
from isengard.api.services.dataset.images import dataset_query
from isengard.api.services.dataset.report import image_ref
from isengard.api.state import Services
from isengard.dataset.image_files import original_path
from isengard.evaluation.dataset_check import identity_findings
from isengard.evaluation.references import embed_cached
from isengard.evaluation.scorer import FACE, available_evaluator


def identity_report(services: Services, db: Session, character_id: str) -> DatasetIdentityReport:
    get_character(db, character_id)
    images = list(db.scalars(dataset_query(character_id)))
    evaluator, reason = available_evaluator(services.plugins, FACE)
    if evaluator is None:
        return DatasetIdentityReport(character_id=character_id, status="not_available", reason=reason, findings=[])
    if not images:
        return DatasetIdentityReport(
            character_id=character_id, status="not_available", reason="no images yet", findings=[]
        )
    embeddings = embed_cached(services.sessions, evaluator, [original_path(services.data, i) for i in images])
    look_alikes = {image.id: image.near_duplicate_of for image in images if image.near_duplicate_of}
    findings, faces = identity_findings(
        evaluator, [(i.id, e) for i, e in zip(images, embeddings, strict=True)], look_alikes
    )
    by_id = {image.id: image for image in images}
    return DatasetIdentityReport(
        character_id=character_id,
        status="available",
        evaluator=evaluator.name,
        faces_compared=faces,
        same_person_distance=round(1.0 - evaluator.same_subject, 3),
        findings=[
            IdentityFindingOut(
                image=image_ref(by_id[f.image_id]),
                kind=f.kind,  # type: ignore[arg-type]  # the check's kinds are the schema's literals
                message=f.message,
                distance=f.distance,
                other_image=image_ref(by_id[f.other_image_id]) if f.other_image_id else None,
            )
            for f in findings
        ],
    )
