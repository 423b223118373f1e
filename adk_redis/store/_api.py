"""The design's application API (``get_session_store()``, ``store.ensure_session()``,
``store_user_context()``, ...) as a thin facade over the same data ADK uses.

This module holds the entry points: :func:`get_config`, :func:`create_session_store` (Redis, memory,
or the fallback of both), the process-wide store (:func:`get_session_store`), and the module functions
of the design (cross-session memory, statistics).  The store itself is :mod:`adk_redis.store._store`,
its loop thread :mod:`adk_redis.store._loop`, the record shapes :mod:`adk_redis.store._records`.

A facade session *is* an ADK session of the underlying session service
(:class:`~adk_redis.sessions.RedisSessionService`, or ADK's
``InMemorySessionService`` in memory mode): app name ``config.app_name``
(default: the key prefix), user id ``str(user_id)``; title, status and
metadata live in session state under ``store:``-prefixed keys, and every
message is an ADK :class:`Event` (author = role, text content, metadata in
``custom_metadata``).  ADK runners, ``adk web`` and the memory service
therefore see the same conversation.

Threading: each store owns one background thread running one event loop,
and all I/O (the Redis client, the ADK session service) happens on it.

* ``*_async`` methods await that loop without blocking the caller's loop.
* Sync methods submit to that loop and block the calling thread until the
  operation finished (it is persisted when they return).  They work from
  plain synchronous code and also from inside a running event loop, where
  they block that loop for the duration of the call (as the design's sync
  API implies) -- prefer ``*_async`` in async code.  Calling a sync method
  from the store's own loop thread raises :class:`RuntimeError`.
"""

from __future__ import annotations

import atexit
import logging
import threading
from dataclasses import dataclass
from typing import Any

from .._core.connection import adopt_client, create_client
from .._core.kwargs import strict
from .._core.url import redact_url
from ..config import RedisSettings, load_settings
from ..errors import (  # defined in adk_redis.errors, re-exported here
    RedisUnavailableError,
    SessionAccessError,
    SessionLimitError,
    UnknownSessionError,
)
from ..resilience._startup import probe_at_start
from ._backends import (
    LocalStoreBackend,
    RedisStoreBackend,
    SessionStoreConfig,
    StoreBackend,
)
from ._fallback import FallbackStoreBackend
from ._loop import LoopThread
from ._store import SessionStore

__all__ = [
    "AppConfig",
    "SessionAccessError",
    "SessionLimitError",
    "SessionStore",
    "SessionStoreConfig",
    "UnknownSessionError",
    "create_session_store",
    "get_agent_memory",
    "get_config",
    "get_session_history",
    "get_session_store",
    "get_session_store_stats",
    "get_user_context",
    "shutdown_session_store",
    "store_agent_memory",
    "store_user_context",
]

logger = logging.getLogger("adk_redis.facade")


# -- configuration -------------------------------------------------------------
@dataclass(frozen=True)
class AppConfig:
    """What :func:`get_config` returns: ``redis_config`` and ``session_store``."""

    redis_config: RedisSettings
    session_store: SessionStoreConfig


def _store_config_for(settings: RedisSettings) -> SessionStoreConfig:
    return SessionStoreConfig().resolved(settings=settings)


def get_config() -> AppConfig:
    """Read the configuration from the environment (``SESSION_TTL_HOURS``, ``STORE_MAX_SESSIONS``, ...)."""
    settings = load_settings()
    return AppConfig(redis_config=settings, session_store=_store_config_for(settings))


async def _new_client(settings: RedisSettings) -> Any:
    """A client made on the store's loop."""
    return create_client(settings)


# -- factory and singleton -------------------------------------------------------
def _memory_store(
    config: SessionStoreConfig, settings: RedisSettings, app_name: str, reason: str
) -> SessionStore:
    runner = LoopThread("adk-redis-store-memory")
    try:
        backend = LocalStoreBackend(config=config, settings=settings, app_name=app_name, reason=reason)
        return SessionStore(
            config=config, settings=settings, app_name=app_name, runner=runner, backend=backend
        )
    except BaseException:
        runner.stop()
        raise


@strict
def create_session_store(
    config_override: SessionStoreConfig | None = None,
    force_memory: bool = False,
    *,
    client: Any = None,
    settings: RedisSettings | None = None,
) -> SessionStore:
    """Create a store: Redis when enabled and reachable, else the in-memory store.

    ``force_memory=True`` or ``REDIS_ENABLED=false`` gives the in-memory store;
    an unreachable Redis falls back to memory (warning logged) when
    ``REDIS_FALLBACK_TO_MEMORY`` is true, else raises
    :class:`RedisUnavailableError`.  ``client`` injects a ``redis.asyncio``
    client (fakeredis, cluster, ...): it is used only from the store's loop
    and never closed by the store.
    """
    settings = settings or load_settings()
    config = (config_override or SessionStoreConfig()).resolved(settings=settings)
    app_name = config.app_name or settings.redis_key_prefix
    if force_memory:
        return _memory_store(config, settings, app_name, "in-memory store requested (force_memory)")
    if client is None and not settings.redis_enabled:
        return _memory_store(config, settings, app_name, "Redis disabled (REDIS_ENABLED=false)")
    runner = LoopThread("adk-redis-store")

    # an injected client gets the deadline and typed errors of adk_redis' own (adopt_client)
    conn = adopt_client(client, settings) if client is not None else runner.run(_new_client(settings))
    where = redact_url(settings.redis_url) if client is None else "the injected client"
    try:
        reachable = runner.run(probe_at_start(conn.ping, settings=settings, where=where, log=logger))
    except RedisUnavailableError:
        if client is None:
            runner.run(conn.aclose())
        runner.stop()
        raise
    try:
        redis = RedisStoreBackend(
            config=config, settings=settings, app_name=app_name, client=conn, owns_client=client is None
        )
        backend: StoreBackend = redis
        if settings.redis_fallback_to_memory:
            local = LocalStoreBackend(
                config=config, settings=settings, app_name=app_name, reason="Redis outage"
            )
            backend = FallbackStoreBackend(redis, local)
        store = SessionStore(
            config=config, settings=settings, app_name=app_name, runner=runner, backend=backend
        )
        if not reachable and isinstance(backend, FallbackStoreBackend):
            runner.run(backend.open_at_start())  # the health loop runs on the store's loop
        return store
    except BaseException:
        if client is None:
            runner.run(conn.aclose())
        runner.stop()
        raise


_store: SessionStore | None = None
_store_lock = threading.Lock()


@atexit.register
def _close_at_exit() -> None:
    """Close the process-wide store if the application did not (no unclosed-pool warnings)."""
    store = _store
    if store is not None and not store.closed:
        try:
            store.close()
        except Exception as exc:  # interpreter shutdown: report, never raise
            logger.debug("closing the session store at exit failed: %s", exc)


def get_session_store() -> SessionStore:
    """The process-wide store (created on first use from the environment)."""
    global _store
    with _store_lock:
        if _store is None or _store.closed:
            _store = create_session_store()
        return _store


async def shutdown_session_store() -> None:
    """Close the process-wide store (the next :func:`get_session_store` makes a new one)."""
    global _store
    with _store_lock:
        store, _store = _store, None
    if store is not None:
        await store.aclose()


# -- module functions (cross-session memory and statistics) ----------------------
async def store_user_context(user_id: str | int, context_key: str, context_data: dict[str, Any]) -> None:
    """Store (replace) a user-context document for ``user_id`` (TTL ``MEMORY_TTL_HOURS``)."""
    store = get_session_store()
    await store._acall(store.memory.store_user_context(str(user_id), context_key, context_data))


async def get_user_context(user_id: str | int, context_key: str) -> dict[str, Any] | None:
    """The user-context document, or None."""
    store = get_session_store()
    return await store._acall(store.memory.get_user_context(str(user_id), context_key))


async def store_agent_memory(agent_id: str | int, memory_key: str, memory_data: dict[str, Any]) -> None:
    """Store (replace) an agent-memory document (TTL ``MEMORY_TTL_HOURS``)."""
    store = get_session_store()
    await store._acall(store.memory.store_agent_memory(str(agent_id), memory_key, memory_data))


async def get_agent_memory(agent_id: str | int, memory_key: str) -> dict[str, Any] | None:
    """The agent-memory document, or None."""
    store = get_session_store()
    return await store._acall(store.memory.get_agent_memory(str(agent_id), memory_key))


async def get_session_history(user_id: str | int, limit: int = 10) -> list[dict[str, Any]]:
    """The user's sessions, newest first: ``{"session_id", "timestamp", "summary"}``.

    ``ensure_session`` records every session it creates (summary: title, status).
    """
    store = get_session_store()
    return await store._acall(store.memory.get_session_history(str(user_id), limit))


def get_session_store_stats(include_memory: bool = False) -> dict[str, Any]:
    """``{"store_type", "total_sessions", "redis": {"redis_available", ...}, "security", ...}``.

    Index counts only (no SCAN); ``include_memory`` adds the O(users) cross-session counts.
    """
    return get_session_store().get_stats(include_memory=include_memory)
