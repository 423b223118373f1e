"""The design's :class:`SessionStore`: sync methods plus ``*_async`` twins over an ADK session service.

What it adds to the service: the owner check of every access (a session belongs to one user; another
user's access is refused and counted), the retry of an append another writer got in first, the soft
session cap, the background cleanup, and the sync/async wrappers around its loop thread
(:mod:`adk_redis.store._loop`).  The records' shapes are in :mod:`adk_redis.store._records`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
import weakref
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from google.adk.errors import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import GetSessionConfig
from google.adk.sessions.session import Session
from google.genai import types

from .._core.kwargs import strict
from ..config import RedisSettings
from ..errors import (
    AdkRedisError,
    RedisUnavailableError,
    SessionAccessError,
    SessionLimitError,
    UnknownSessionError,
)
from ..security import access_logger, redact
from ._backends import (
    RedisStats,
    SecurityStats,
    SessionStoreConfig,
    StoreBackend,
)
from ._fallback import FallbackStoreBackend
from ._loop import LoopThread
from ._records import (
    DEFAULT_USER,
    STATE_CREATED,
    STATE_METADATA,
    STATE_STATUS,
    STATE_TITLE,
    check_message,
    check_session_id,
    message_dict,
    metadata_from,
    session_dict,
    summary_dict,
)

T = TypeVar("T")
logger = logging.getLogger("adk_redis.facade")
_STALE_RETRIES = 32


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
        runner: LoopThread,
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
        sid = check_session_id(session_id)
        metadata = metadata_from(extra)
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
        return session_dict(session)

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
        sid = check_session_id(session_id)
        role, content, metadata = check_message(message)
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
        out = message_dict(event)
        assert out is not None
        return out

    async def _owned(
        self, session_id: str, user_id: str | int | None, operation: str
    ) -> tuple[str, str | None]:
        """The checked session id and its owner: None if it has none, or if ``user_id`` is given
        and is not the owner (the denial is recorded)."""
        sid = check_session_id(session_id)
        owner = await self.backend.owner_get(sid)
        if owner is not None and user_id is not None and str(user_id) != owner:
            await self._deny(sid, str(user_id), operation)
            return sid, None
        return sid, owner

    async def _get(self, session_id: str, user_id: str | int | None) -> dict[str, Any] | None:
        sid, owner = await self._owned(session_id, user_id, "get_session")
        if owner is None:
            return None
        session = await self.service.get_session(app_name=self.app_name, user_id=owner, session_id=sid)
        if session is None:
            await self.backend.owner_forget(sid, owner)
            return None
        return session_dict(session)

    async def _list(self, user_id: str | int | None) -> list[dict[str, Any]]:
        resp = await self.service.list_sessions(
            app_name=self.app_name, user_id=None if user_id is None else str(user_id)
        )
        items = [summary_dict(s) for s in resp.sessions]
        items.sort(key=lambda d: (d["updated_at"], d["id"]), reverse=True)
        return items

    async def _delete(self, session_id: str, user_id: str | int | None) -> bool:
        sid, owner = await self._owned(session_id, user_id, "delete_session")
        if owner is None:
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
