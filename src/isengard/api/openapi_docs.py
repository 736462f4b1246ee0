"""The OpenAPI schema as clients need it: the two ways to authenticate, and which routes need neither.

FastAPI lists a security scheme only for routes that use its security dependencies; Isengard checks the token in
a middleware (see isengard.api.auth), so the schemes are declared here, for every operation, with the public
login routes marked as needing none.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from isengard.api.auth import PUBLIC_API_PATHS, SESSION_COOKIE

SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "the API token (ISENGARD_API_TOKEN) as `Authorization: Bearer <token>`",
    },
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "the session cookie POST /api/auth/login sets (the web UI)",
    },
}


def install_security_schemes(app: FastAPI) -> None:
    """Wrap `app.openapi` so the schema declares the bearer and cookie schemes and where they apply."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        # Either scheme is enough; when no token is configured none is checked (loopback only).
        schema["security"] = [{"bearer": []}, {"session": []}]
        for path in PUBLIC_API_PATHS:
            for operation in schema.get("paths", {}).get(path, {}).values():
                operation["security"] = []
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
