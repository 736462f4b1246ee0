"""Looking a row up by the id a route was given."""

from __future__ import annotations

from typing import TypeVar

from fastapi import HTTPException
from sqlalchemy.orm import Session

from isengard.db.models import Base

RowT = TypeVar("RowT", bound=Base)


def get_or_404(db: Session, model: type[RowT], row_id: str, detail: str) -> RowT:
    """The row with primary key `row_id`, or a 404 with `detail` (which names what was not found)."""
    row = db.get(model, row_id)
    if row is None:
        raise HTTPException(status_code=404, detail=detail)
    return row
