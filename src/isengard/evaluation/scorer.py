"""Scoring one run's samples: set up once per run (references embedded, identity evaluator chosen), then one sample
at a time. Used by the worker's scoring thread and by evaluation jobs; knows nothing of threads or queues.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from isengard.domain import PluginKind
from isengard.evaluation.references import choose_identity, embed_cached
from isengard.evaluation.scores import SampleScore, Vector, copying_score, identity_score
from isengard.plugins.evaluate.interface import EvaluatorPlugin, Subject, open_image
from isengard.plugins.registry import PluginRegistry

log = logging.getLogger(__name__)

FACE = "face"
IMAGE = "clip"


def strip_trigger(prompt: str, trigger_word: str) -> str:
    """The prompt without its trigger word: the word means nothing to a text model and would only add noise."""
    if not trigger_word.strip():
        return prompt.strip()
    text = re.sub(rf"(?<!\w){re.escape(trigger_word.strip())}(?!\w)", " ", prompt, flags=re.IGNORECASE)
    text = re.sub(r"\s+([,.;:])", r"\1", re.sub(r"\s+", " ", text))
    return re.sub(r"^[\s,.;:]+|(?<=[,;:])\s*[,;:]+", "", text).strip(" ,;:")


@dataclass
class Setup:
    """What a run is scored with; `unavailable` says why identity cannot be scored when it cannot."""

    identity_evaluator: str | None = None
    text_evaluator: str | None = None
    choice: str = ""
    unavailable: str | None = None
    references: int = 0
    skipped: int = 0  # reference files that could not be decoded
    notes: list[str] = field(default_factory=list)


def available_evaluator(registry: PluginRegistry, name: str) -> tuple[EvaluatorPlugin | None, str | None]:
    """The evaluator plugin `name` when it can run here, else None and why not."""
    if (PluginKind.EVALUATE, name) not in registry.records:
        return None, f"no evaluator named '{name}' is installed"
    capability = registry.capabilities(PluginKind.EVALUATE, name)
    if not capability.available:
        return None, capability.reason
    plugin = registry.get(PluginKind.EVALUATE, name)
    if not isinstance(plugin, EvaluatorPlugin):
        return None, f"plugin '{name}' is not an evaluator"
    return plugin, None


class RunScorer:
    def __init__(
        self,
        registry: PluginRegistry,
        sessions: sessionmaker[Session],
        references: Sequence[Path],
        trigger_word: str,
    ) -> None:
        self.registry = registry
        self.sessions = sessions
        self.reference_paths = list(references)
        self.trigger_word = trigger_word
        self.setup = Setup()
        self._identity: EvaluatorPlugin | None = None
        self._image: EvaluatorPlugin | None = None  # whole-image model: adherence and copying
        self._identity_refs: list[Vector] = []
        self._image_refs: list[Vector] = []
        self._texts: dict[str, Vector | None] = {}

    def prepare(self) -> Setup:
        face, face_reason = available_evaluator(self.registry, FACE)
        image, image_reason = available_evaluator(self.registry, IMAGE)
        self._image = image
        if image is not None and image.reads_text:
            self.setup.text_evaluator = image.name
        elif image_reason:
            self.setup.notes.append(f"no adherence or copying scores: {image_reason}")
        if not self.reference_paths:
            self.setup.unavailable = "the character has no reference photos"
            return self.setup
        face_embeddings = embed_cached(self.sessions, face, self.reference_paths) if face else None
        image_embeddings = embed_cached(self.sessions, image, self.reference_paths) if image else None
        any_embeddings = face_embeddings or image_embeddings or []
        self.setup.skipped = sum(1 for e in any_embeddings if e.subject is Subject.UNREADABLE)
        choice = choose_identity(face_embeddings, face_reason)
        self.setup.choice = choice.reason
        if image_embeddings is not None:
            self._image_refs = [e.vector for e in image_embeddings if e.vector is not None]
        if choice.face and face is not None and face_embeddings is not None:
            self._identity = face
            # A photo with several faces may be someone else's: it is no reference for identity.
            self._identity_refs = [
                e.vector for e in face_embeddings if e.subject is Subject.OK and e.vector is not None
            ]
        elif image is not None:
            self._identity = image
            self._identity_refs = list(self._image_refs)
        else:
            self.setup.unavailable = f"no evaluator can score identity: {image_reason}"
            return self.setup
        self.setup.identity_evaluator = self._identity.name
        self.setup.references = len(self._identity_refs)
        if not self._identity_refs:
            what = "a single face" if choice.face else "a readable image"
            self.setup.unavailable = f"no usable reference: no reference photo shows {what}"
        return self.setup

    def _text(self, prompt: str) -> Vector | None:
        assert self._image is not None
        text = strip_trigger(prompt, self.trigger_word)
        if text not in self._texts:
            self._texts[text] = self._image.embed_texts([text])[0] if text else None
        return self._texts[text]

    def score(self, path: Path, *, step: int, index: int, prompt: str) -> SampleScore:
        image = open_image(path)
        if image is None:
            return SampleScore(step, index, Subject.UNREADABLE.value, None, None, None)
        subject, identity = "unscored", None
        identity_vector = None
        if self._identity is not None and self._identity_refs:
            embedded = self._identity.embed_images([image])[0]
            subject = embedded.subject.value
            identity_vector = embedded.vector
            if embedded.vector is not None:
                identity = identity_score(embedded.vector, self._identity_refs, self._identity.similarity)
        adherence = copying = None
        if self._image is not None:
            vector = (
                identity_vector
                if self._identity is self._image and identity_vector is not None
                else self._image.embed_images([image])[0].vector
            )
            if vector is not None:
                if self._image.reads_text:
                    text = self._text(prompt)
                    adherence = None if text is None else self._image.text_similarity(vector, text)
                if self._image_refs:
                    copying = copying_score(vector, self._image_refs, self._image.similarity)
        return SampleScore(step, index, subject, identity, adherence, copying)
