"""Configuration: the design's environment variables as one pydantic-settings model."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ._core.kwargs import known_fields
from ._core.url import RedisURL, parse_redis_url, redact_url
from .errors import ConfigurationError

__all__ = [
    "ConfigurationError",
    "RedisSettings",
    "RedisURL",
    "client_url",
    "load_settings",
    "parse_redis_url",
    "redact_url",
    "resolve_settings",
    "url_settings",
]

_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.\-:]{1,64}$")


#: The socket timeout's share of the operation deadline when REDIS_SOCKET_TIMEOUT is not set.
SOCKET_SHARE = 0.4

_SECRET_FIELDS = frozenset({"REDIS_ENCRYPTION_KEYS", "REDIS_PASSWORD"})


class RedisSettings(BaseSettings):
    """Settings read from the environment (explicit arguments win).

    Every field maps to the upper-case environment variable of the same name,
    e.g. ``redis_url`` <- ``REDIS_URL``.
    """

    model_config = SettingsConfigDict(extra="ignore", validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        return known_fields(cls, data)  # a misspelt argument is a TypeError naming the fields

    redis_enabled: bool = True
    redis_url: str = "redis://localhost:6379"
    redis_db: int | None = Field(default=None, ge=0)
    redis_password: str | None = None
    redis_max_connections: int = Field(default=50, ge=1)
    redis_retry_attempts: int = Field(default=3, ge=0)
    # Seconds one attempt waits for a reply before redis-py retries it.  Not set: 40 % of the operation
    # deadline (2 s of the default 5 s), so redis-py can retry a lost reply within the deadline; 5 s
    # when there is no deadline (REDIS_OPERATION_TIMEOUT=0).
    redis_socket_timeout: float = Field(default=5.0, gt=0)
    redis_connect_timeout: float = Field(default=2.0, gt=0)
    # Deadline of one operation (command, script or pipeline), connection setup and redis-py's retries
    # included; a stalled server fails it with RedisUnavailableError, or RedisOutcomeUnknownError for a
    # write that was sent (adk_redis._core.connection). 0: none.
    redis_operation_timeout: float = Field(default=5.0, ge=0)
    redis_fallback_to_memory: bool = True
    # Durability (adk_redis._core.durability): every acknowledged write of the session and memory
    # services waits until this many replicas have it (WAIT, in the write's round trip); fewer within
    # redis_wait_timeout_ms raise DurabilityError (the write is on the primary). 0: do not wait.
    redis_wait_replicas: int = Field(default=0, ge=0)
    redis_wait_timeout_ms: int = Field(default=1000, ge=1)
    # With redis_wait_replicas > 0, opt-in: also WAITAOF 1 0 (the primary fsynced its AOF) when the
    # primary supports it (Redis >= 7.2) and has appendonly yes, decided from the first write's reply.
    # Under appendfsync everysec every write then waits for the next fsync (~1 s, docs/benchmarks.md,
    # "The replica wait").
    redis_wait_aof: bool = False
    # Circuit breaker of the fallback services: consecutive failures that open it, seconds between PINGs.
    redis_failure_threshold: int = Field(default=3, ge=1)
    redis_health_check_interval: float = Field(default=5.0, gt=0)
    # Fallback write-back (adk_redis.fallback): conflicts held in memory at most; past the cap they spill
    # to a Redis LIST (keys.writeback_conflicts), or to this JSON-lines file when Redis refuses them.
    redis_writeback_max_conflicts: int = Field(default=10_000, ge=0)
    redis_writeback_conflicts_file: str | None = None
    redis_key_prefix: str = "vana"
    session_ttl_hours: float | None = Field(default=None, gt=0)
    # The design API's store (get_session_store()): live sessions allowed (a soft cap checked at creation).
    store_max_sessions: int = Field(default=10_000, ge=1)
    # Stale writers (a session object behind storage): "reject" as DatabaseSessionService, "merge"
    # appends whose state keys nobody else wrote since, "lww" appends all, per key the later timestamp
    # wins (adk_redis.sessions._service).
    session_stale_policy: Literal["reject", "merge", "lww"] = "reject"
    memory_ttl_hours: float = Field(default=72, gt=0)
    knowledge_ttl_hours: float = Field(default=168, gt=0)
    history_ttl_hours: float = Field(default=720, gt=0)
    # Deleting a session (not its TTL expiry) also deletes the turn memories ingested from it.
    delete_memories_with_session: bool = True
    # search_memory: at most this many memories, none scoring below the minimum (the ranking's own scale)
    memory_search_limit: int = Field(default=10, ge=1)
    memory_min_score: float = Field(default=0.0, ge=0)
    # Bounded work per memory script call: distinct terms indexed per document / searched per query
    # (the rest is ignored and logged, never an error).
    memory_max_terms_per_document: int = Field(default=1000, ge=1)
    memory_max_query_terms: int = Field(default=64, ge=1)
    # Memory generation (adk_redis.memory): the model name of a MemoryGenerator (None: no generation)
    # and which documents search_memory returns ("all", "facts" or "turns").
    memory_generator_model: str | None = None
    memory_search_kinds: Literal["all", "facts", "turns"] = "all"
    # "kid1:<base64 key>,kid0:<base64 old key>": the first encrypts, all decrypt (adk_redis._core.crypto).
    redis_encryption_keys: SecretStr | None = None
    # zlib-compress event / state payloads of at least this many bytes (None/0: never).
    redis_compress_min_bytes: int | None = Field(default=None, ge=1)
    # The URL whose adk_redis query parameters (key_prefix, ...) these settings already include.
    _url_applied: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _derive_socket_timeout(self) -> RedisSettings:
        """REDIS_SOCKET_TIMEOUT not given: 40 % of the operation deadline (see the field)."""
        if "redis_socket_timeout" not in self.model_fields_set and self.redis_operation_timeout > 0:
            self.redis_socket_timeout = round(max(0.05, self.redis_operation_timeout * SOCKET_SHARE), 3)
        return self

    @model_validator(mode="after")
    def _check_wait(self) -> RedisSettings:
        if self.redis_wait_replicas:
            wait = self.redis_wait_timeout_ms / 1000
            if self.redis_operation_timeout and wait >= self.redis_operation_timeout:
                raise ValueError(
                    f"REDIS_WAIT_TIMEOUT_MS ({self.redis_wait_timeout_ms}) must be below "
                    f"REDIS_OPERATION_TIMEOUT ({self.redis_operation_timeout:g} s)"
                )
            if wait >= self.redis_socket_timeout:
                raise ValueError(
                    f"REDIS_WAIT_TIMEOUT_MS ({self.redis_wait_timeout_ms}) must be below "
                    f"REDIS_SOCKET_TIMEOUT ({self.redis_socket_timeout:g} s; when not set, 40 % of "
                    "REDIS_OPERATION_TIMEOUT): the WAIT reply comes after it"
                )
        return self

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
        from ._core.crypto import parse_keyring

        parse_keyring(value.get_secret_value())  # KeyringError messages never contain key material
        return value

    @field_validator(
        "session_ttl_hours", "redis_compress_min_bytes", "redis_writeback_conflicts_file", mode="before"
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("", "none", "0"):
            return None
        return value


#: adk_redis' URL query parameter -> the setting it overrides.
_URL_SETTINGS = {
    "key_prefix": "redis_key_prefix",
    "session_ttl_hours": "session_ttl_hours",
    "stale_policy": "session_stale_policy",
    "search_limit": "memory_search_limit",
    "min_score": "memory_min_score",
    "generator_model": "memory_generator_model",
    "search_kinds": "memory_search_kinds",
    "wait_replicas": "redis_wait_replicas",
    "wait_timeout_ms": "redis_wait_timeout_ms",
    "wait_aof": "redis_wait_aof",
}


def url_settings(url: str | None) -> dict[str, Any]:
    """The settings ``url``'s adk_redis query parameters override (``?key_prefix=`` -> redis_key_prefix).

    As the ``adk web`` registry reads them: ``session_ttl_hours=none`` (or 0) sets nothing.

    Raises:
      ConfigurationError: a malformed URL.
    """
    if not url:
        return {}
    out: dict[str, Any] = {}
    for name, value in parse_redis_url(url).ours.items():
        if name == "session_ttl_hours" and value.strip().lower() in ("", "none", "0"):
            continue
        if name in ("wait_replicas", "wait_timeout_ms"):
            out[_URL_SETTINGS[name]] = int(value)
            continue
        out[_URL_SETTINGS[name]] = float(value) if name == "session_ttl_hours" else value
    return out


def resolve_settings(
    settings: RedisSettings | None, uri: str | None = None, **overrides: Any
) -> RedisSettings:
    """The settings of a service built from ``settings`` (or the environment), ``uri`` and arguments.

    Precedence, lowest first: the environment (``REDIS_KEY_PREFIX``, ...) or ``settings``; the
    adk_redis query parameters of ``REDIS_URL`` / ``uri`` (``?key_prefix=``, ``?session_ttl_hours=``,
    ``?stale_policy=``, ``?wait_replicas=``, ``?wait_timeout_ms=``, ``?wait_aof=``); explicit
    ``overrides`` (constructor arguments; None = not given).

    Raises:
      ConfigurationError: naming the offending argument, variable or part of the URL.
    """
    explicit = {k: v for k, v in overrides.items() if v is not None}
    from_uri = {k: v for k, v in url_settings(uri).items() if k not in explicit}
    if settings is None:
        resolved = load_settings(**from_uri, **explicit)
    else:
        update = {**from_uri, **explicit}
        resolved = settings.model_copy(update=update) if update else settings.model_copy()
        resolved._url_applied = settings._url_applied
    if uri is not None:
        resolved._url_applied = uri
    return resolved


def client_url(settings: RedisSettings, url: str) -> str:
    """``url`` without adk_redis' query parameters: what redis-py gets (``connection.new_client``).

    Its ``key_prefix`` must be the one ``settings`` use unless ``settings`` were resolved with this URL
    (:func:`resolve_settings`, ``REDIS_URL`` in :func:`load_settings`): a service must not use one prefix
    while its URL names another.

    Raises:
      ConfigurationError: a malformed URL, or a ``key_prefix`` the settings do not use.
    """
    checked = parse_redis_url(url)
    prefix = checked.ours.get("key_prefix")
    if prefix is not None and settings._url_applied != url and prefix != settings.redis_key_prefix:
        raise ConfigurationError(
            f"Invalid Redis URL {checked.redacted!r}: key_prefix={prefix!r} differs from the key prefix "
            f"{settings.redis_key_prefix!r} this service uses; give the prefix once (in the URL, or as "
            "key_prefix= / REDIS_KEY_PREFIX)"
        )
    return checked.client_url


#: Setting -> the constructor argument that overrides it (named in errors about an explicit value).
_ARGUMENT_NAMES = {
    "redis_key_prefix": "key_prefix",
    "session_stale_policy": "stale_policy",
    "session_ttl_hours": "session_ttl_hours",
    "redis_url": "uri",
    "memory_search_limit": "search_limit",
    "memory_min_score": "min_score",
}


def load_settings(**overrides: Any) -> RedisSettings:
    """Build settings from the environment plus explicit overrides.

    Raises:
      ConfigurationError: naming the offending variable(s).
    """
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = RedisSettings(**clean)
        # REDIS_URL's own query parameters (?key_prefix=...) override the other variables, as on adk web
        # service URIs; explicit overrides still win.
        from_url = {k: v for k, v in url_settings(settings.redis_url).items() if k not in clean}
        if from_url:
            settings = RedisSettings(**clean, **from_url)
        settings._url_applied = settings.redis_url
        return settings
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
