"""The face evaluator: dlib's frontal face detector and its ResNet face descriptor.

Why dlib. Identity must be scored on any machine Isengard runs on, during training, with nothing downloaded at run
time. dlib's face-recognition ResNet (99.38 % on LFW) ships with its weights in the package registry
(`face-recognition-models`, ~130 MB with the landmark models) and runs on prebuilt wheels (`dlib-bin`) with no GPU:
on a 2-core CPU one 512 px photo takes well under a second, a generated 128-512 px sample tens of milliseconds per
face. ArcFace-class models (insightface's buffalo_l) score a little better on hard benchmarks but their weights
are a separate download under a non-commercial licence and need onnxruntime; one can be added as a plugin of this
kind. The HOG detector misses small or strongly turned faces, which is right for a character's references and
samples: a face too small to detect is too small to judge.

Descriptors of one person lie about 0.1-0.2 apart under crop, flip, scale and lighting changes; dlib's own
same-person threshold is a distance of 0.6. Similarity here is 1 - distance, so "the same person" is >= 0.4.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from isengard.plugins.api import Capability, PluginError
from isengard.plugins.evaluate.interface import (
    EvaluatorPlugin,
    FaceBox,
    IdentityKind,
    ImageEmbedding,
    Subject,
    Vector,
)

if TYPE_CHECKING:
    from PIL.Image import Image

DESCRIPTOR_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
LANDMARK_MODEL = "shape_predictor_5_face_landmarks.dat"
SAME_PERSON_DISTANCE = 0.6  # dlib's published threshold for its descriptor
# Images are scaled down to this many pixels on the long side before detection: the HOG detector's time grows
# with the pixel count, and a face it can find in a 1024 px image it finds at this size too.
MAX_SIDE = 1024
_INSTALL = "pip install dlib-bin face-recognition-models"


def models_folder() -> Path | None:
    """The folder of face_recognition_models' weights, found without importing the package (its __init__ imports
    pkg_resources, which recent setuptools no longer ship)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    return folder if (folder / DESCRIPTOR_MODEL).is_file() and (folder / LANDMARK_MODEL).is_file() else None


def _missing() -> str | None:
    if importlib.util.find_spec("dlib") is None:
        return f"dlib is not installed: {_INSTALL}"
    if models_folder() is None:
        return f"the face-recognition weights are not installed: {_INSTALL}"
    return None


_lock = threading.Lock()  # dlib's models are not documented as thread-safe: one caller at a time


@cache
def _detector() -> Any:
    import dlib

    return dlib.get_frontal_face_detector()


@cache
def _descriptor_models() -> tuple[Any, Any]:
    import dlib

    folder = models_folder()
    if folder is None:
        raise PluginError(_missing() or "the face-recognition weights are not installed")
    return dlib.shape_predictor(str(folder / LANDMARK_MODEL)), dlib.face_recognition_model_v1(
        str(folder / DESCRIPTOR_MODEL)
    )


def _pixels(image: Image) -> tuple[np.ndarray, float]:
    """The image as an RGB uint8 array no larger than MAX_SIDE, and the factor back to the original's pixels."""
    from PIL import Image as PILImage

    rgb = image.convert("RGB")
    scale = 1.0
    if max(rgb.size) > MAX_SIDE:
        scale = max(rgb.size) / MAX_SIDE
        rgb = rgb.resize((round(rgb.width / scale), round(rgb.height / scale)), PILImage.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)), scale


def _detect(pixels: np.ndarray) -> list[Any]:
    # Upsample once when the image is small: generated samples are often 256-512 px with a small face.
    upsample = 1 if max(pixels.shape[:2]) <= 640 else 0
    return list(_detector()(pixels, upsample))


def face_boxes(image: Image) -> list[FaceBox]:
    """The faces dlib's frontal detector finds in `image`, largest first, in the image's own pixels.

    For cropping to a face and for the face evaluator; raises PluginError when dlib is not installed.
    """
    if importlib.util.find_spec("dlib") is None:
        raise PluginError(f"dlib is not installed: {_INSTALL}")
    pixels, scale = _pixels(image)
    with _lock:
        found = _detect(pixels)
    return [_box(rect, scale, image) for rect in sorted(found, key=lambda rect: rect.area(), reverse=True)]


def _box(rect: Any, scale: float, image: Image) -> FaceBox:
    """A dlib rectangle (inclusive corners, possibly past the edges) as a FaceBox clipped to the image."""
    return FaceBox(
        left=max(0, round(rect.left() * scale)),
        top=max(0, round(rect.top() * scale)),
        right=min(image.width, round((rect.right() + 1) * scale)),
        bottom=min(image.height, round((rect.bottom() + 1) * scale)),
    )


class FaceEvaluator(EvaluatorPlugin):
    name: ClassVar[str] = "face"
    description: ClassVar[str] = "face identity: dlib's face detector and ResNet descriptor (CPU, installed weights)"
    identity_kind: ClassVar[IdentityKind] = IdentityKind.FACE
    same_subject: ClassVar[float] = 1.0 - SAME_PERSON_DISTANCE

    def capabilities(self) -> Capability:
        reason = _missing()
        if reason:
            return Capability(available=False, reason=reason)
        return Capability(available=True, details={"model": "dlib face_recognition_resnet_model_v1"})

    def embed_images(self, images: Sequence[Image]) -> list[ImageEmbedding]:
        reason = _missing()
        if reason:
            raise PluginError(reason)
        landmarks, descriptor = _descriptor_models()
        results = []
        for image in images:
            pixels, scale = _pixels(image)
            with _lock:
                found = sorted(_detect(pixels), key=lambda rect: rect.area(), reverse=True)
                vector = (
                    np.array(descriptor.compute_face_descriptor(pixels, landmarks(pixels, found[0])), dtype=np.float32)
                    if found
                    else None
                )
            boxes = [_box(rect, scale, image) for rect in found]
            subject = Subject.NO_FACE if not found else Subject.OK if len(found) == 1 else Subject.SEVERAL_FACES
            results.append(ImageEmbedding(subject, vector, boxes))
        return results

    def similarity(self, a: Vector, b: Vector) -> float:
        return 1.0 - float(np.linalg.norm(np.asarray(a) - np.asarray(b)))
