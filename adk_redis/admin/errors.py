"""How the CLI classifies an exception into an exit code (the table in docs/reference/cli.md).

:func:`classify` is the one place that maps an exception to an exit code.  Every
exception class of redis-py (``redis.exceptions``) maps to a row of the table
(``tests/test_cli_errors.py`` checks each one); anything else is a bug and is
re-raised with its traceback.
"""

from __future__ import annotations

from redis.exceptions import (
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    AuthorizationError,
    BusyLoadingError,
    DataError,
    InvalidResponse,
    NoPermissionError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
)

from .._core.connection import NEEDS_PASSWORD, NEEDS_PASSWORD_HINT
from .._core.url import redact_url
from ..errors import (
    ConfigurationError,
    CorruptedDataError,
    RedisOutOfMemoryError,
    RedisPermissionError,
    RedisUnavailableError,
)
from ..resilience._breaker import UNAVAILABLE_ERRORS
from .common import (
    EXIT_CONNECTION,
    EXIT_DATA,
    EXIT_PERMISSION,
    EXIT_USAGE,
    CliError,
)

__all__ = ["UNAVAILABLE_ERRORS", "classify"]

_AUTH_MARKERS = ("NOAUTH", "WRONGPASS", "authenticated", "invalid password", "invalid username")
_REFUSALS = ("READONLY", "LOADING", "MASTERDOWN", "BUSY", "OOM", "CLUSTERDOWN", "TRYAGAIN", "MOVED", "ASK")


def _is_redis_py(exc: BaseException) -> bool:
    """An exception class defined by redis-py (``redis.exceptions`` and friends)."""
    return any(cls.__module__.split(".")[0] == "redis" for cls in type(exc).__mro__[:-2])


def classify(exc: BaseException, url: str) -> CliError | None:
    """The CliError (message + exit code) for an exception a user or a server can cause; None for a bug."""
    where = redact_url(url)
    message = str(exc) or type(exc).__name__
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, ConfigurationError):
        return CliError(message, EXIT_USAGE)
    if isinstance(exc, RedisUnavailableError):  # adk_redis' one line: the server, the fault, the command
        return CliError(message, EXIT_CONNECTION)
    if isinstance(exc, InvalidResponse):
        # e.g. an HTTP server on the port: 'Protocol error, got "<" as reply type byte'
        return CliError(
            f"the server at {where} does not speak the Redis protocol ({message}); "
            "is this the right host and port?",
            EXIT_CONNECTION,
        )
    if any(m in message for m in NEEDS_PASSWORD) and "WRONGPASS" not in message:
        return CliError(
            f"authentication required: the server at {where} needs a password; {NEEDS_PASSWORD_HINT}",
            EXIT_CONNECTION,
        )
    if isinstance(
        exc, (AuthenticationError, AuthorizationError, AuthenticationWrongNumberOfArgsError)
    ) or any(m in message for m in _AUTH_MARKERS):
        return CliError(f"authentication failed at {where}: {message}", EXIT_CONNECTION)
    if isinstance(exc, (NoPermissionError, RedisPermissionError)) or "NOPERM" in message:
        return CliError(f"permission denied at {where}: {message}", EXIT_PERMISSION)
    if isinstance(exc, CorruptedDataError):
        return CliError(f"corrupted data: {message}", EXIT_DATA)
    if isinstance(exc, RedisOutOfMemoryError):
        return CliError(message, EXIT_CONNECTION)
    if isinstance(exc, DataError):
        # redis-py refused to encode an argument or decode a reply: the data handled was not what it expects
        return CliError(f"invalid data for Redis at {where}: {message}", EXIT_DATA)
    if isinstance(exc, (BusyLoadingError, ReadOnlyError)):
        return CliError(f"{where} refused the command: {message}", EXIT_CONNECTION)
    if isinstance(exc, ResponseError):
        if "DB index is out of range" in message or "invalid DB index" in message:
            return CliError(f"{where}: the server has no such database ({message})", EXIT_USAGE)
        if message.startswith(_REFUSALS):
            return CliError(f"{where} refused the command: {message}", EXIT_CONNECTION)
        return CliError(f"{where} answered with an error: {message}", EXIT_CONNECTION)
    if isinstance(exc, UNAVAILABLE_ERRORS):
        return CliError(f"cannot reach Redis at {where}: {message}", EXIT_CONNECTION)
    if isinstance(exc, (RedisError, RedisClusterException)) or _is_redis_py(exc):
        # every other redis-py error (WatchError, PubSubError, LockError, ClusterError, ...)
        return CliError(f"Redis at {where} failed: {type(exc).__name__}: {message}", EXIT_CONNECTION)
    return None
