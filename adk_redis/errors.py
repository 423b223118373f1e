"""Typed errors raised by adk_redis (ADK's own errors are re-used where they exist).

Every adk_redis error derives from :class:`AdkRedisError`. Errors that are also a
standard category derive from that category too (``ValueError``,
``ConnectionError``, ``PermissionError``, ``MemoryError`` is deliberately not used:
it means the Python process is out of memory).
"""

from __future__ import annotations

from google.adk.errors import StaleSessionError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError, OutOfMemoryError, ResponseError


class AdkRedisError(Exception):
    """Base class of adk_redis errors."""


class ConfigurationError(AdkRedisError, ValueError):
    """An invalid setting or connection URL; the message names the offending part (passwords redacted)."""


class CorruptedDataError(AdkRedisError, ValueError):
    """A stored record could not be decoded (truncated JSON, wrong type, unknown format)."""


class RedisUnavailableError(AdkRedisError, RedisConnectionError, ConnectionError):
    """Redis could not be reached (down, or stalled past the deadline) and no fallback is allowed."""


class RedisOutOfMemoryError(AdkRedisError):
    """Redis refused a write because it reached ``maxmemory`` (``noeviction``); nothing was written."""


class RedisPermissionError(AdkRedisError, PermissionError):
    """The Redis ACL user may not run a command (NOPERM); the message names the command."""


class InvalidCursorError(AdkRedisError, ValueError):
    """A page cursor that is garbage, was altered, or belongs to another app, user or order."""


class MergeConflictError(AdkRedisError, StaleSessionError):
    """A stale append under ``stale_policy="merge"`` writes a state key another writer changed.

    ``keys`` names the conflicting state keys (``user:``/``app:`` prefixed where they apply).
    """

    def __init__(self, message: str, keys: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.keys = keys


class InvalidSessionIdError(AdkRedisError, ValueError):
    """A session id rejected by the :class:`adk_redis.security.IdPolicy`."""


class AccessRefusedError(AdkRedisError, PermissionError):
    """The source is flagged for enumerating session ids and refusal is on."""


class UnknownSessionError(AdkRedisError, LookupError):
    """No session with this id exists (create it with ``ensure_session`` first)."""


class SessionAccessError(AdkRedisError, PermissionError):
    """The session belongs to another user (the attempt is counted)."""


class SessionLimitError(AdkRedisError):
    """``max_sessions`` live sessions exist already."""


# Error replies caused by stored data of the wrong shape (a foreign key of another Redis type under
# our prefix, a script tripping over a garbage field).
_DATA_ERRORS = ("WRONGTYPE", "user_script", "attempt to ")


def server_error(exc: ResponseError, where: str) -> Exception:
    """The typed error for a Redis error reply: out of memory, no permission, or corrupted data.

    ``where`` names the operation and record.  Any other reply (NOSCRIPT, a Lua
    bug, ...) is returned unchanged, for the caller to re-raise.
    """
    msg = str(exc)
    # redis-py strips the "OOM " / "NOPERM " prefix of the replies it maps to these classes
    if isinstance(exc, OutOfMemoryError) or msg.startswith("OOM") or "used memory > 'maxmemory'" in msg:
        return RedisOutOfMemoryError(
            f"{where}: Redis is out of memory (maxmemory reached, nothing was written): {msg[:160]}"
        )
    if isinstance(exc, NoPermissionError) or "NOPERM" in msg:
        return RedisPermissionError(f"{where}: the Redis user may not run this command: {msg[:200]}")
    if any(marker in msg for marker in _DATA_ERRORS):
        return CorruptedDataError(f"{where}: stored data has the wrong type or layout ({msg[:160]})")
    return exc
