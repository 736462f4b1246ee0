"""The app factory. Nothing happens at import time: `create_app(settings)` builds the services in the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import redis
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from isengard import __version__
from isengard.api.auth import AuthMiddleware, AuthPolicy
from isengard.api.body_limits import BodyLimitMiddleware, BodyLimits
from isengard.api.middleware import (
    COMMON_ERROR_RESPONSES,
    CorrelationIdMiddleware,
    DiskGuardMiddleware,
    SecurityHeadersMiddleware,
    UnexpectedErrorMiddleware,
)
from isengard.api.openapi_docs import install_security_schemes
from isengard.api.routes import (
    auth,
    captions,
    characters,
    evaluation,
    generation,
    health,
    images,
    jobs,
    logs,
    loras,
    training,
)
from isengard.api.services.jobs.lifecycle import start_queue_recovery, stop_queue_recovery
from isengard.api.state import Services
from isengard.config import Settings
from isengard.db.session import make_engine, make_sessionmaker
from isengard.plugins.registry import load_registry
from isengard.storage import DataTree

log = logging.getLogger(__name__)

ROUTERS = [auth, health, characters, images, training, generation, captions, loras, jobs, logs, evaluation]

# The built web bundle, beside the package in a source checkout.
DEFAULT_WEB_DIST = Path(__file__).resolve().parents[3] / "web" / "dist"


class RedisNotConfiguredError(RuntimeError):
    pass


def build_services(settings: Settings) -> Services:
    if not settings.redis_url:
        raise RedisNotConfiguredError("REDIS_URL is not set: start everything with `isengard up`, or set REDIS_URL")
    data = DataTree(settings.data_path)
    data.ensure()
    engine = make_engine(settings.sqlalchemy_url)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=10, health_check_interval=15)
    return Services(
        settings=settings,
        data=data,
        engine=engine,
        sessions=make_sessionmaker(engine),
        redis=client,
        plugins=load_registry(settings),
    )


def _readable_validation_message(errors: list[Any]) -> str:
    parts = []
    for error in errors[:5]:
        loc = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{loc}: {error.get('msg')}" if loc else str(error.get("msg")))
    return "; ".join(parts) or "invalid request"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        safe = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors]
        return JSONResponse(
            status_code=422, content={"detail": safe, "message": _readable_validation_message(list(errors))}
        )


def _mount_web(app: FastAPI, dist: Path) -> None:
    index = dist / "index.html"
    assets = dist / "assets"
    if assets.is_dir():
        app.mount("/assets", StaticFiles(directory=assets), name="assets")

    @app.get("/{path:path}", include_in_schema=False)
    async def web_app(path: str) -> FileResponse:
        # API paths that matched nothing are real 404s, not the web app.
        if path == "api" or path.startswith("api/"):
            raise HTTPException(status_code=404, detail="not found")
        candidate = (dist / path).resolve()
        if path and dist.resolve() in candidate.parents and candidate.is_file():
            return FileResponse(candidate)
        if not index.exists():
            raise HTTPException(status_code=404, detail="the web bundle is not built: run `make web`")
        # Client-side routes all load the single page; it must not be cached across deploys.
        return FileResponse(index, headers={"Cache-Control": "no-cache"})


def create_app(settings: Settings, *, web_dist: Path | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = build_services(settings)
        app.state.services = services
        recovery_stop, recovery_task = await start_queue_recovery(services)
        log.info("api started", extra={"mode": settings.resolved_mode.value, "data_dir": str(services.data.root)})
        try:
            yield
        finally:
            await stop_queue_recovery(services, recovery_stop, recovery_task)
            services.redis.close()
            services.engine.dispose()
            log.info("api stopped")

    app = FastAPI(
        title="Isengard",
        version=__version__,
        description="A self-hosted studio for character LoRAs on FLUX.1-dev.",
        lifespan=lifespan,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    _install_error_handlers(app)
    for module in ROUTERS:
        app.include_router(module.router, prefix="/api", responses=COMMON_ERROR_RESPONSES)
    # Innermost first: the disk guard sees only authenticated requests; auth sits inside CORS (preflights carry
    # no credentials) and inside the security headers (a 401 gets them too).
    app.add_middleware(DiskGuardMiddleware, data_root=settings.data_path, min_free_bytes=settings.min_free_bytes)
    policy = AuthPolicy(
        token=settings.api_token,
        allowed_origins=settings.cors_origins,
        allowed_hosts=settings.allowed_hosts,
        failure_limit=settings.rate_limit_auth_failures,
    )
    app.add_middleware(AuthMiddleware, policy=policy)
    # Outside the token check: the public login's body is bounded too, before FastAPI parses it.
    app.add_middleware(
        BodyLimitMiddleware,
        limits=BodyLimits(json_bytes=settings.max_json_body_bytes, idle_seconds=settings.body_timeout_seconds),
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(CorrelationIdMiddleware)
    _mount_web(app, web_dist or settings.web_dist or DEFAULT_WEB_DIST)
    install_security_schemes(app)
    return app
