"""Files are served only from their own real location: a character's folder replaced by a link to another folder
inside the data tree (holding the same file names) serves nothing."""

from __future__ import annotations

import os
import shutil

from fastapi.testclient import TestClient

from isengard.config import Settings
from tests.support.training_setup import make_character


def test_a_folder_linked_inside_the_tree_is_not_served(client: TestClient, settings: Settings) -> None:
    character = make_character(client, "Linked Folder", 2)
    image = client.get("/api/images", params={"character_id": character}).json()["items"][0]
    assert client.get(f"/api/images/{image['id']}/file").status_code == 200
    data = settings.data_path
    folder = data / "uploads" / character
    # The same files, moved to another folder of the tree; the character's folder becomes a link to it.
    elsewhere = data / "uploads" / "elsewhere"
    shutil.move(str(folder), str(elsewhere))
    os.symlink(elsewhere, folder)
    assert (folder / next(iter(os.listdir(elsewhere)))).is_file()  # reachable through the link
    assert client.get(f"/api/images/{image['id']}/file").status_code == 404
    thumbs = data / "thumbnails" / character
    moved = data / "thumbnails" / "elsewhere"
    shutil.move(str(thumbs), str(moved))
    os.symlink(moved, thumbs)
    assert client.get(f"/api/images/{image['id']}/thumbnail").status_code == 404
