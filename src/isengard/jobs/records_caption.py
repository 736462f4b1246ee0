"""What a caption job's captions become: the image's caption, stored as a hand edit is (row, then the .txt file)."""

from __future__ import annotations

from sqlalchemy import func, or_, update
from sqlalchemy.orm import Session, sessionmaker

from isengard.captions.trigger import normalize_caption
from isengard.dataset.caption_files import mirror_committed_captions
from isengard.db.models import Image
from isengard.storage import DataTree


def record_caption(
    sessions: sessionmaker[Session],
    data: DataTree,
    *,
    image_id: str,
    character_id: str | None,
    caption: str,
    overwrite: bool,
    replaces: str = "",
) -> bool:
    """Store the caption; False when the image is gone or has a caption that must be kept.

    The "keep an existing caption" rule is part of the UPDATE itself: a caption typed by hand while the job ran is
    never replaced, however close the two writes come.
    """
    conditions = [Image.id == image_id]
    if character_id is not None:
        conditions.append(Image.character_id == character_id)
    if not overwrite:
        kept_unless = func.trim(Image.caption) == ""
        # A placeholder queued to be replaced is replaced only if it is still exactly that placeholder.
        conditions.append(or_(kept_unless, Image.caption == replaces) if replaces.strip() else kept_unless)
    with sessions() as session:
        changed = session.execute(
            update(Image)
            .where(*conditions)
            .values(caption=normalize_caption(caption))
            .execution_options(synchronize_session=False)
        )
        if getattr(changed, "rowcount", 0) != 1:
            session.rollback()
            return False
        session.commit()
        image = session.get(Image, image_id)
        if image is None:  # deleted in between: its files went with it
            return False
        mirror_committed_captions(data, [image])
    return True
