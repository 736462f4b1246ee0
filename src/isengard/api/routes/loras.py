"""Routes for loras."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["loras"])
