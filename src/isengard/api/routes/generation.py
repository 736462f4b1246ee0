"""Routes for generation."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["generation"])
