"""A character's references: its photos embedded once per evaluator, cached in the database by the file's sha256.

The cache key is the content, not the image row: a replaced or re-uploaded photo is a new key, a deleted one is
simply no longer asked for, so the cache never needs invalidating by hand and two characters that share a photo
share its embedding. Also here: which identity evaluator suits a character (faces in most photos: the face
model; otherwise whole-image identity).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from isengard.db.models import Embedding
from isengard.db.session import session_scope
from isengard.plugins.evaluate.interface import EvaluatorPlugin, FaceBox, ImageEmbedding, Subject

log = logging.getLogger(__name__)

FACE_MAJORITY = 0.5  # more than this share of the photos with a face: identity is judged on faces


def file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _from_row(row: Embedding) -> ImageEmbedding:
    vector = np.asarray(row.vector, dtype=np.float32) if row.vector is not None else None
    faces = [FaceBox(*box) for box in row.faces or []]
    return ImageEmbedding(Subject(row.subject), vector, faces)


def embed_cached(
    sessions: sessionmaker[Session], evaluator: EvaluatorPlugin, paths: Sequence[Path]
) -> list[ImageEmbedding]:
    """Embeddings of image files, in order: from the cache where the content was embedded before, else computed
    and stored. A file that cannot be read or decoded is `unreadable` (and not cached: it may be fixed)."""
    shas = [file_sha256(path) for path in paths]
    known: dict[str, ImageEmbedding] = {}
    wanted = sorted({sha for sha in shas if sha})
    with session_scope(sessions) as session:
        for start in range(0, len(wanted), 500):
            rows = session.scalars(
                select(Embedding).where(
                    Embedding.evaluator == evaluator.name, Embedding.sha256.in_(wanted[start : start + 500])
                )
            )
            known.update({row.sha256: _from_row(row) for row in rows})
    missing = [(sha, path) for sha, path in zip(shas, paths, strict=True) if sha and sha not in known]
    unique_missing = list({sha: path for sha, path in missing}.items())
    if unique_missing:
        computed = evaluator.embed_paths([path for _sha, path in unique_missing])
        for (sha, _path), embedding in zip(unique_missing, computed, strict=True):
            known[sha] = embedding
            if embedding.subject is Subject.UNREADABLE:
                continue
            try:
                with session_scope(sessions) as session:
                    session.add(
                        Embedding(
                            evaluator=evaluator.name,
                            sha256=sha,
                            subject=embedding.subject.value,
                            vector=None if embedding.vector is None else [float(v) for v in embedding.vector],
                            faces=[[f.left, f.top, f.right, f.bottom] for f in embedding.faces],
                        )
                    )
            except IntegrityError:  # another worker embedded the same photo at the same moment: same answer
                pass
    return [known[sha] if sha else ImageEmbedding(Subject.UNREADABLE) for sha in shas]


@dataclass(frozen=True)
class Choice:
    face: bool
    reason: str


def choose_identity(face_embeddings: Sequence[ImageEmbedding] | None, face_unavailable: str | None = None) -> Choice:
    """Face identity when faces are found in most of the readable references, else whole-image identity."""
    if face_embeddings is None:
        return Choice(False, f"whole-image identity: the face evaluator is not available ({face_unavailable})")
    readable = [e for e in face_embeddings if e.subject is not Subject.UNREADABLE]
    faces = sum(1 for e in readable if e.subject in (Subject.OK, Subject.SEVERAL_FACES))
    if readable and faces / len(readable) > FACE_MAJORITY:
        return Choice(True, f"face identity: a face in {faces} of {len(readable)} reference photo(s)")
    return Choice(False, f"whole-image identity: a face in only {faces} of {len(readable)} reference photo(s)")
