"""Start-up: probe Redis once, then serve from Redis, start on memory, or refuse to start.

The one rule of every entry point that can fall back (the fallback services' factories
:func:`~adk_redis.resilience.create_session_service` / ``create_memory_service`` and the design API's
:func:`~adk_redis.store.create_session_store`): Redis answers -> Redis; it does not and
``REDIS_FALLBACK_TO_MEMORY`` is true -> memory until it answers (a warning, the breaker starts open);
otherwise :class:`~adk_redis.errors.RedisUnavailableError`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..config import RedisSettings
from ..errors import RedisUnavailableError
from ._breaker import UNAVAILABLE_ERRORS


async def probe_at_start(
    ping: Callable[[], Awaitable[Any]], *, settings: RedisSettings, where: str, log: logging.Logger
) -> bool:
    """PING once (bounded by the client's operation deadline): True when Redis answers, False when it
    does not and the settings fall back to memory (logged), else :class:`RedisUnavailableError`."""
    try:
        await ping()
    except UNAVAILABLE_ERRORS as exc:
        if not settings.redis_fallback_to_memory:
            raise RedisUnavailableError(
                f"Redis at {where} is unreachable ({exc}) and REDIS_FALLBACK_TO_MEMORY is false",
                kind=getattr(exc, "kind", "refused"),
            ) from exc
        log.warning("Redis at %s is unreachable (%s); serving from memory until it answers", where, exc)
        return False
    return True
