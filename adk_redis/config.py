"""Configuration: the design's environment variables as one pydantic-settings model."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigurationError
from .url import RedisURL, parse_redis_url, redact_url

__all__ = [
    "ConfigurationError",
    "RedisSettings",
    "RedisURL",
    "load_settings",
    "parse_redis_url",
    "redact_url",
]

_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.\-:]{1,64}$")


_SECRET_FIELDS = frozenset({"REDIS_ENCRYPTION_KEYS", "REDIS_PASSWORD"})


class RedisSettings(BaseSettings):
    """Settings read from the environment (explicit arguments win).

    Every field maps to the upper-case environment variable of the same name,
    e.g. ``redis_url`` <- ``REDIS_URL``.
    """

    model_config = SettingsConfigDict(extra="ignore", validate_default=True)

    redis_enabled: bool = True
    redis_url: str = "redis://localhost:6379"
    redis_db: int | None = Field(default=None, ge=0)
    redis_password: str | None = None
    redis_max_connections: int = Field(default=50, ge=1)
    redis_retry_attempts: int = Field(default=3, ge=0)
    redis_socket_timeout: float = Field(default=5.0, gt=0)
    redis_connect_timeout: float = Field(default=2.0, gt=0)
    # Deadline of one operation (command, script or pipeline), connection setup and redis-py's retries
    # included; a stalled server fails it with RedisUnavailableError (adk_redis.connection). 0: none.
    redis_operation_timeout: float = Field(default=5.0, ge=0)
    redis_fallback_to_memory: bool = True
    # Circuit breaker of the fallback services: consecutive failures that open it, seconds between PINGs.
    redis_failure_threshold: int = Field(default=3, ge=1)
    redis_health_check_interval: float = Field(default=5.0, gt=0)
    redis_key_prefix: str = "vana"
    session_ttl_hours: float | None = Field(default=None, gt=0)
    # The design API's store (get_session_store()): live sessions allowed (a soft cap checked at creation).
    store_max_sessions: int = Field(default=10_000, ge=1)
    # Stale writers (a session object behind storage): "reject" as DatabaseSessionService, or "merge"
    # appends whose state keys nobody else wrote since (adk_redis.session_service).
    session_stale_policy: Literal["reject", "merge"] = "reject"
    memory_ttl_hours: float = Field(default=72, gt=0)
    knowledge_ttl_hours: float = Field(default=168, gt=0)
    history_ttl_hours: float = Field(default=720, gt=0)
    # Bounded work per memory script call: distinct terms indexed per document / searched per query
    # (the rest is ignored and logged, never an error).
    memory_max_terms_per_document: int = Field(default=1000, ge=1)
    memory_max_query_terms: int = Field(default=64, ge=1)
    # "kid1:<base64 key>,kid0:<base64 old key>": the first encrypts, all decrypt (adk_redis.crypto).
    redis_encryption_keys: SecretStr | None = None
    # zlib-compress event / state payloads of at least this many bytes (None/0: never).
    redis_compress_min_bytes: int | None = Field(default=None, ge=1)

    @field_validator("redis_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parse_redis_url(value)  # ConfigurationError (a ValueError) naming the offending part
        return value

    @field_validator("redis_key_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not _PREFIX_RE.match(value):
            raise ValueError(
                "must be 1-64 characters of letters, digits, '_', '.', '-', ':' "
                "(no braces, spaces or glob characters)"
            )
        return value

    @field_validator("redis_encryption_keys")
    @classmethod
    def _check_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        from .crypto import parse_keyring

        parse_keyring(value.get_secret_value())  # KeyringError messages never contain key material
        return value

    @field_validator("session_ttl_hours", "redis_compress_min_bytes", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("", "none", "0"):
            return None
        return value


#: Setting -> the constructor argument that overrides it (named in errors about an explicit value).
_ARGUMENT_NAMES = {
    "redis_key_prefix": "key_prefix",
    "session_stale_policy": "stale_policy",
    "session_ttl_hours": "session_ttl_hours",
    "redis_url": "uri",
}


def load_settings(**overrides: Any) -> RedisSettings:
    """Build settings from the environment plus explicit overrides.

    Raises:
      ConfigurationError: naming the offending variable(s).
    """
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return RedisSettings(**clean)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            name = field.upper() or "settings"
            got = "<redacted>" if name in _SECRET_FIELDS else repr(err.get("input"))
            if name == "REDIS_URL":
                got = repr(redact_url(str(err.get("input"))))
            if field in clean:  # an explicit argument, not the environment variable
                name = f"{_ARGUMENT_NAMES.get(field, field)} ({name})"
            parts.append(f"{name}: {err['msg']} (got {got})")
        raise ConfigurationError("Invalid adk_redis configuration: " + "; ".join(parts)) from None
