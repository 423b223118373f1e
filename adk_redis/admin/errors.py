"""How the CLI classifies an exception into an exit code (the README's table)."""

from __future__ import annotations

from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from ..errors import (
    ConfigurationError,
    CorruptedDataError,
    RedisOutOfMemoryError,
    RedisPermissionError,
)
from ..resilience import UNAVAILABLE_ERRORS
from ..url import redact_url
from .common import (
    EXIT_CONNECTION,
    EXIT_DATA,
    EXIT_PERMISSION,
    EXIT_USAGE,
    CliError,
)

__all__ = ["UNAVAILABLE_ERRORS", "classify"]

_AUTH_MARKERS = ("NOAUTH", "WRONGPASS", "authenticated", "invalid password", "invalid username")


def classify(exc: BaseException, url: str) -> CliError | None:
    """The CliError (message + exit code) for an exception a user or a server can cause; None for a bug."""
    where = redact_url(url)
    message = str(exc) or type(exc).__name__
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, ConfigurationError):
        return CliError(message, EXIT_USAGE)
    if isinstance(exc, AuthenticationError) or any(m in message for m in _AUTH_MARKERS):
        return CliError(f"authentication failed at {where}: {message}", EXIT_CONNECTION)
    if isinstance(exc, (NoPermissionError, RedisPermissionError)) or "NOPERM" in message:
        return CliError(f"permission denied at {where}: {message}", EXIT_PERMISSION)
    if isinstance(exc, CorruptedDataError):
        return CliError(f"corrupted data: {message}", EXIT_DATA)
    if isinstance(exc, RedisOutOfMemoryError):
        return CliError(message, EXIT_CONNECTION)
    if isinstance(exc, ResponseError):
        if "DB index is out of range" in message or "invalid DB index" in message:
            return CliError(f"{where}: the server has no such database ({message})", EXIT_USAGE)
        if message.startswith(("READONLY", "LOADING", "MASTERDOWN", "BUSY", "OOM", "CLUSTERDOWN")):
            return CliError(f"{where} refused the command: {message}", EXIT_CONNECTION)
        return CliError(f"{where} answered with an error: {message}", EXIT_CONNECTION)
    if isinstance(exc, UNAVAILABLE_ERRORS):
        return CliError(f"cannot reach Redis at {where}: {message}", EXIT_CONNECTION)
    return None
