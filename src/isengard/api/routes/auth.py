"""Login for the web UI: trade the API token for an HttpOnly session cookie; ask whether a login is needed.

These three routes are open (the login page calls them before it has a session); everything else under /api
needs the token once ISENGARD_API_TOKEN is set. See isengard.api.auth.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

from isengard.api.auth import (
    SESSION_COOKIE,
    SESSION_MAX_AGE_SECONDS,
    authenticate,
    make_session_value,
    token_matches,
)
from isengard.api.deps import SettingsDep
from isengard.api.ratelimit import client_address, rate_limited

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginRequest(BaseModel):
    token: str = Field(min_length=1, max_length=4096, description="the API token (ISENGARD_API_TOKEN)")


class SessionState(BaseModel):
    auth_required: bool = Field(description="whether this installation needs a token at all")
    authenticated: bool = Field(description="whether this request carries a valid token or session")


def _state(request: Request, settings: SettingsDep) -> SessionState:
    if not settings.api_token:
        return SessionState(auth_required=False, authenticated=True)
    return SessionState(auth_required=True, authenticated=authenticate(request.scope, settings.api_token) is not None)


@router.get("/session", response_model=SessionState)
def session(request: Request, settings: SettingsDep) -> SessionState:
    return _state(request, settings)


@router.post(
    "/login",
    response_model=SessionState,
    # Counted per address, not per token: guessing tokens must be slow whatever the guesser sends.
    dependencies=[Depends(rate_limited("login", key=client_address))],
    responses={401: {"description": "wrong token"}, 429: {"description": "too many attempts"}},
)
def login(body: LoginRequest, request: Request, response: Response, settings: SettingsDep) -> SessionState:
    if not settings.api_token:
        return SessionState(auth_required=False, authenticated=True)
    if not token_matches(body.token, settings.api_token):
        raise HTTPException(status_code=401, detail="invalid token")
    response.set_cookie(
        SESSION_COOKIE,
        make_session_value(settings.api_token),
        max_age=SESSION_MAX_AGE_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return SessionState(auth_required=True, authenticated=True)


@router.post("/logout", response_model=SessionState)
def logout(request: Request, response: Response, settings: SettingsDep) -> SessionState:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return SessionState(auth_required=bool(settings.api_token), authenticated=not settings.api_token)
