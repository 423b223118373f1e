"""The design's application API (``get_session_store()``, ``store.ensure_session()``,
``store_user_context()``, ...) as a thin facade over the same data ADK uses.

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

import asyncio
import atexit
import json
import logging
import random
import threading
import time
import uuid
import weakref
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from google.adk.errors import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import GetSessionConfig
from google.adk.sessions.session import Session
from google.genai import types

from .._core.connection import create_client
from .._core.kwargs import strict
from .._core.url import redact_url
from ..config import RedisSettings, load_settings
from ..errors import (  # defined in adk_redis.errors, re-exported here
    AdkRedisError,
    RedisUnavailableError,
    SessionAccessError,
    SessionLimitError,
    UnknownSessionError,
)
from ..resilience._startup import probe_at_start
from ..security import access_logger, redact
from ._backends import (
    LocalStoreBackend,
    RedisStats,
    RedisStoreBackend,
    SecurityStats,
    SessionStoreConfig,
    StoreBackend,
)
from ._fallback import FallbackStoreBackend

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

T = TypeVar("T")
logger = logging.getLogger("adk_redis.facade")

STATE_TITLE = "store:title"
STATE_STATUS = "store:status"
STATE_METADATA = "store:metadata"
STATE_CREATED = "store:created_at"
DEFAULT_USER = "anonymous"
"""Owner of sessions created by :meth:`SessionStore.ensure_session` without a user id."""

_RESERVED = frozenset(
    {"id", "session_id", "app_name", "messages", "message_count", "created_at", "updated_at"}
)
_STALE_RETRIES = 32


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


# -- the background loop -------------------------------------------------------
class _LoopThread:
    """One daemon thread running one event loop; everything a store does runs here."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._closed = False
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

    def _check(self, coro: Coroutine[Any, Any, Any], *, sync: bool) -> None:
        if self._closed:
            coro.close()
            raise RuntimeError("The session store is closed.")
        if sync and threading.get_ident() == self._thread.ident:
            coro.close()
            raise RuntimeError(
                "Synchronous session-store methods cannot be called from the store's own event loop; "
                "await the *_async method instead."
            )

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and block the calling thread until it is done."""
        self._check(coro, sync=True)
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the loop without blocking the caller's loop."""
        self._check(coro, sync=False)
        if threading.get_ident() == self._thread.ident:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def stop(self) -> None:
        """Stop the loop (pending tasks are cancelled) and join the thread."""
        if self._closed:
            return
        self._closed = True
        self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.get_ident() != self._thread.ident:
            self._thread.join(timeout=10)


# -- helpers -------------------------------------------------------------------
def _check_session_id(session_id: str) -> str:
    if not isinstance(session_id, str):
        raise TypeError(f"session_id must be str, got {type(session_id).__name__}")
    sid = session_id.strip()
    if not sid:
        raise ValueError("session_id must not be empty")
    return sid


def _json_dict(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a dict, got {type(value).__name__}")
    try:
        return cast(dict[str, Any], json.loads(json.dumps(dict(value))))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-serializable: {exc}") from None


def _metadata_from(extra: Mapping[str, Any]) -> dict[str, Any]:
    """``**metadata`` of ensure_session; a nested ``metadata`` dict (export/import) is merged."""
    out = dict(_json_dict(extra.get("metadata"), "metadata")) if "metadata" in extra else {}
    out.update({k: v for k, v in extra.items() if k not in _RESERVED and k != "metadata"})
    return _json_dict(out, "metadata")


def _message_dict(event: Event) -> dict[str, Any] | None:
    content = event.content
    if content is None or not content.parts:
        return None
    texts = [p.text for p in content.parts if p.text is not None and not p.thought]
    if not texts:
        return None
    return {
        "id": event.id,
        "role": event.author,
        "content": "".join(texts),
        "metadata": dict(event.custom_metadata or {}),
        "timestamp": event.timestamp,
    }


def _summary_dict(session: Session) -> dict[str, Any]:
    state = session.state
    return {
        "id": session.id,
        "app_name": session.app_name,
        "user_id": session.user_id,
        "title": state.get(STATE_TITLE),
        "status": state.get(STATE_STATUS),
        "metadata": dict(state.get(STATE_METADATA) or {}),
        "created_at": state.get(STATE_CREATED),
        "updated_at": session.last_update_time,
    }


def _session_dict(session: Session) -> dict[str, Any]:
    out = _summary_dict(session)
    messages = [m for m in (_message_dict(e) for e in session.events) if m is not None]
    out["messages"] = messages
    out["message_count"] = len(messages)
    return out


def _check_message(message: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    if not isinstance(message, Mapping):
        raise TypeError(f"message must be a dict, got {type(message).__name__}")
    role, content = message.get("role"), message.get("content")
    if not isinstance(role, str) or not role.strip():
        raise ValueError("message['role'] must be a non-empty str")
    if not isinstance(content, str):
        raise TypeError(f"message['content'] must be str, got {type(content).__name__}")
    return role.strip(), content, _json_dict(message.get("metadata"), "message['metadata']")


# -- the store -----------------------------------------------------------------
class SessionStore:
    """The design's session store: sync methods plus ``*_async`` twins (see the module docstring).

    Use :func:`create_session_store` / :func:`get_session_store`; the concrete
    class is the Redis or the in-memory store (``store_type`` says which).
    """

    @property
    def store_type(self) -> str:
        """The store serving now: ``"redis"`` or ``"memory"``."""
        return self.backend.store_type

    @strict
    def __init__(
        self,
        *,
        config: SessionStoreConfig,
        settings: RedisSettings,
        app_name: str,
        runner: _LoopThread,
        backend: StoreBackend,
    ) -> None:
        self.config = config
        self.settings = settings
        self.app_name = app_name
        self.backend = backend
        """Where the records live (:mod:`adk_redis.store._backends`, :mod:`adk_redis.store._fallback`)."""
        self.service = backend.service
        """The ADK session service underneath (runs on the store's loop)."""
        self.memory = backend.memory
        """Cross-session memory on the same backend (use it through the module functions)."""
        self._runner = runner
        self._cleanup_task: asyncio.Task[None] | None = None
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        if config.cleanup_interval_minutes > 0:
            self._runner.run(self._start_cleanup())

    # -- plumbing --------------------------------------------------------------
    async def _guard(self, coro: Coroutine[Any, Any, T]) -> T:
        return await self.backend.guard(coro)

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            return self._runner.run(self._guard(coro))
        finally:
            coro.close()  # no-op once it ran; silences "never awaited" when refused

    async def _acall(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            return await self._runner.arun(self._guard(coro))
        finally:
            coro.close()

    async def _start_cleanup(self) -> None:
        self._cleanup_task = asyncio.get_running_loop().create_task(self._cleanup_loop())

    async def _cleanup_loop(self) -> None:
        interval = self.config.cleanup_interval_minutes * 60
        while True:
            await asyncio.sleep(interval)
            try:
                removed = await self._guard(self.backend.cleanup())
                if removed:
                    logger.info("Background cleanup removed %d expired sessions", removed)
            except Exception as exc:  # keep the loop alive; the next round retries
                logger.warning("Background session cleanup failed: %s", exc)

    async def _deny(self, session_id: str, user_id: str, operation: str) -> None:
        fields = {
            "op": operation,
            "outcome": "denied",
            "app": self.app_name,
            "user": redact(user_id),
            "session": redact(session_id),
        }
        access_logger.warning(
            "%s denied (not the owner) app=%s user=%s session=%s",
            operation,
            self.app_name,
            fields["user"],
            fields["session"],
            extra={"adk_redis": fields},
        )
        await self.backend.record_failure(session_id)

    async def _load(self, owner: str, session_id: str, config: GetSessionConfig | None = None) -> Session:
        session = await self.service.get_session(
            app_name=self.app_name, user_id=owner, session_id=session_id, config=config
        )
        if session is None:
            await self.backend.owner_forget(session_id, owner)
            raise UnknownSessionError(f"Session {session_id!r} does not exist (or has expired).")
        return session

    async def _append(self, owner: str, session_id: str, event: Event, *, full: bool) -> Session:
        """Append ``event``, reloading and retrying when another writer got in first."""
        config = None if full else GetSessionConfig(num_recent_events=1)
        lock = self._locks.get(session_id)
        if lock is None:
            lock = self._locks[session_id] = asyncio.Lock()
        async with lock:  # writers of this store queue here; other instances are retried below
            for attempt in range(_STALE_RETRIES):
                session = await self._load(owner, session_id, config)
                try:
                    await self.service.append_event(session, event)
                    return session
                except StaleSessionError:
                    await asyncio.sleep(random.uniform(0, min(0.05, 0.002 * 2**attempt)))
        raise AdkRedisError(
            f"Session {session_id!r} changed concurrently {_STALE_RETRIES} times in a row; giving up."
        )

    # -- implementation (runs on the store loop) -------------------------------
    async def _ensure(
        self,
        session_id: str,
        user_id: str | int | None,
        title: str | None,
        status: str | None,
        extra: Mapping[str, Any],
    ) -> dict[str, Any]:
        sid = _check_session_id(session_id)
        metadata = _metadata_from(extra)
        wanted = None if user_id is None else str(user_id)
        owner = await self.backend.owner_get(sid)
        if owner is None:
            owner = await self.backend.owner_claim(sid, DEFAULT_USER if wanted is None else wanted)
        if wanted is not None and owner != wanted:
            await self._deny(sid, wanted, "ensure_session")
            raise SessionAccessError(f"Session {sid!r} belongs to another user.")
        try:
            session = await self.service.get_session(app_name=self.app_name, user_id=owner, session_id=sid)
        except RedisUnavailableError:
            # During an outage the fallback cannot tell whether a session it does not hold exists in
            # Redis: ensure creates it in memory; the write-back puts its messages on top of Redis' copy.
            if not isinstance(self.backend, FallbackStoreBackend):
                raise
            session = None
        if session is None:
            session = await self._create(owner, sid, title, status, metadata)
        else:
            delta: dict[str, Any] = {}
            if title is not None and session.state.get(STATE_TITLE) != title:
                delta[STATE_TITLE] = title
            if status is not None and session.state.get(STATE_STATUS) != status:
                delta[STATE_STATUS] = status
            merged = {**(session.state.get(STATE_METADATA) or {}), **metadata}
            if metadata and merged != session.state.get(STATE_METADATA):
                delta[STATE_METADATA] = merged
            if delta:
                event = Event(
                    invocation_id=f"store-{uuid.uuid4().hex}",
                    author="system",
                    actions=EventActions(state_delta=delta),
                )
                session = await self._append(owner, sid, event, full=True)
        await self.backend.owner_touch(sid)
        return _session_dict(session)

    async def _create(
        self, owner: str, sid: str, title: str | None, status: str | None, metadata: dict[str, Any]
    ) -> Session:
        limit = self.config.max_sessions or self.settings.store_max_sessions
        if await self.backend.total_sessions() >= limit:
            await self.backend.owner_forget(sid, owner)
            raise SessionLimitError(
                f"max_sessions={self.config.max_sessions} live sessions exist; "
                "wait for expiry or run cleanup_expired_sessions()"
            )
        created = time.time()
        state = {
            STATE_TITLE: title,
            STATE_STATUS: status or "active",
            STATE_METADATA: metadata,
            STATE_CREATED: created,
        }
        try:
            session = await self.service.create_session(
                app_name=self.app_name, user_id=owner, state=state, session_id=sid
            )
        except AlreadyExistsError:  # a concurrent ensure_session won the race
            return await self._load(owner, sid)
        try:
            summary = {"title": title, "status": state[STATE_STATUS]}
            await self.memory.record_session(owner, sid, summary=summary, timestamp=created)
        except Exception as exc:  # history is auxiliary: never fail the session for it
            logger.warning("Could not record session %s in the user's history: %s", redact(sid), exc)
        return session

    async def _add(self, session_id: str, message: Mapping[str, Any]) -> dict[str, Any]:
        sid = _check_session_id(session_id)
        role, content, metadata = _check_message(message)
        owner = await self.backend.owner_get(sid)
        if owner is None:
            raise UnknownSessionError(
                f"Session {sid!r} does not exist; create it with ensure_session() first."
            )
        event = Event(
            invocation_id=f"store-{uuid.uuid4().hex}",
            author=role,
            content=types.Content(
                role="user" if role == "user" else "model", parts=[types.Part(text=content)]
            ),
            custom_metadata=metadata or None,
        )
        await self._append(owner, sid, event, full=False)
        await self.backend.owner_touch(sid)
        out = _message_dict(event)
        assert out is not None
        return out

    async def _get(self, session_id: str, user_id: str | int | None) -> dict[str, Any] | None:
        sid = _check_session_id(session_id)
        owner = await self.backend.owner_get(sid)
        if owner is None:
            return None
        if user_id is not None and str(user_id) != owner:
            await self._deny(sid, str(user_id), "get_session")
            return None
        session = await self.service.get_session(app_name=self.app_name, user_id=owner, session_id=sid)
        if session is None:
            await self.backend.owner_forget(sid, owner)
            return None
        return _session_dict(session)

    async def _list(self, user_id: str | int | None) -> list[dict[str, Any]]:
        resp = await self.service.list_sessions(
            app_name=self.app_name, user_id=None if user_id is None else str(user_id)
        )
        items = [_summary_dict(s) for s in resp.sessions]
        items.sort(key=lambda d: (d["updated_at"], d["id"]), reverse=True)
        return items

    async def _delete(self, session_id: str, user_id: str | int | None) -> bool:
        sid = _check_session_id(session_id)
        owner = await self.backend.owner_get(sid)
        if owner is None:
            return False
        if user_id is not None and str(user_id) != owner:
            await self._deny(sid, str(user_id), "delete_session")
            return False
        await self.service.delete_session(app_name=self.app_name, user_id=owner, session_id=sid)
        await self.backend.owner_forget(sid, owner)
        return True

    async def _stats(self, include_memory: bool) -> dict[str, Any]:
        redis_stats = await self.backend.redis_stats()
        out = {
            "store_type": self.store_type,
            "app_name": self.app_name,
            "total_sessions": await self.backend.total_sessions(),
            "max_sessions": self.config.max_sessions,
            "session_ttl_hours": self.config.session_ttl_hours,
            "redis": redis_stats,
            "security": await self.backend.security_stats(),
        }
        if include_memory:
            out["memory"] = await self.memory.stats()
        return out

    # -- public API ------------------------------------------------------------
    def ensure_session(
        self,
        session_id: str,
        user_id: str | int | None = None,
        title: str | None = None,
        status: str | None = None,
        **metadata: Any,
    ) -> dict[str, Any]:
        """Get or create the session; owner ``user_id`` (``None``: existing owner, else ``anonymous``).

        Given title/status/metadata update an existing session.  Raises
        :class:`SessionAccessError` when the session belongs to another user.
        """
        return self._call(self._ensure(session_id, user_id, title, status, metadata))

    async def ensure_session_async(
        self,
        session_id: str,
        user_id: str | int | None = None,
        title: str | None = None,
        status: str | None = None,
        **metadata: Any,
    ) -> dict[str, Any]:
        """Async :meth:`ensure_session`."""
        return await self._acall(self._ensure(session_id, user_id, title, status, metadata))

    def add_message(self, session_id: str, message: Mapping[str, Any]) -> dict[str, Any]:
        """Append ``{"role", "content", "metadata"}`` as an ADK event; returns the stored message.

        Raises :class:`UnknownSessionError` for a session that does not exist.
        """
        return self._call(self._add(session_id, message))

    async def add_message_async(self, session_id: str, message: Mapping[str, Any]) -> dict[str, Any]:
        """Async :meth:`add_message`."""
        return await self._acall(self._add(session_id, message))

    def get_session(self, session_id: str, user_id: str | int | None = None) -> dict[str, Any] | None:
        """The session with its messages, or ``None``.

        Another user's session also gives ``None`` and counts as a failed
        attempt; without ``user_id`` there is no ownership check (trusted callers).
        """
        return self._call(self._get(session_id, user_id))

    async def get_session_async(
        self, session_id: str, user_id: str | int | None = None
    ) -> dict[str, Any] | None:
        """Async :meth:`get_session`."""
        return await self._acall(self._get(session_id, user_id))

    def list_sessions(self, user_id: str | int | None = None) -> list[dict[str, Any]]:
        """Session summaries (no messages), newest first; all users when ``user_id`` is None."""
        return self._call(self._list(user_id))

    async def list_sessions_async(self, user_id: str | int | None = None) -> list[dict[str, Any]]:
        """Async :meth:`list_sessions`."""
        return await self._acall(self._list(user_id))

    def delete_session(self, session_id: str, user_id: str | int | None = None) -> bool:
        """Delete the session; False when unknown or owned by another user (counted)."""
        return self._call(self._delete(session_id, user_id))

    async def delete_session_async(self, session_id: str, user_id: str | int | None = None) -> bool:
        """Async :meth:`delete_session`."""
        return await self._acall(self._delete(session_id, user_id))

    def cleanup_expired_sessions(self) -> int:
        """Drop what expired sessions left behind (index entries, owner records); returns the count."""
        return self._call(self.backend.cleanup())

    async def cleanup_expired_sessions_async(self) -> int:
        """Async :meth:`cleanup_expired_sessions`."""
        return await self._acall(self.backend.cleanup())

    def get_redis_stats(self) -> RedisStats:
        """Connection health: redis_available, ping_ms, connection_retries, pool_*, last_error."""
        return self._call(self.backend.redis_stats())

    async def get_redis_stats_async(self) -> RedisStats:
        """Async :meth:`get_redis_stats`."""
        return await self._acall(self.backend.redis_stats())

    def get_security_stats(self) -> SecurityStats:
        """total_failed_attempts, flagged_sessions (shared by every instance on the same Redis)."""
        return self._call(self.backend.security_stats())

    async def get_security_stats_async(self) -> SecurityStats:
        """Async :meth:`get_security_stats`."""
        return await self._acall(self.backend.security_stats())

    def get_stats(self, include_memory: bool = False) -> dict[str, Any]:
        """store_type, total_sessions (from the indexes), redis and security statistics.

        ``include_memory`` adds cross-session counts (O(users + agents): an admin call).
        """
        return self._call(self._stats(include_memory))

    async def get_stats_async(self, include_memory: bool = False) -> dict[str, Any]:
        """Async :meth:`get_stats`."""
        return await self._acall(self._stats(include_memory))

    async def _shutdown(self) -> None:
        if self._cleanup_task is not None:
            self._cleanup_task.cancel()
        await self.backend.close()

    def close(self) -> None:
        """Stop background cleanup, close the connection pool (if owned) and the loop thread."""
        if self.closed:
            return
        try:
            self._runner.run(self._shutdown())
        finally:
            self._runner.stop()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        if self.closed:
            return
        try:
            await self._runner.arun(self._shutdown())
        finally:
            self._runner.stop()

    @property
    def closed(self) -> bool:
        return self._runner._closed


async def _new_client(settings: RedisSettings) -> Any:
    """A client made on the store's loop."""
    return create_client(settings)


# -- factory and singleton -------------------------------------------------------
def _memory_store(
    config: SessionStoreConfig, settings: RedisSettings, app_name: str, reason: str
) -> SessionStore:
    runner = _LoopThread("adk-redis-store-memory")
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
    runner = _LoopThread("adk-redis-store")

    conn = client if client is not None else runner.run(_new_client(settings))
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
