"""The quality report of one character's dataset, for a chosen training resolution, with a one-line verdict.

Everything is computed from the image rows (sizes, blur scores and near-duplicate links measured at upload), so
the report costs one query and never reopens a file.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from isengard.api.schemas.characters import (
    AspectImage,
    BlurryImage,
    DatasetReport,
    ImageRef,
    ResolutionBucket,
)
from isengard.api.schemas.images import image_thumbnail_url
from isengard.api.services.captions.lint import lint_images
from isengard.api.services.dataset.characters import get_character
from isengard.api.services.dataset.images import dataset_query
from isengard.captions.identity_words import DEFAULT_LANGUAGE
from isengard.dataset.image_files import edit_tag
from isengard.db.models import Image
from isengard.imaging import BLUR_THRESHOLD, EXTREME_ASPECT_RATIO, aspect_ratio
from isengard.plugins.training.interface import RECOMMENDED_IMAGES, RECOMMENDED_MAX_IMAGES, RECOMMENDED_RANGE

# Buckets on the shorter side, the side that limits how large a training crop can be.
RESOLUTION_BUCKETS = ((0, 512), (512, 768), (768, 1024), (1024, 1536), (1536, None))


def _ref(image: Image) -> ImageRef:
    return ImageRef(
        id=image.id,
        original_name=image.original_name,
        width=image.width,
        height=image.height,
        thumbnail_url=image_thumbnail_url(image.id, edit_tag(image.edit)),
    )


def image_ref(image: Image) -> ImageRef:
    """An image as the dataset reports show it (the identity check's findings too)."""
    return _ref(image)


def _histogram(images: list[Image]) -> list[ResolutionBucket]:
    buckets = []
    for low, high in RESOLUTION_BUCKETS:
        count = sum(
            1 for i in images if min(i.width, i.height) >= low and (high is None or min(i.width, i.height) < high)
        )
        label = f"{low}-{high - 1} px" if high is not None else f"{low}+ px"
        buckets.append(ResolutionBucket(label=label, min_side=low, max_side=high, count=count))
    return buckets


def _near_duplicate_groups(images: list[Image]) -> list[list[Image]]:
    """Connected groups of the near-duplicate links recorded at upload (a links to its earlier look-alike b)."""
    by_id = {image.id: image for image in images}
    parent = {image.id: image.id for image in images}

    def root(node: str) -> str:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for image in images:
        if image.near_duplicate_of in by_id:
            parent[root(image.id)] = root(image.near_duplicate_of)
    groups: dict[str, list[Image]] = {}
    for image in images:  # images come oldest first, so each group lists its original first
        groups.setdefault(root(image.id), []).append(by_id[image.id])
    return [group for group in groups.values() if len(group) > 1]


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else (plural or word + 's')}"


def verdict(
    count: int,
    resolution: int,
    too_small: int,
    duplicate_groups: list[int],
    blurry: int,
    extreme: int,
    missing_captions: int,
    captions_to_fix: int = 0,
) -> str:
    if count == 0:
        return f"no images yet: upload {RECOMMENDED_RANGE} varied photos of the character"
    parts = [_plural(count, "image")]
    if count < RECOMMENDED_IMAGES:
        parts.append(f"fewer than the {RECOMMENDED_RANGE} that train well")
    if too_small:
        parts.append(f"{too_small} under {resolution} px")
    if duplicate_groups:
        kind = "pair" if all(size == 2 for size in duplicate_groups) else "group"
        parts.append(_plural(len(duplicate_groups), f"near-duplicate {kind}"))
    if blurry:
        parts.append(f"{blurry} blurry")
    if extreme:
        parts.append(f"{extreme} with an extreme aspect ratio")
    if missing_captions:
        parts.append(f"{missing_captions} without a caption")
    if captions_to_fix:
        parts.append(f"{_plural(captions_to_fix, 'caption')} to fix")
    if len(parts) == 1:
        parts.append(f"ready to train at {resolution} px")
    return ", ".join(parts)


def build_report(db: Session, character_id: str, resolution: int) -> DatasetReport:
    character = get_character(db, character_id)
    images = list(db.scalars(dataset_query(character_id)))
    findings = lint_images(images, character.trigger_word, DEFAULT_LANGUAGE)
    # An empty caption is already counted as missing; an over-long one for CLIP alone is only a note.
    to_fix = {f.image_id for f in findings if f.severity != "info" and f.kind != "empty"}
    too_small = [i for i in images if min(i.width, i.height) < resolution]
    groups = _near_duplicate_groups(images)
    blurry = [i for i in images if i.blur_score is not None and i.blur_score < BLUR_THRESHOLD]
    extreme = [i for i in images if aspect_ratio(i.width, i.height) > EXTREME_ASPECT_RATIO]
    missing = [i for i in images if not i.caption.strip()]
    return DatasetReport(
        character_id=character_id,
        resolution=resolution,
        count=len(images),
        recommended_images=[RECOMMENDED_IMAGES, RECOMMENDED_MAX_IMAGES],
        verdict=verdict(
            len(images),
            resolution,
            len(too_small),
            [len(g) for g in groups],
            len(blurry),
            len(extreme),
            len(missing),
            len(to_fix),
        ),
        resolution_histogram=_histogram(images),
        too_small=[_ref(i) for i in too_small],
        near_duplicate_groups=[[_ref(i) for i in group] for group in groups],
        blurry=[BlurryImage(**_ref(i).model_dump(), blur_score=round(float(i.blur_score or 0.0), 2)) for i in blurry],
        blur_threshold=BLUR_THRESHOLD,
        extreme_aspect=[
            AspectImage(**_ref(i).model_dump(), aspect_ratio=round(aspect_ratio(i.width, i.height), 3)) for i in extreme
        ],
        extreme_aspect_threshold=EXTREME_ASPECT_RATIO,
        missing_captions=[_ref(i) for i in missing],
        caption_findings=findings,
    )
