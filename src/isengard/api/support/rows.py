"""Looking a row up by an id a request names: in the URL (a 404), or in the body (a 422: the request, not the
address, is wrong)."""

from __future__ import annotations

from typing import TypeVar

from fastapi import HTTPException
from sqlalchemy.orm import Session

from isengard.db.models import Base

RowT = TypeVar("RowT", bound=Base)


def get_or_404(db: Session, model: type[RowT], row_id: str, detail: str) -> RowT:
    """The row with primary key `row_id`, or a 404 with `detail` (which names what was not found)."""
    return _get_or_raise(db, model, row_id, 404, detail)


def get_or_422(db: Session, model: type[RowT], row_id: str, detail: str) -> RowT:
    """The row with primary key `row_id`, or a 422 with `detail`, for an id named in a request body."""
    return _get_or_raise(db, model, row_id, 422, detail)


def _get_or_raise(db: Session, model: type[RowT], row_id: str, status: int, detail: str) -> RowT:
    row = db.get(model, row_id)
    if row is None:
        raise HTTPException(status_code=status, detail=detail)
    return row
