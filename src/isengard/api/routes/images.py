"""Routes for images."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["images"])
