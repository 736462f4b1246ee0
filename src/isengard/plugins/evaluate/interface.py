"""The evaluator plugin interface: turn images (and, where the model can, texts) into embeddings that compare.

An evaluator answers two questions about a generated image: is it the character (identity: its embedding against
the embeddings of the character's photos) and does it show what its prompt asked for (adherence: image against
text). A face evaluator answers the first for people; an image model (CLIP/SigLIP class) answers the first for
characters without a human face and the second for everyone.

Each image gets an `ImageEmbedding` with an explicit status: a face evaluator says "no face" or "several faces"
instead of guessing, and an image that cannot be decoded is "unreadable", so the caller counts these instead of
hiding them. Similarity is the evaluator's own (a face descriptor's distance is not a cosine): callers compare two
embeddings only through `similarity`, which is 1 for identical and falls as they differ, and judge it against the
evaluator's `same_subject` threshold.

A third-party evaluator (an ArcFace model, say) subclasses `EvaluatorPlugin`, implements `capabilities` and
`embed_images` (and `embed_texts` if it reads text), and registers under the `isengard.evaluate` entry points.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from isengard.domain import PluginKind
from isengard.plugins.api import JobContext, Plugin, PluginError

if TYPE_CHECKING:
    from PIL.Image import Image

Vector = np.ndarray


class Subject(StrEnum):
    """What an evaluator found in an image."""

    OK = "ok"  # one subject, embedded
    NO_FACE = "no_face"
    SEVERAL_FACES = "several_faces"  # embedded from the largest face; flagged because it may be someone else's
    UNREADABLE = "unreadable"  # the file could not be decoded


class IdentityKind(StrEnum):
    FACE = "face"  # a face-recognition descriptor of the face
    IMAGE = "image"  # the whole image (characters without a human face)


@dataclass(frozen=True)
class FaceBox:
    """A face's bounding box in pixels of the image it was found in (right and bottom exclusive)."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def area(self) -> int:
        return max(0, self.right - self.left) * max(0, self.bottom - self.top)


@dataclass
class ImageEmbedding:
    subject: Subject
    vector: Vector | None = None  # None when there is nothing to compare (no face, unreadable)
    faces: list[FaceBox] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return self.vector is not None


class NoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


def cosine(a: Vector, b: Vector) -> float:
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / denominator) if denominator > 0 else 0.0


def open_image(path: Path) -> Image | None:
    """The image at `path` as RGB (EXIF orientation applied), or None when it cannot be decoded."""
    from PIL import Image as PILImage
    from PIL import ImageOps, UnidentifiedImageError

    try:
        with PILImage.open(path) as opened:
            return ImageOps.exif_transpose(opened).convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, PILImage.DecompressionBombError):
        return None


class EvaluatorPlugin(Plugin):
    kind: ClassVar[PluginKind] = PluginKind.EVALUATE
    config_model: ClassVar[type[BaseModel]] = NoConfig
    identity_kind: ClassVar[IdentityKind]
    # `similarity` at or above this: the same subject (for a face model, the same person).
    same_subject: ClassVar[float]
    # Whether `embed_texts` works: the evaluator can score an image against its prompt.
    reads_text: ClassVar[bool] = False

    @abstractmethod
    def embed_images(self, images: Sequence[Image]) -> list[ImageEmbedding]:
        """One embedding per image, in order (decoded RGB images)."""

    def embed_texts(self, texts: Sequence[str]) -> list[Vector]:
        """One embedding per text, comparable with image embeddings through `text_similarity`."""
        raise PluginError(f"the {self.name} evaluator does not read text")

    def similarity(self, a: Vector, b: Vector) -> float:
        """How alike two image embeddings are: 1 for identical, lower as they differ."""
        return cosine(a, b)

    def text_similarity(self, image: Vector, text: Vector) -> float:
        return cosine(image, text)

    def embed_paths(self, paths: Sequence[Path]) -> list[ImageEmbedding]:
        """Embed image files; a file that cannot be decoded is `unreadable`, not an error."""
        decoded = [open_image(path) for path in paths]
        readable = [image for image in decoded if image is not None]
        embedded = iter(self.embed_images(readable) if readable else [])
        return [next(embedded) if image is not None else ImageEmbedding(Subject.UNREADABLE) for image in decoded]

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        raise PluginError("an evaluator runs inside training and evaluation jobs, not as a job of its own")
