"""Path and query parameters several routes share, so each is checked (and documented) one way."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query

from isengard.api.support.text import NoNul

ID_PATTERN = r"^[0-9a-f]{32}$"  # every row id is uuid4().hex (db.models.new_id)


def path_id(what: str) -> Any:
    """The `{x_id}` segment of a route about one `what`: a malformed id is a 422 before any lookup."""
    return Path(pattern=ID_PATTERN, description=f"the {what}'s id")


OptionalId = Annotated[str | None, Query(pattern=ID_PATTERN)]
PageCursor = Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page"), NoNul]
