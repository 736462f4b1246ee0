"""Structured JSON logs, one object per line, with the correlation id of the request or job being served.

On a terminal (a person running `make run`), plain readable lines instead, unless JSON is asked for.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)
job_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)

# Attributes every LogRecord has; anything else was passed through `extra=` and belongs in the JSON object.
# (A name in this set cannot be passed through `extra=` either: it would not reach the JSON object.)
_RECORD_ATTRIBUTES = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)
RESERVED_RECORD_FIELDS = _RECORD_ATTRIBUTES | {"message", "asctime", "taskName"}


def new_correlation_id() -> str:
    return uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": correlation_id.get(),
        }
        job_id = job_id_var.get()
        if job_id:
            entry["job_id"] = job_id
        for key, value in record.__dict__.items():
            if key not in RESERVED_RECORD_FIELDS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", json_lines: bool | None = True, stream: Any = None) -> None:
    """`json_lines=None` chooses: JSON for files, pipes and collectors, plain text when the stream is a terminal."""
    target = stream or sys.stderr
    if json_lines is None:
        isatty = getattr(target, "isatty", None)
        json_lines = not (callable(isatty) and isatty())
    handler = logging.StreamHandler(target)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Third-party chatter stays at WARNING unless asked for.
    for noisy in ("httpx", "httpcore", "urllib3", "diffusers", "transformers", "PIL", "multipart"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # Import-time notices of optional kernels this machine does not use (torchao's CUDA extensions and Triton,
    # bitsandbytes' hub kernels, torch's pytree deprecations of torchao's enums, diffusers' torchao serialization
    # types): a wall of them before the URL says nothing actionable. Their errors still show; DEBUG shows all.
    if logging.getLevelName(level) != logging.DEBUG:
        for optional in (
            "torchao",
            "bitsandbytes",
            "torch.utils._pytree",
            "optimum.quanto",
            "diffusers.quantizers.torchao",
            "transformers.quantizers",
        ):
            logging.getLogger(optional).setLevel(logging.ERROR)
