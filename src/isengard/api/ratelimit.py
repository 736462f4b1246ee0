"""Per-client rate limits on expensive routes, counted in Redis so they hold across API processes.

Use as a route dependency: `dependencies=[Depends(rate_limited("generation"))]`. The limit per minute comes from
the setting `ISENGARD_RATE_LIMIT_<BUCKET>`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis
from fastapi import HTTPException, Request

from isengard.api.deps import ServicesDep
from isengard.queue import keys

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60


def client_key(request: Request) -> str:
    # Behind no proxy by default: the peer address is the client. A token holder is one client wherever it comes from.
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        import hashlib

        return "token:" + hashlib.sha256(auth[7:].encode()).hexdigest()[:16]
    return request.client.host if request.client else "unknown"


def rate_limited(bucket: str) -> Callable[[Request, ServicesDep], None]:
    setting = f"rate_limit_{bucket}"

    def check(request: Request, services: ServicesDep) -> None:
        limit = int(getattr(services.settings, setting))
        window = int(time.time() // WINDOW_SECONDS)
        key = f"{keys.rate_limit(bucket, client_key(request))}:{window}"
        try:
            pipe = services.redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS * 2)
            count = int(pipe.execute()[0])
        except redis.RedisError:
            # The queue is down anyway; the route itself will answer 503. Do not hide that behind a 429.
            log.warning("rate limiter could not reach redis", extra={"bucket": bucket})
            return
        if count > limit:
            retry_after = WINDOW_SECONDS - int(time.time()) % WINDOW_SECONDS
            raise HTTPException(
                status_code=429,
                detail=f"too many {bucket} requests: at most {limit} a minute; try again in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )

    check.__name__ = f"rate_limit_{bucket}"
    return check
