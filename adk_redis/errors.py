"""Typed errors raised by adk_redis (ADK's own errors are re-used where they exist).

Every adk_redis error derives from :class:`AdkRedisError`. Errors that are also a
standard category derive from that category too (``ValueError``,
``ConnectionError``, ``PermissionError``, ``MemoryError`` is deliberately not used:
it means the Python process is out of memory).
"""

from __future__ import annotations

from typing import Any

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
    """Redis could not serve the call: down, reset, stalled past a timeout, or refusing for now.

    Raised for a refused or reset connection, a connection closed mid-reply, a socket timeout or the
    operation deadline (``REDIS_OPERATION_TIMEOUT``), and the "not now" replies ``LOADING``,
    ``READONLY``, ``MASTERDOWN``, ``CLUSTERDOWN``, ``TRYAGAIN`` and ``BUSY`` (after redis-py's
    retries).  It is a built-in :class:`ConnectionError` *and* redis-py's
    ``redis.exceptions.ConnectionError``, so ``except ConnectionError`` and
    ``except redis.exceptions.ConnectionError`` (or ``RedisError``) both catch it.  ``kind`` says which
    fault it was: ``"refused"``, ``"closed"``, ``"timeout"``, ``"deadline"``, ``"loading"``,
    ``"readonly"``, ``"masterdown"``, ``"clusterdown"``, ``"tryagain"``, ``"busy"``, ``"cluster"``,
    ``"unavailable"`` (other causes, e.g. the breaker or no fallback allowed).

    Nothing this call sent was applied, unless it is a :class:`RedisOutcomeUnknownError`.
    """

    def __init__(self, message: str, *, kind: str = "unavailable") -> None:
        super().__init__(message)
        self.kind = kind

    def __reduce__(self) -> Any:  # picklable across processes despite the keyword argument
        return (_rebuild, (type(self), str(self), self.kind))


class RedisOutcomeUnknownError(RedisUnavailableError):
    """A write was sent but its reply was lost (a timeout, the deadline, a connection cut mid-reply).

    The write may have landed.  Retrying the same call is safe: appends are idempotent per event id,
    and a create retried with the same ``session_id`` from the same service returns the session the
    first attempt stored.
    """


def _rebuild(cls: type[RedisUnavailableError], message: str, kind: str) -> RedisUnavailableError:
    return cls(message, kind=kind)


class RedisOutOfMemoryError(AdkRedisError):
    """Redis refused a write because it reached ``maxmemory`` (``noeviction``).

    A single write wrote nothing.  A batch (``add_events_to_memory`` / ``add_session_to_memory``)
    stops at the first refused document: ``written`` names the ids of the documents stored before it
    (empty: nothing was written).  Re-running the same batch once memory is freed is safe (idempotent
    per event id).
    """

    def __init__(self, message: str, *, written: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.written = written

    def __reduce__(self) -> Any:
        return (_rebuild_oom, (str(self), self.written))


def _rebuild_oom(message: str, written: tuple[str, ...]) -> RedisOutOfMemoryError:
    return RedisOutOfMemoryError(message, written=written)


class RedisPermissionError(AdkRedisError, PermissionError):
    """The Redis ACL user may not run a command (NOPERM); the message names the command."""


class InvalidInputError(AdkRedisError, ValueError):
    """An id, state key or value, or event that cannot be stored: not valid Unicode text (a lone
    surrogate), bytes that are not UTF-8, nested deeper than JSON encoding allows, or otherwise not
    representable as JSON.  The message names the argument; nothing was written."""


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


class DurabilityError(RedisOutcomeUnknownError):
    """A write the primary applied, but fewer replicas than ``REDIS_WAIT_REPLICAS`` confirmed within
    ``REDIS_WAIT_TIMEOUT_MS`` (or the primary's AOF fsync, ``WAITAOF``, was not confirmed).

    The write is on the primary and may or may not survive a failover: its outcome is unknown, hence a
    :class:`RedisOutcomeUnknownError` (``kind="durability"``).  Retrying the same call is safe
    (appends are idempotent per event id, creates per creation token, deletes and memory puts by
    nature) and confirms it once the replicas catch up.  The session object passed in is not updated.
    ``requested`` / ``acknowledged`` count replicas; ``fsynced`` is False when WAITAOF timed out.
    """

    def __init__(
        self,
        message: str,
        *,
        requested: int = 0,
        acknowledged: int = 0,
        fsynced: bool = True,
        kind: str = "durability",
    ) -> None:
        super().__init__(message, kind=kind)
        self.requested = requested
        self.acknowledged = acknowledged
        self.fsynced = fsynced

    def __reduce__(self) -> Any:
        return (_rebuild_durability, (str(self), self.requested, self.acknowledged, self.fsynced))


def _rebuild_durability(message: str, requested: int, acknowledged: int, fsynced: bool) -> DurabilityError:
    return DurabilityError(message, requested=requested, acknowledged=acknowledged, fsynced=fsynced)


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
