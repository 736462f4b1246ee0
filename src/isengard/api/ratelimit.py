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

import logging
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis
from fastapi import HTTPException, Request
from starlette.types import Scope

from isengard.api.deps import ServicesDep
from isengard.queue import keys

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60

# KEYS[1]: the client's bucket; ARGV: window ms, limit, a unique member for this request, and "1" to count the
# request when it is accepted ("0" only asks whether one would be).
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
  if ARGV[4] == '1' then
    redis.call('ZADD', key, now, ARGV[3])
    redis.call('PEXPIRE', key, window)
    count = count + 1
  end
  return {1, count, 0}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, count, tonumber(oldest[2]) + window - now}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    count: int
    retry_after_seconds: int


def client_key(request: Request) -> str:
    """Who is asking: the peer address. Never a header the client chooses (an unverified bearer value or cookie),
    which a client could change on every request to get a fresh allowance each time.

    Behind a reverse proxy run uvicorn with --proxy-headers and --forwarded-allow-ips so the peer address is
    the real client's, not the proxy's.
    """
    return client_address(request)


def client_address(request: Request) -> str:
    return scope_address(request.scope)


def scope_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def hit(
    client: redis.Redis, key: str, *, limit: int, window_seconds: float = WINDOW_SECONDS, count: bool = True
) -> Decision:
    """Count one request against `key` (or, with count=False, only ask); whether it is allowed and, if not,
    when to retry."""
    allowed, in_window, wait_ms = client.eval(  # type: ignore[misc]
        _SLIDING_WINDOW_LUA, 1, key, int(window_seconds * 1000), int(limit), uuid.uuid4().hex, "1" if count else "0"
    )
    return Decision(
        allowed=bool(allowed),
        count=int(in_window),
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
