"""Keyset pages, newest first, for the tables listed that way (images, LoRAs, generations).

A page ends at a (created_at, id) pair; the next one starts strictly below it. A deep page then costs what the
first one does, on the (created_at, id) index, and rows added meanwhile neither shift nor repeat a page.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import TypeVar

from fastapi import HTTPException
from sqlalchemy import Select, tuple_
from sqlalchemy.orm import Session

from isengard.db.models import Generation, Image, Lora

RowT = TypeVar("RowT", Image, Lora, Generation)  # the tables listed newest first


def encode_cursor(created_at: datetime, row_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, row_id = json.loads(raw)
        if not isinstance(row_id, str) or len(row_id) > 32:
            raise ValueError("bad id")
        return datetime.fromisoformat(stamp), row_id
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise HTTPException(
            status_code=400, detail="invalid cursor: pass back the next_cursor of a previous page"
        ) from None


def newest_first(
    query: Select[RowT], model: type[RowT], *, after: tuple[datetime, str] | None, limit: int
) -> Select[RowT]:
    """`query` ordered newest first, starting below `after` (the last row of the previous page)."""
    if after is not None:
        # A row-value comparison, which SQLite and PostgreSQL both turn into a range seek on the index.
        query = query.where(tuple_(model.created_at, model.id) < tuple_(after[0], after[1]))
    return query.order_by(model.created_at.desc(), model.id.desc()).limit(limit)


def keyset_page(
    db: Session, query: Select[RowT], model: type[RowT], *, cursor: str | None, limit: int
) -> tuple[list[RowT], str | None]:
    """One page of `query` after `cursor`, and the cursor of the next page (None on the last one)."""
    after = decode_cursor(cursor) if cursor is not None else None
    # One row more than asked tells whether another page exists without a COUNT.
    rows = list(db.scalars(newest_first(query, model, after=after, limit=limit + 1)))
    next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor
