"""An ASGI app served by uvicorn on 127.0.0.1 in a background thread: for clients that need a real socket (SSE, the
CLI over HTTP, the ComfyUI test double)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from isengard.redis_server import free_port


@contextmanager
def serve_in_thread(app: Any, *, start_timeout: float = 30.0, **config: Any) -> Iterator[str]:
    """Serve `app` on a free port for the duration of the block; yields its base URL. `config` goes to uvicorn."""
    port = free_port()
    config.setdefault("log_config", None)
    config.setdefault("access_log", False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(timeout=5)
            raise RuntimeError(f"the test server on port {port} did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
