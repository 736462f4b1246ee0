"""Caption files beside the uploads: `uploads/{character_id}/{image_id}.txt` mirrors `images.caption`.

The database holds the caption; this mirror makes each character's upload folder a dataset in the layout that
kohya_ss, ai-toolkit and FluxGym read (an image and a same-named .txt). The text is the stored caption as is,
`[trigger]` placeholder included, so renaming a character's trigger word never means rewriting these files.
An image without a caption has no .txt, as those trainers expect.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

from isengard.api.services.dataset.image_files import caption_path
from isengard.db.models import Image
from isengard.storage import DataTree, atomic_write_bytes

log = logging.getLogger(__name__)


def write_caption_file(data: DataTree, image: Image) -> None:
    """Make the file match `image.caption`: written atomically when there is a caption, removed when there is none."""
    target = caption_path(data, image)
    if image.caption:
        atomic_write_bytes(target, image.caption.encode("utf-8"))
    else:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()


def mirror_committed_captions(data: DataTree, images: Iterable[Image]) -> None:
    """After a committed caption edit: the edit stands even if a file cannot be written (the database is the truth)."""
    for image in images:
        try:
            write_caption_file(data, image)
        except OSError:
            log.exception(
                "could not write the caption file beside an image",
                extra={"image_id": image.id, "character_id": image.character_id},
            )
