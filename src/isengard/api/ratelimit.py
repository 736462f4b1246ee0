"""Per-client rate limits on expensive routes, counted in Redis so they hold across API processes.

Use as a route dependency: `dependencies=[Depends(rate_limited("generation"))]`. The limit per minute comes from
the setting `ISENGARD_RATE_LIMIT_<BUCKET>`; a refused request gets 429 with `Retry-After` (seconds).

The window slides: each accepted request is a member of a sorted set scored by Redis' own clock, and a request
is accepted while fewer than `limit` members are younger than the window. One Lua script does the
prune-count-add, so two API processes can never both take the last slot, and a fixed window's burst of twice the
limit across a minute boundary cannot happen. Refused requests are not counted: a client that keeps hammering
gets in again exactly when its oldest accepted request leaves the window.
"""

from __future__ import annotations

import hashlib
import logging
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis
from fastapi import HTTPException, Request

from isengard.api.auth import bearer_token, session_cookie
from isengard.api.deps import ServicesDep
from isengard.queue import keys

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60

# KEYS[1]: the client's bucket; ARGV: window ms, limit, a unique member for this request.
# Returns {accepted (1/0), requests in the window, ms until a slot frees (0 when accepted)}.
_SLIDING_WINDOW_LUA = """
redis.replicate_commands()
local key = KEYS[1]
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, window)
  return {1, count + 1, 0}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, count, tonumber(oldest[2]) + window - now}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    count: int
    retry_after_seconds: int


def _hashed(kind: str, secret: str) -> str:
    return f"{kind}:" + hashlib.sha256(secret.encode()).hexdigest()[:16]


def client_key(request: Request) -> str:
    """Who is asking. A token holder is one client wherever it connects from; otherwise the peer address.

    Behind a reverse proxy run uvicorn with --proxy-headers and --forwarded-allow-ips so the peer address is
    the real client's, not the proxy's.
    """
    token = bearer_token(request.headers.get("authorization"))
    if token:
        return _hashed("token", token)
    session = session_cookie(request.headers.get("cookie"))
    if session:
        return _hashed("session", session)
    return client_address(request)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def hit(client: redis.Redis, key: str, *, limit: int, window_seconds: float = WINDOW_SECONDS) -> Decision:
    """Count one request against `key`; whether it is allowed and, if not, when to retry."""
    allowed, count, wait_ms = client.eval(  # type: ignore[misc]
        _SLIDING_WINDOW_LUA, 1, key, int(window_seconds * 1000), int(limit), uuid.uuid4().hex
    )
    return Decision(
        allowed=bool(allowed),
        count=int(count),
        retry_after_seconds=0 if allowed else max(1, math.ceil(int(wait_ms) / 1000)),
    )


def rate_limited(bucket: str, *, key: Callable[[Request], str] = client_key) -> Callable[[Request, ServicesDep], None]:
    setting = f"rate_limit_{bucket}"

    def check(request: Request, services: ServicesDep) -> None:
        limit = int(getattr(services.settings, setting))
        try:
            decision = hit(services.redis, keys.rate_limit(bucket, key(request)), limit=limit)
        except redis.RedisError:
            # The queue is down anyway; the route itself will answer 503. Do not hide that behind a 429.
            log.warning("rate limiter could not reach redis", extra={"bucket": bucket})
            return
        if not decision.allowed:
            log.info("rate limited", extra={"bucket": bucket, "limit": limit})
            raise HTTPException(
                status_code=429,
                detail=(
                    f"too many {bucket} requests: at most {limit} a minute; "
                    f"try again in {decision.retry_after_seconds} s"
                ),
                headers={"Retry-After": str(decision.retry_after_seconds)},
            )

    check.__name__ = f"rate_limit_{bucket}"
    return check
