"""Typed errors raised by adk_redis (ADK's own errors are re-used where they exist).

Every adk_redis error derives from :class:`AdkRedisError`. Errors that are also a
standard category derive from that category too (``ValueError``,
``ConnectionError``, ``PermissionError``, ``MemoryError`` is deliberately not used:
it means the Python process is out of memory).
"""

from __future__ import annotations

from google.adk.errors._stale_session_error import StaleSessionError


class AdkRedisError(Exception):
    """Base class of adk_redis errors."""


class CorruptedDataError(AdkRedisError, ValueError):
    """A stored record could not be decoded (truncated JSON, wrong type, unknown format)."""


class RedisUnavailableError(AdkRedisError, ConnectionError):
    """Redis could not be reached (down, stalled past the deadline) and falling back to memory is not allowed."""


class RedisOutOfMemoryError(AdkRedisError):
    """Redis refused a write because it reached ``maxmemory`` (``noeviction``); nothing was written."""


class RedisPermissionError(AdkRedisError, PermissionError):
    """The Redis ACL user may not run a command (NOPERM); the message names the command."""


class MergeConflictError(AdkRedisError, StaleSessionError):
    """A stale append under ``stale_policy="merge"`` writes a state key another writer changed.

    ``keys`` names the conflicting state keys (``user:``/``app:`` prefixed where they apply).
    """

    def __init__(self, message: str, keys: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.keys = keys
