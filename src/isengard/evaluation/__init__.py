"""Quality measured, not eyeballed: identity, prompt adherence and copying scores of a character's images.

One home for the concept: the references (the character's photos, embedded once), the choice of evaluator per
character, the scores' aggregation per checkpoint, the recommended checkpoint and its verdicts, and the dataset's
identity findings. The embedding models are evaluator plugins (`isengard.plugins.evaluate`).
"""

from isengard.plugins.evaluate.face import face_boxes
from isengard.plugins.evaluate.interface import FaceBox

__all__ = ["FaceBox", "face_boxes"]
