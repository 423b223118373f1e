"""The design's application API (``get_session_store()``, ``store.ensure_session()``,
``store_user_context()``, ...) as a thin facade over the same data ADK uses.

A facade session *is* an ADK session of the underlying session service
(:class:`~adk_redis.session_service.RedisSessionService`, or ADK's
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
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from google.adk.errors._stale_session_error import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig
from google.adk.sessions.in_memory_session_service import InMemorySessionService
from google.adk.sessions.session import Session
from google.genai import types
from pydantic import BaseModel, ConfigDict, Field

from .codec import text
from .config import RedisSettings, load_settings
from .connection import create_client
from .cross_session import CrossSessionMemory
from .errors import AdkRedisError, RedisUnavailableError
from .keys import KeySchema, escape, unescape
from .resilience import UNAVAILABLE_ERRORS
from .security import access_logger, redact
from .session_service import RedisSessionService

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
_FORGET_OWNER = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


# -- errors --------------------------------------------------------------------
class UnknownSessionError(AdkRedisError, LookupError):
    """No session with this id exists (create it with ``ensure_session`` first)."""


class SessionAccessError(AdkRedisError, PermissionError):
    """The session belongs to another user (the attempt is counted)."""


class SessionLimitError(AdkRedisError):
    """``max_sessions`` live sessions exist already."""


# -- configuration -------------------------------------------------------------
class SessionStoreConfig(BaseModel):
    """Facade settings (the design's ``SessionStoreConfig``).

    ``max_sessions`` is a soft cap checked when a session is created;
    ``session_ttl_hours`` (``None``: keep forever) is a sliding TTL;
    ``cleanup_interval_minutes`` (0: off) runs :meth:`SessionStore.cleanup_expired_sessions`
    in the background; ``app_name`` defaults to the key prefix; a session is
    *flagged* after ``flag_threshold`` failed (wrong-user) accesses.
    """

    model_config = ConfigDict(extra="forbid")

    max_sessions: int = Field(default=10000, ge=1)
    session_ttl_hours: float | None = Field(default=24, gt=0)
    cleanup_interval_minutes: float = Field(default=60, ge=0)
    app_name: str | None = Field(default=None, min_length=1)
    flag_threshold: int = Field(default=3, ge=1)


@dataclass(frozen=True)
class AppConfig:
    """What :func:`get_config` returns: ``redis_config`` and ``session_store``."""

    redis_config: RedisSettings
    session_store: SessionStoreConfig


def _store_config_for(settings: RedisSettings) -> SessionStoreConfig:
    return SessionStoreConfig(
        session_ttl_hours=settings.session_ttl_hours or 24, app_name=settings.redis_key_prefix
    )


def get_config() -> AppConfig:
    """Read the configuration from the environment (``SESSION_TTL_HOURS`` overrides the 24 h default)."""
    settings = load_settings()
    return AppConfig(redis_config=settings, session_store=_store_config_for(settings))


# -- cross-session memory ------------------------------------------------------
class CrossSessionAPI(Protocol):
    """The part of :class:`CrossSessionMemory` the facade uses (memory mode has its own)."""

    async def store_user_context(
        self, user_id: str | int, context_key: str, context_data: dict[str, Any]
    ) -> None: ...
    async def get_user_context(self, user_id: str | int, context_key: str) -> dict[str, Any] | None: ...
    async def store_agent_memory(
        self, agent_id: str | int, memory_key: str, memory_data: dict[str, Any]
    ) -> None: ...
    async def get_agent_memory(self, agent_id: str | int, memory_key: str) -> dict[str, Any] | None: ...
    async def record_session(
        self,
        user_id: str | int,
        session_id: str,
        summary: dict[str, Any] | None = None,
        timestamp: float | None = None,
    ) -> None: ...
    async def get_session_history(self, user_id: str | int, limit: int = 10) -> list[dict[str, Any]]: ...
    async def stats(self) -> dict[str, Any]: ...


def _json_copy(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TypeError(f"{what} must be a dict, got {type(data).__name__}")
    return cast(dict[str, Any], json.loads(json.dumps(data)))


class _LocalCrossSession:
    """Process-local cross-session memory for memory mode (same records and TTLs, no search)."""

    def __init__(self, settings: RedisSettings) -> None:
        self._settings = settings
        self._values: dict[tuple[str, str, str], tuple[float, dict[str, Any]]] = {}
        self._history: dict[str, dict[str, tuple[float, dict[str, Any]]]] = {}

    def clear(self) -> None:
        """Forget everything (it was written back to Redis)."""
        self._values.clear()
        self._history.clear()

    def _put(self, kind: str, owner: str, key: str, data: Any, what: str) -> None:
        doc = _json_copy(data, what)
        self._values[(kind, owner, key)] = (time.time() + self._settings.memory_ttl_hours * 3600, doc)

    def _get(self, kind: str, owner: str, key: str) -> dict[str, Any] | None:
        item = self._values.get((kind, owner, key))
        if item is None or item[0] <= time.time():
            self._values.pop((kind, owner, key), None)
            return None
        return _json_copy(item[1], "value")

    async def store_user_context(
        self, user_id: str | int, context_key: str, context_data: dict[str, Any]
    ) -> None:
        self._put("user", str(user_id), context_key, context_data, "context_data")

    async def get_user_context(self, user_id: str | int, context_key: str) -> dict[str, Any] | None:
        return self._get("user", str(user_id), context_key)

    async def store_agent_memory(
        self, agent_id: str | int, memory_key: str, memory_data: dict[str, Any]
    ) -> None:
        self._put("agent", str(agent_id), memory_key, memory_data, "memory_data")

    async def get_agent_memory(self, agent_id: str | int, memory_key: str) -> dict[str, Any] | None:
        return self._get("agent", str(agent_id), memory_key)

    async def record_session(
        self,
        user_id: str | int,
        session_id: str,
        summary: dict[str, Any] | None = None,
        timestamp: float | None = None,
    ) -> None:
        ts = time.time() if timestamp is None else float(timestamp)
        record = {"session_id": session_id, "timestamp": ts, "summary": _json_copy(summary or {}, "summary")}
        expiry = time.time() + self._settings.history_ttl_hours * 3600
        self._history.setdefault(str(user_id), {})[session_id] = (expiry, record)

    async def get_session_history(self, user_id: str | int, limit: int = 10) -> list[dict[str, Any]]:
        now = time.time()
        live = [r for exp, r in self._history.get(str(user_id), {}).values() if exp > now]
        live.sort(key=lambda r: (r["timestamp"], r["session_id"]), reverse=True)
        return [_json_copy(r, "record") for r in live[: max(limit, 0)]]

    async def stats(self) -> dict[str, Any]:
        now = time.time()
        kinds = [k for (k, _, _), (exp, _) in self._values.items() if exp > now]
        return {
            "backend": "memory",
            "user_contexts": kinds.count("user"),
            "agent_memories": kinds.count("agent"),
            "history_entries": sum(1 for h in self._history.values() for exp, _ in h.values() if exp > now),
        }


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


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


# -- the store -----------------------------------------------------------------
class SessionStore:
    """The design's session store: sync methods plus ``*_async`` twins (see the module docstring).

    Use :func:`create_session_store` / :func:`get_session_store`; the concrete
    class is the Redis or the in-memory store (``store_type`` says which).
    """

    kind: str = "abstract"

    @property
    def store_type(self) -> str:
        """The store serving now: ``"redis"`` or ``"memory"``."""
        return self.kind

    def __init__(
        self,
        *,
        config: SessionStoreConfig,
        settings: RedisSettings,
        app_name: str,
        runner: _LoopThread,
        service: BaseSessionService,
        memory: CrossSessionAPI,
    ) -> None:
        self.config = config
        self.settings = settings
        self.app_name = app_name
        self.service = service
        """The ADK session service underneath (bound to the store's loop: do not share it across loops)."""
        self.memory = memory
        """Cross-session memory on the same backend (use it through the module functions)."""
        self._runner = runner
        hours = config.session_ttl_hours
        self._ttl_ms = max(1, int(hours * 3_600_000)) if hours else None
        self._ttl_s = self._ttl_ms / 1000 if self._ttl_ms else None
        self._cleanup_task: asyncio.Task[None] | None = None
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        if config.cleanup_interval_minutes > 0:
            self._runner.run(self._start_cleanup())

    # -- backend primitives (overridden) ----------------------------------------
    async def _owner_get(self, session_id: str) -> str | None:
        raise NotImplementedError

    async def _owner_claim(self, session_id: str, user_id: str) -> str:
        raise NotImplementedError

    async def _owner_touch(self, session_id: str) -> None:
        raise NotImplementedError

    async def _owner_forget(self, session_id: str, user_id: str) -> None:
        raise NotImplementedError

    async def _record_failure(self, session_id: str) -> None:
        raise NotImplementedError

    async def _security_stats(self) -> dict[str, Any]:
        raise NotImplementedError

    async def _total_sessions(self) -> int:
        raise NotImplementedError

    async def _cleanup(self) -> int:
        raise NotImplementedError

    async def _redis_stats(self) -> dict[str, Any]:
        raise NotImplementedError

    async def _close_backend(self) -> None:
        return None

    # -- plumbing --------------------------------------------------------------
    async def _guard(self, coro: Coroutine[Any, Any, T]) -> T:
        return await coro

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
                removed = await self._guard(self._cleanup())
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
        await self._record_failure(session_id)

    async def _load(self, owner: str, session_id: str, config: GetSessionConfig | None = None) -> Session:
        session = await self.service.get_session(
            app_name=self.app_name, user_id=owner, session_id=session_id, config=config
        )
        if session is None:
            await self._owner_forget(session_id, owner)
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
        owner = await self._owner_get(sid)
        if owner is None:
            owner = await self._owner_claim(sid, DEFAULT_USER if wanted is None else wanted)
        if wanted is not None and owner != wanted:
            await self._deny(sid, wanted, "ensure_session")
            raise SessionAccessError(f"Session {sid!r} belongs to another user.")
        session = await self.service.get_session(app_name=self.app_name, user_id=owner, session_id=sid)
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
        await self._owner_touch(sid)
        return _session_dict(session)

    async def _create(
        self, owner: str, sid: str, title: str | None, status: str | None, metadata: dict[str, Any]
    ) -> Session:
        if await self._total_sessions() >= self.config.max_sessions:
            await self._owner_forget(sid, owner)
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
        owner = await self._owner_get(sid)
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
        await self._owner_touch(sid)
        out = _message_dict(event)
        assert out is not None
        return out

    async def _get(self, session_id: str, user_id: str | int | None) -> dict[str, Any] | None:
        sid = _check_session_id(session_id)
        owner = await self._owner_get(sid)
        if owner is None:
            return None
        if user_id is not None and str(user_id) != owner:
            await self._deny(sid, str(user_id), "get_session")
            return None
        session = await self.service.get_session(app_name=self.app_name, user_id=owner, session_id=sid)
        if session is None:
            await self._owner_forget(sid, owner)
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
        owner = await self._owner_get(sid)
        if owner is None:
            return False
        if user_id is not None and str(user_id) != owner:
            await self._deny(sid, str(user_id), "delete_session")
            return False
        await self.service.delete_session(app_name=self.app_name, user_id=owner, session_id=sid)
        await self._owner_forget(sid, owner)
        return True

    async def _stats(self, include_memory: bool) -> dict[str, Any]:
        redis_stats = await self._redis_stats()
        out = {
            "store_type": self.store_type,
            "app_name": self.app_name,
            "total_sessions": await self._total_sessions(),
            "max_sessions": self.config.max_sessions,
            "session_ttl_hours": self.config.session_ttl_hours,
            "redis": redis_stats,
            "security": await self._security_stats(),
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
        return self._call(self._cleanup())

    async def cleanup_expired_sessions_async(self) -> int:
        """Async :meth:`cleanup_expired_sessions`."""
        return await self._acall(self._cleanup())

    def get_redis_stats(self) -> dict[str, Any]:
        """Connection health: redis_available, ping_ms, connection_retries, pool_*, last_error."""
        return self._call(self._redis_stats())

    async def get_redis_stats_async(self) -> dict[str, Any]:
        """Async :meth:`get_redis_stats`."""
        return await self._acall(self._redis_stats())

    def get_security_stats(self) -> dict[str, Any]:
        """total_failed_attempts, flagged_sessions (shared by every instance on the same Redis)."""
        return self._call(self._security_stats())

    async def get_security_stats_async(self) -> dict[str, Any]:
        """Async :meth:`get_security_stats`."""
        return await self._acall(self._security_stats())

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
        await self._close_backend()

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


class RedisSessionStore(SessionStore):
    """The facade on Redis (:class:`RedisSessionService` plus a few facade keys)."""

    kind = "redis"

    def __init__(
        self,
        *,
        config: SessionStoreConfig,
        settings: RedisSettings,
        app_name: str,
        runner: _LoopThread,
        client: Any,
        owns_client: bool,
    ) -> None:
        self.client = client
        self.keys = KeySchema(settings.redis_key_prefix)
        self._owns_client = owns_client
        self._errors = 0
        self._last_error: str | None = None
        self._available = True
        ttl_settings = settings.model_copy(update={"session_ttl_hours": config.session_ttl_hours})
        service = RedisSessionService(client=client, settings=ttl_settings)
        self._forget = client.register_script(_FORGET_OWNER)
        super().__init__(
            config=config,
            settings=settings,
            app_name=app_name,
            runner=runner,
            service=service,
            memory=CrossSessionMemory(client, self.keys, settings, app_name=app_name),
        )

    async def _guard(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            result = await coro
        except UNAVAILABLE_ERRORS as exc:
            self._errors += 1
            self._available = False
            self._last_error = f"{type(exc).__name__}: {exc}"
            raise RedisUnavailableError(f"Redis is unavailable: {exc}") from exc
        self._available = True
        return result

    def _owner_key(self, session_id: str) -> str:
        return self.keys.session_owner(self.app_name, session_id)

    async def _owner_get(self, session_id: str) -> str | None:
        value = await self.client.get(self._owner_key(session_id))
        return None if value is None else text(value)

    async def _owner_claim(self, session_id: str, user_id: str) -> str:
        key = self._owner_key(session_id)
        for _ in range(3):
            if await self.client.set(key, user_id, nx=True, px=self._ttl_ms):
                return user_id
            value = await self.client.get(key)
            if value is not None:
                return text(value)
        raise AdkRedisError(f"Could not claim the owner record of session {session_id!r}")

    async def _owner_touch(self, session_id: str) -> None:
        if self._ttl_ms:
            await self.client.pexpire(self._owner_key(session_id), self._ttl_ms)

    async def _owner_forget(self, session_id: str, user_id: str) -> None:
        await self._forget(keys=[self._owner_key(session_id)], args=[user_id])

    async def _record_failure(self, session_id: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.incr(self.keys.security_failed(self.app_name))
        pipe.zincrby(self.keys.security_sessions(self.app_name), 1, escape(session_id))
        await pipe.execute()

    async def _security_stats(self) -> dict[str, Any]:
        threshold = self.config.flag_threshold
        zkey = self.keys.security_sessions(self.app_name)
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.keys.security_failed(self.app_name))
        pipe.zcount(zkey, threshold, "+inf")
        pipe.zcard(zkey)
        pipe.zrevrangebyscore(zkey, "+inf", threshold, start=0, num=10)
        failed, flagged, with_failures, top = await pipe.execute()
        return {
            "total_failed_attempts": int(failed or 0),
            "flagged_sessions": int(flagged),
            "sessions_with_failed_attempts": int(with_failures),
            "flag_threshold": threshold,
            "flagged_session_ids": [unescape(text(m)) for m in top],
        }

    async def _total_sessions(self) -> int:
        index = self.keys.app_index(self.app_name)
        if self._ttl_s:
            return int(await self.client.zcount(index, time.time() - self._ttl_s, "+inf"))
        return int(await self.client.zcard(index))

    async def _cleanup(self) -> int:
        """Index entries older than the TTL whose session key is gone (no SCAN)."""
        index = self.keys.app_index(self.app_name)
        cutoff: float | str = time.time() - self._ttl_s if self._ttl_s else "+inf"
        removed = 0
        offset = 0
        while True:
            batch = await self.client.zrangebyscore(index, "-inf", cutoff, start=offset, num=500)
            if not batch:
                return removed
            pairs = [(text(m), self.keys.parse_app_index_member(text(m))) for m in batch]
            pipe = self.client.pipeline(transaction=False)
            for _, (user, sid) in pairs:
                pipe.exists(self.keys.session(self.app_name, user, sid).meta)
            alive = await pipe.execute()
            gone = [(member, user, sid) for (member, (user, sid)), ok in zip(pairs, alive) if not ok]
            if gone:
                pipe = self.client.pipeline(transaction=False)
                for member, user, sid in gone:
                    pipe.zrem(index, member)
                    pipe.zrem(self.keys.user_index(self.app_name, user), self.keys.session_member(sid))
                    pipe.zrem(self.keys.security_sessions(self.app_name), escape(sid))
                await pipe.execute()
                for _, user, sid in gone:
                    await self._owner_forget(sid, user)
                removed += len(gone)
            offset += len(batch) - len(gone)
            if len(batch) < 500:
                return removed

    async def _redis_stats(self) -> dict[str, Any]:
        start = time.perf_counter()
        ping_ms: float | None = None
        try:
            await self.client.ping()
            ping_ms = round((time.perf_counter() - start) * 1000, 3)
            self._available = True
        except UNAVAILABLE_ERRORS as exc:
            self._available = False
            self._errors += 1
            self._last_error = f"{type(exc).__name__}: {exc}"
        retry = self.client.get_retry() if hasattr(self.client, "get_retry") else None
        pool = getattr(self.client, "connection_pool", None)
        idle = len(getattr(pool, "_available_connections", ()))
        in_use = len(getattr(pool, "_in_use_connections", ()))
        return {
            "store_type": self.store_type,
            "redis_available": self._available,
            "ping_ms": ping_ms,
            "connection_retries": int(getattr(retry, "failures", 0)),
            "operation_errors": self._errors,
            "last_error": self._last_error,
            "pool_created_connections": idle + in_use,
            "pool_in_use_connections": in_use,
            "pool_idle_connections": idle,
            "pool_max_connections": getattr(pool, "max_connections", None),
            "redis_url": _redact(self.settings.redis_url) if self._owns_client else "(injected client)",
            "key_prefix": self.keys.prefix,
        }

    async def _close_backend(self) -> None:
        if not self._owns_client:
            return
        if isinstance(self.client, aioredis.Redis):
            # create_client passes an explicit pool, which Redis.aclose() leaves open by default
            await self.client.aclose(close_connection_pool=True)
        else:
            await self.client.aclose()


class LocalRecords:
    """Owner records and failed-attempt counters kept in this process (memory mode, outages)."""

    def __init__(self) -> None:
        self.owners: dict[str, str] = {}
        self.failed = 0
        self.failures: dict[str, int] = {}

    def claim(self, session_id: str, user_id: str) -> str:
        return self.owners.setdefault(session_id, user_id)

    def forget(self, session_id: str, user_id: str) -> None:
        if self.owners.get(session_id) == user_id:
            del self.owners[session_id]

    def record_failure(self, session_id: str) -> None:
        self.failed += 1
        self.failures[session_id] = self.failures.get(session_id, 0) + 1

    def unrecord_failure(self, session_id: str) -> None:
        """One failed attempt of ``session_id`` was written to Redis: drop it here."""
        self.failed = max(0, self.failed - 1)
        left = self.failures.get(session_id, 0) - 1
        if left > 0:
            self.failures[session_id] = left
        else:
            self.failures.pop(session_id, None)

    def security_stats(self, threshold: int) -> dict[str, Any]:
        counts = self.failures
        flagged = sorted((s for s, n in counts.items() if n >= threshold), key=counts.__getitem__)
        return {
            "total_failed_attempts": self.failed,
            "flagged_sessions": len(flagged),
            "sessions_with_failed_attempts": len(self.failures),
            "flag_threshold": threshold,
            "flagged_session_ids": flagged[::-1][:10],
        }


class MemorySessionStore(SessionStore):
    """The same API on ADK's ``InMemorySessionService`` (one process, nothing persisted)."""

    kind = "memory"

    def __init__(
        self,
        *,
        config: SessionStoreConfig,
        settings: RedisSettings,
        app_name: str,
        runner: _LoopThread,
        reason: str,
    ) -> None:
        self.reason = reason
        self._records = LocalRecords()
        super().__init__(
            config=config,
            settings=settings,
            app_name=app_name,
            runner=runner,
            service=InMemorySessionService(),
            memory=_LocalCrossSession(settings),
        )

    async def _owner_get(self, session_id: str) -> str | None:
        return self._records.owners.get(session_id)

    async def _owner_claim(self, session_id: str, user_id: str) -> str:
        return self._records.claim(session_id, user_id)

    async def _owner_touch(self, session_id: str) -> None:
        return None

    async def _owner_forget(self, session_id: str, user_id: str) -> None:
        self._records.forget(session_id, user_id)

    async def _record_failure(self, session_id: str) -> None:
        self._records.record_failure(session_id)

    async def _security_stats(self) -> dict[str, Any]:
        return self._records.security_stats(self.config.flag_threshold)

    async def _total_sessions(self) -> int:
        resp = await self.service.list_sessions(app_name=self.app_name)
        if not self._ttl_s:
            return len(resp.sessions)
        cutoff = time.time() - self._ttl_s
        return sum(1 for s in resp.sessions if s.last_update_time > cutoff)

    async def _cleanup(self) -> int:
        """Delete sessions idle for longer than the TTL (memory has no key expiry)."""
        if not self._ttl_s:
            return 0
        cutoff = time.time() - self._ttl_s
        resp = await self.service.list_sessions(app_name=self.app_name)
        removed = 0
        for s in resp.sessions:
            if s.last_update_time <= cutoff:
                await self.service.delete_session(app_name=self.app_name, user_id=s.user_id, session_id=s.id)
                await self._owner_forget(s.id, s.user_id)
                self._records.failures.pop(s.id, None)
                removed += 1
        return removed

    async def _redis_stats(self) -> dict[str, Any]:
        return {
            "store_type": self.store_type,
            "redis_available": False,
            "ping_ms": None,
            "connection_retries": 0,
            "operation_errors": 0,
            "last_error": self.reason,
            "pool_created_connections": 0,
            "pool_in_use_connections": 0,
            "pool_idle_connections": 0,
            "pool_max_connections": None,
        }


# -- factory and singleton -------------------------------------------------------
def _memory_store(
    config: SessionStoreConfig, settings: RedisSettings, app_name: str, reason: str
) -> MemorySessionStore:
    runner = _LoopThread("adk-redis-store-memory")
    try:
        return MemorySessionStore(
            config=config, settings=settings, app_name=app_name, runner=runner, reason=reason
        )
    except BaseException:
        runner.stop()
        raise


async def _new_client(settings: RedisSettings) -> Any:
    """A client made on the store's loop (its pool's locks belong to that loop)."""
    return create_client(settings)


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
    config = config_override or _store_config_for(settings)
    app_name = config.app_name or settings.redis_key_prefix
    if force_memory:
        return _memory_store(config, settings, app_name, "in-memory store requested (force_memory)")
    if client is None and not settings.redis_enabled:
        return _memory_store(config, settings, app_name, "Redis disabled (REDIS_ENABLED=false)")
    runner = _LoopThread("adk-redis-store")

    async def connect() -> Any:
        conn = client if client is not None else create_client(settings)
        try:
            await conn.ping()
        except BaseException:
            if client is None:
                await conn.aclose()
            raise
        return conn

    reachable = True
    try:
        conn = runner.run(connect())
    except UNAVAILABLE_ERRORS as exc:
        where = _redact(settings.redis_url) if client is None else "the injected client"
        if not settings.redis_fallback_to_memory:
            runner.stop()
            raise RedisUnavailableError(f"Redis at {where} is unreachable: {exc}") from exc
        logger.warning("Redis at %s is unreachable (%s); serving from memory until it answers", where, exc)
        conn, reachable = (client if client is not None else runner.run(_new_client(settings))), False
    kwargs: dict[str, Any] = {
        "config": config,
        "settings": settings,
        "app_name": app_name,
        "runner": runner,
        "client": conn,
        "owns_client": client is None,
    }
    try:
        if not settings.redis_fallback_to_memory:
            return RedisSessionStore(**kwargs)
        from .store_fallback import FallbackRedisSessionStore  # imports this module

        return FallbackRedisSessionStore(start_open=not reachable, **kwargs)
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
