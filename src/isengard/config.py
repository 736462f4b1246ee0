"""Settings: one pydantic-settings model read from the environment (ISENGARD_ prefix) and a `.env` file.

Invalid settings raise `SettingsError` with a one-line message that names the setting, so the CLI can stop
with that line instead of a traceback.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# A token that guards an address other machines reach must not be guessable in a few thousand tries.
MIN_EXPOSED_TOKEN_CHARS = 16


class Mode(StrEnum):
    FAST_TEST = "fast-test"
    PRODUCTION = "production"


class SettingsError(ValueError):
    """A setting has a value Isengard cannot start with; the message names it."""


def _cuda_available() -> bool:
    # Imported lazily: reading settings must not pay for importing torch.
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ISENGARD_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    mode: Mode | None = Field(default=None, description="fast-test (tiny local model) or production (FLUX.1-dev)")
    data_dir: Path = Field(default=Path("./data"))
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "ISENGARD_DATABASE_URL")
    )
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL", "ISENGARD_REDIS_URL"))
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    api_token: str | None = None
    # NoDecode: the environment gives plain comma-separated lists, which `_comma_list` splits (JSON lists work too).
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Host names answered without a token besides 127.0.0.1, localhost and [::1] (e.g. this machine's name).
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_level: str = "INFO"
    # None: JSON lines unless the logs go to a terminal (then plain text a person can read).
    log_json: bool | None = None
    # The built web app; by default web/dist beside the source tree (an image installs the package elsewhere).
    web_dist: Path | None = None

    # Where the real base model lives in production: a local folder or a Hugging Face cache id (offline).
    base_model: str = "black-forest-labs/FLUX.1-dev"
    base_model_path: Path | None = None
    # Each plugin reads its own settings (ISENGARD_AI_TOOLKIT_*, ISENGARD_COMFYUI_*): see its settings model.
    # Extra modules to import plugins from (comma separated), besides the installed entry points.
    plugin_modules: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # The largest JSON body (forms, captions, client logs) the API reads; larger ones are refused with 413 before
    # they are parsed. The login's body is bounded separately (a few KiB) and uploads by the limits below.
    max_json_body_bytes: int = Field(default=1024 * 1024, ge=16 * 1024)
    # Upload limits.
    max_upload_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(default=50_000_000, ge=64 * 64)
    # The decoded pixels of all images of one upload request together, and how many images the API process
    # decodes at once (each holds its full decoded pixels while it is measured and stored).
    max_request_pixels: int = Field(default=250_000_000, ge=64 * 64)
    max_concurrent_decodes: int = Field(default=2, ge=1, le=64)
    max_files_per_request: int = Field(default=200, ge=1)
    max_zip_uncompressed_bytes: int = Field(default=1024 * 1024 * 1024, ge=1024)
    max_zip_entries: int = Field(default=1000, ge=1)
    max_lora_upload_bytes: int = Field(default=2 * 1024 * 1024 * 1024, ge=1024)
    # LoRA imports the API process loads at once (each holds the whole file in memory); others wait their turn.
    max_concurrent_lora_imports: int = Field(default=1, ge=1, le=16)
    # An upload whose body stalls this long, or takes longer than the total, is answered 408.
    upload_idle_timeout_seconds: float = Field(default=30.0, gt=0)
    upload_timeout_seconds: float = Field(default=3600.0, gt=0)

    # Connections: a request head must arrive within this after a connection opens (or after its previous
    # response), and a JSON body may pause this long between its pieces; then the connection is closed / 408.
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    body_timeout_seconds: float = Field(default=30.0, gt=0)
    # Open connections (SSE streams included) the API serves at once; past it new requests get 503. Below the
    # open-file limit, so a flood of sockets is refused before the process runs out of descriptors.
    max_connections: int = Field(default=1000, ge=1)
    # Behind a reverse proxy: believe X-Forwarded-For / -Proto, only from these addresses (comma separated).
    proxy_headers: bool = False
    forwarded_allow_ips: str = "127.0.0.1"

    # Job system.
    lease_seconds: float = Field(default=30.0, gt=0)
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    job_timeout_seconds: float = Field(default=24 * 3600.0, gt=0)
    # How long a job past its timeout may take to stop on its own before the worker gives up on it and exits.
    job_timeout_grace_seconds: float = Field(default=30.0, gt=0)
    event_stream_maxlen: int = Field(default=5000, ge=100)
    workers: int = Field(default=1, ge=0, le=64, description="workers `isengard up` starts")
    # Torch CPU threads per worker; unset means torch's default (one per core), or 1 in fast-test mode where
    # tiny-model steps are too small to gain from threads and several processes share the cores.
    torch_threads: int | None = Field(default=None, ge=1)
    # Score every training sample (identity, adherence, copying) on a thread beside the run.
    score_samples: bool = True

    # Rate limits: requests per minute per client on the expensive routes.
    rate_limit_generation: int = Field(default=60, ge=1)
    rate_limit_training: int = Field(default=30, ge=1)
    rate_limit_uploads: int = Field(default=120, ge=1)
    rate_limit_logs: int = Field(default=300, ge=1)
    # Failed and successful logins per client address: slows down guessing the API token.
    rate_limit_login: int = Field(default=10, ge=1)
    # Requests with a wrong token or session per client address: slows down guessing the token as a bearer.
    rate_limit_auth_failures: int = Field(default=20, ge=1)

    # Uploads and saved artifacts are refused while the data folder's disk has less free space than this.
    min_free_bytes: int = Field(default=256 * 1024 * 1024, ge=0)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return upper

    @field_validator("cors_origins", "plugin_modules", "allowed_hosts", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            stripped = value.strip()
            if stripped.startswith("["):
                import json

                return json.loads(stripped)
            return [item.strip() for item in stripped.split(",") if item.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _known_redis(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL")
        return value

    @field_validator("api_token")
    @classmethod
    def _token_not_blank(cls, value: str | None) -> str | None:
        # An empty token would lock every route while the login page says no login is needed.
        if value is not None and not value.strip():
            raise ValueError("is empty: set a token, or remove the setting to run without one on loopback")
        return value

    @model_validator(mode="after")
    def _exposed_needs_token(self) -> Settings:
        if not is_loopback(self.host) and not self.api_token:
            raise ValueError(
                f"ISENGARD_HOST={self.host} exposes Isengard beyond this machine: set ISENGARD_API_TOKEN too"
            )
        if not is_loopback(self.host) and self.api_token and len(self.api_token) < MIN_EXPOSED_TOKEN_CHARS:
            raise ValueError(
                f"ISENGARD_API_TOKEN is too short for ISENGARD_HOST={self.host}: use at least "
                f"{MIN_EXPOSED_TOKEN_CHARS} characters when binding beyond loopback"
            )
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ValueError("ISENGARD_HEARTBEAT_SECONDS must be shorter than ISENGARD_LEASE_SECONDS")
        return self

    # Derived values ---------------------------------------------------------------------------------------------

    @cached_property
    def resolved_mode(self) -> Mode:
        if self.mode is not None:
            return self.mode
        return Mode.PRODUCTION if _cuda_available() else Mode.FAST_TEST

    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # The documented form names no driver, and SQLAlchemy's default for it changed between versions
            # (psycopg2 in 2.0, psycopg 3 in 2.1): name the one the project installs. An explicit driver is kept.
            if url.startswith("postgresql://"):
                return "postgresql+psycopg://" + url.removeprefix("postgresql://")
            return url
        return f"sqlite:///{self.data_path / 'isengard.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    @property
    def embedded_redis(self) -> bool:
        return not self.redis_url

    @property
    def public_url(self) -> str:
        shown = "127.0.0.1" if self.host in {"0.0.0.0", "::"} else self.host
        return f"http://{shown}:{self.port}"


_ENV_NAMES = {"database_url": "DATABASE_URL", "redis_url": "REDIS_URL"}


def _env_name(field: str) -> str:
    if field.isupper():  # already the environment alias (DATABASE_URL, REDIS_URL)
        return field
    return _ENV_NAMES.get(field, f"ISENGARD_{field.upper()}")


def load_settings(**overrides: Any) -> Settings:
    """Read settings; raise SettingsError with one line naming the bad setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(part) for part in first.get("loc", ()) if part != "__root__"]
        message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        if loc:
            raise SettingsError(f"invalid setting {_env_name(loc[0])}: {message}") from None
        raise SettingsError(f"invalid settings: {message}") from None
