"""Access control: with `ISENGARD_API_TOKEN` set, every request for data must prove it knows the token.

Two ways to prove it:
- `Authorization: Bearer <token>` (scripts, the CLI, other services);
- the `isengard_session` cookie the web UI gets from `POST /api/auth/login`. The cookie never holds the token
  itself: it holds an expiry and an HMAC of that expiry keyed by the token, so a stolen cookie expires, and
  changing the token logs every browser out.

What stays open, so the login page can load: the static web bundle (every path outside `/api`) and the three
`/api/auth/*` routes. Everything under `/api` — data, SSE streams, file downloads, thumbnails, `/api/health` and
the OpenAPI docs — needs the token. Without a token configured Isengard binds loopback only (config.py refuses
anything else) and this middleware lets everything through.

A pure ASGI middleware rather than a route dependency: it also covers mounts, the docs routes and streaming
responses, and it answers before any route code or request body is touched.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

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
    if origin in allowed_origins:
        return True
    host = _header(scope, b"host")
    parsed = urlsplit(origin)
    return bool(host) and parsed.netloc == host


class AuthMiddleware:
    """Refuses requests for data that carry neither the bearer token nor a valid session cookie."""

    def __init__(self, app: ASGIApp, *, token: str | None, allowed_origins: list[str] | None = None) -> None:
        self.app = app
        self.token = token
        self.allowed_origins = list(allowed_origins or [])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] not in ("http", "websocket") or not needs_auth(scope["path"]):
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        # CORS preflights carry no credentials by design; the CORS middleware outside this one answers them.
        if scope["type"] == "http" and method == "OPTIONS" and _header(scope, b"access-control-request-method"):
            await self.app(scope, receive, send)
            return
        proof = authenticate(scope, self.token)
        if proof is None:
            await _refuse(scope, send, 401, UNAUTHENTICATED_DETAIL)
            return
        # SameSite=Strict keeps other sites' requests cookie-less, but another origin of the same site (another
        # port on this host) still sends the cookie: writes with a cookie must come from our own origin.
        origin = _header(scope, b"origin")
        if (
            proof == "cookie"
            and method not in _SAFE_METHODS
            and origin
            and (origin == "null" or not same_origin(scope, origin, self.allowed_origins))
        ):
            await _refuse(scope, send, 403, "cross-origin request refused")
            return
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, send: Send, status: int, detail: str) -> None:
    if scope["type"] == "websocket":
        # Policy violation; closing before accept makes the server answer the handshake with 403.
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="isengard"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
