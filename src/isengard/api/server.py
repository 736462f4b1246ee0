"""How `isengard api` serves the app: uvicorn with the connection bounds an exposed server needs.

- A connection that has not sent a complete request head within `ISENGARD_HEADER_TIMEOUT_SECONDS` (after it
  opened, or after its previous response) is closed: idle or trickling sockets cannot pile up until the process
  runs out of file descriptors and every request fails. uvicorn has a keep-alive timeout, but it is reset by any
  byte, and nothing bounds a fresh connection that never sends one.
- `X-Forwarded-For` is believed only with `--proxy-headers` (ISENGARD_PROXY_HEADERS) and only from
  `--forwarded-allow-ips`: uvicorn's default trusts it from loopback, where a local reverse proxy is not always
  the one sending it, and a client that rotates it would get a fresh rate-limit allowance with each request.
- At most `ISENGARD_MAX_CONNECTIONS` connections are served at once (uvicorn's `limit_concurrency`): past it a new
  request is answered 503 at once instead of holding a descriptor and memory until something gives.
- The soft limit on open files is raised to the hard one: the default 1,024 is a few browsers and some idle sockets.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

from isengard.config import Settings

log = logging.getLogger(__name__)


def header_timeout_protocol(timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol, closing connections whose next request head does not arrive within `timeout`."""
    base: Any = AutoHTTPProtocol

    class HeaderTimeoutProtocol(base):  # type: ignore[misc]
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm_head_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

        def _arm_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            waiting_after = self.cycle  # a new request replaces the cycle: then the head has arrived

            def expire() -> None:
                if self.cycle is waiting_after and not self.transport.is_closing():
                    self.transport.close()

            self._head_timer = self.loop.call_later(timeout, expire)

    return HeaderTimeoutProtocol


def raise_open_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            log.warning("could not raise the open file limit", extra={"soft": soft, "hard": hard})


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments `uvicorn.run`/`uvicorn.Config` get for this installation."""
    return {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "http": header_timeout_protocol(settings.header_timeout_seconds),
        "proxy_headers": settings.proxy_headers,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "limit_concurrency": settings.max_connections,
    }
