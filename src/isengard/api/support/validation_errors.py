"""A plugin's own input model (a training config, an image request) refused a value: one readable 422 line."""

from __future__ import annotations

from pydantic import ValidationError


def readable_errors(exc: ValidationError, *, prefix: str | None = None, limit: int = 5) -> str:
    """`where: what` for the first `limit` errors, joined by "; "; `prefix` names the object the fields are in."""
    parts = []
    for error in exc.errors()[:limit]:
        loc = ".".join(str(part) for part in ((prefix,) if prefix else ()) + tuple(error.get("loc", ())))
        # Pydantic prefixes a validator's own message with its error type; the message alone reads better.
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {message}" if loc else message)
    return "; ".join(parts)
