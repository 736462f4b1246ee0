"""Access control: with `ISENGARD_API_TOKEN` set, every request for data must prove it knows the token.

Two ways to prove it:
- `Authorization: Bearer <token>` (scripts, the CLI, other services);
- the `isengard_session` cookie the web UI gets from `POST /api/auth/login`. The cookie never holds the token
  itself: it holds an expiry and an HMAC of that expiry keyed by the token, so a stolen cookie expires, and
  changing the token logs every browser out.

What stays open, so the login page can load: the static web bundle (every path outside `/api`) and the three
`/api/auth/*` routes. Everything under `/api` — data, SSE streams, file downloads, thumbnails, `/api/health` and
the OpenAPI docs — needs the token. Without a token configured Isengard binds loopback only (config.py refuses
anything else) and this middleware guards the browser boundary instead: only loopback host names (plus
`ISENGARD_ALLOWED_HOSTS`) are answered, so a page that rebinds its own DNS name to 127.0.0.1 gets nothing, and
writes that a browser sends from another origin are refused.

Guessing is bounded twice, in Redis (across API processes), past `ISENGARD_RATE_LIMIT_AUTH_FAILURES` wrong
tokens or sessions a minute: per client address, and per guessed value whichever address sends it (a guess
rotated across addresses or forged X-Forwarded-For headers). A locked-out address or guess gets 429 with
`Retry-After`. A request that carries the token or a valid session passes both: the people behind an address
someone else is guessing from (a NAT, a proxy) keep working, and the token is compared in constant time before
the counters are read, so the answer to a guess says no more than a 401 would. The client address is the peer's:
X-Forwarded-For counts only with `--proxy-headers`, from the configured proxies (isengard.api.server).

A pure ASGI middleware rather than a route dependency: it also covers mounts, the docs routes and streaming
responses, and it answers before any route code or request body is touched.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

import redis
from starlette.types import ASGIApp, Receive, Scope, Send

from isengard.api.ratelimit import Decision, hit, scope_address
from isengard.config import is_loopback
from isengard.queue import keys

log = logging.getLogger(__name__)

SESSION_COOKIE = "isengard_session"
SESSION_MAX_AGE_SECONDS = 7 * 24 * 3600
UNAUTHENTICATED_DETAIL = "authentication required"

# The routes the login page needs before it has a session.
PUBLIC_API_PATHS = frozenset({"/api/auth/login", "/api/auth/logout", "/api/auth/session"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SESSION_VERSION = "v1"


def needs_auth(path: str) -> bool:
    """Everything under /api except the login routes; the web bundle outside /api is public."""
    if path in PUBLIC_API_PATHS:
        return False
    return path == "/api" or path.startswith("/api/")


def _digest(value: str) -> bytes:
    # Hashing first gives both sides the same length, so compare_digest leaks not even the token's length.
    return hashlib.sha256(value.encode("utf-8")).digest()


def token_matches(given: str | None, token: str) -> bool:
    if not given:
        return False
    return hmac.compare_digest(_digest(given), _digest(token))


def _session_signature(token: str, expires: int) -> str:
    message = f"{_SESSION_VERSION}.{expires}".encode()
    return hmac.new(token.encode("utf-8"), message, hashlib.sha256).hexdigest()


def make_session_value(token: str, *, now: float | None = None) -> str:
    expires = int(now if now is not None else time.time()) + SESSION_MAX_AGE_SECONDS
    return f"{_SESSION_VERSION}.{expires}.{_session_signature(token, expires)}"


def session_valid(value: str | None, token: str, *, now: float | None = None) -> bool:
    if not value:
        return False
    parts = value.split(".")
    if len(parts) != 3 or parts[0] != _SESSION_VERSION or not parts[1].isdigit() or len(parts[1]) > 12:
        return False
    expires = int(parts[1])
    if expires < (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(parts[2].encode(), _session_signature(token, expires).encode())


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip() or None


def session_cookie(cookie_header: str | None) -> str | None:
    if not cookie_header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie_header)
    except Exception:  # a malformed Cookie header is simply no session
        return None
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel is not None else None


def authenticate(scope: Scope, token: str) -> str | None:
    """How the request proved it knows the token: "bearer", "cookie", or None."""
    if token_matches(bearer_token(_header(scope, b"authorization")), token):
        return "bearer"
    if session_valid(session_cookie(_header(scope, b"cookie")), token):
        return "cookie"
    return None


def same_origin(scope: Scope, origin: str, allowed_origins: list[str]) -> bool:
    """Whether `origin` is this app's own (scheme and host:port) or one of the configured CORS origins."""
    if origin in allowed_origins:
        return True
    host = _header(scope, b"host")
    parsed = urlsplit(origin)
    return bool(host) and parsed.scheme == scope.get("scheme", "http") and parsed.netloc == host


def host_name(host_header: str) -> str:
    """The name part of a Host header: `[::1]:8000` -> `::1`, `localhost:8000` -> `localhost`."""
    value = host_header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _cross_origin_write(scope: Scope, allowed_origins: list[str]) -> bool:
    origin = _header(scope, b"origin")
    if scope.get("method", "GET") in _SAFE_METHODS or not origin:
        return False
    return origin == "null" or not same_origin(scope, origin, allowed_origins)


@dataclass
class AuthPolicy:
    token: str | None
    allowed_origins: list[str] = field(default_factory=list)
    # Host names answered without a token, besides the loopback ones.
    allowed_hosts: list[str] = field(default_factory=list)
    # Requests with a wrong token or session, per client address and minute, before 429.
    failure_limit: int = 20

    def host_allowed(self, scope: Scope) -> bool:
        host = _header(scope, b"host")
        if host is None:  # no browser sends a request without Host, so it cannot be a rebinding page
            return True
        name = host_name(host)
        return is_loopback(name) or name in {h.lower() for h in self.allowed_hosts}


class AuthMiddleware:
    """Refuses requests for data that carry neither the bearer token nor a valid session cookie; without a
    token, refuses other host names and cross-origin writes."""

    def __init__(self, app: ASGIApp, *, policy: AuthPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.policy.token is None:
            await self._without_token(scope, receive, send)
            return
        if not needs_auth(scope["path"]):
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        # CORS preflights carry no credentials by design; the CORS middleware outside this one answers them.
        if scope["type"] == "http" and method == "OPTIONS" and _header(scope, b"access-control-request-method"):
            await self.app(scope, receive, send)
            return
        proof = authenticate(scope, self.policy.token)
        if proof is None:
            guess = bearer_token(_header(scope, b"authorization")) or session_cookie(_header(scope, b"cookie"))
            if _header(scope, b"authorization") is not None or guess:
                blocked = await self._failed(scope, guess or "")
                if blocked is not None:
                    await _too_many(scope, send, blocked)
                    return
            await _refuse(scope, send, 401, UNAUTHENTICATED_DETAIL)
            return
        # SameSite=Strict keeps other sites' requests cookie-less, but another origin of the same site (another
        # port on this host) still sends the cookie: writes with a cookie must come from our own origin.
        if proof == "cookie" and _cross_origin_write(scope, self.policy.allowed_origins):
            await _refuse(scope, send, 403, "cross-origin request refused")
            return
        await self.app(scope, receive, send)

    async def _without_token(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Without a token, the loopback binding is the only protection; a browser page from elsewhere that points
        # its own name at 127.0.0.1 (DNS rebinding) sends that name as Host and its own origin. The data is under
        # /api; the static bundle holds nothing to steal.
        if scope["path"].startswith("/api") and not self.policy.host_allowed(scope):
            await _refuse(
                scope,
                send,
                400,
                "unknown host name: without ISENGARD_API_TOKEN only loopback names (127.0.0.1, localhost, [::1]) "
                "and ISENGARD_ALLOWED_HOSTS are answered",
            )
            return
        if scope["type"] == "http" and _cross_origin_write(scope, self.policy.allowed_origins):
            await _refuse(scope, send, 403, "cross-origin request refused")
            return
        await self.app(scope, receive, send)

    async def _failed(self, scope: Scope, guess: str) -> Decision | None:
        """Count one failed authentication for the client's address and for the guessed value; the decision that
        locks it out when either is past the limit (then nothing is counted), None otherwise or without Redis."""
        app = scope.get("app")
        services = getattr(app.state, "services", None) if app is not None else None
        if services is None:
            return None
        counters = (
            keys.rate_limit("auth-failures", scope_address(scope)),
            # Only a digest of the guess is stored: it may be a mistyped real token.
            keys.rate_limit("auth-guess", hashlib.sha256(guess.encode("utf-8")).hexdigest()),
        )
        limit = self.policy.failure_limit

        def count() -> Decision | None:
            for key in counters:
                decision = hit(services.redis, key, limit=limit, count=False)
                if not decision.allowed:
                    return decision
            for key in counters:
                hit(services.redis, key, limit=limit, count=True)
            return None

        try:
            return await asyncio.to_thread(count)
        except redis.RedisError:
            log.warning("could not count failed authentications: redis is unreachable")
            return None


async def _too_many(scope: Scope, send: Send, decision: Decision) -> None:
    log.info("authentication failures rate limited", extra={"client": scope_address(scope)})
    wait = str(decision.retry_after_seconds)
    await _refuse(
        scope,
        send,
        429,
        f"too many failed authentications from this address or with this token; try again in {wait} s",
        [(b"retry-after", wait.encode())],
    )


async def _refuse(
    scope: Scope, send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    if scope["type"] == "websocket":
        # Policy violation; closing before accept makes the server answer the handshake with 403.
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="isengard"'))
    headers.extend(extra or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
