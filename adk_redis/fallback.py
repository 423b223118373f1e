"""Resilience: a circuit breaker that falls back to ADK's in-memory service while Redis is down.

Routing rules of :class:`FallbackSessionService`:

* breaker **closed**: operations go to Redis; a connection/timeout failure is
  counted and the operation is served by memory instead (the session becomes
  *dirty*: memory is authoritative for it until it has been written back);
* after ``failure_threshold`` consecutive failures the breaker **opens**: every
  operation goes to memory at once;
* a background task pings Redis every ``health_check_interval`` seconds; when
  it answers the breaker is **half-open** while dirty sessions are written back
  (requests are still served by memory), then it **closes**.

Write-back creates a session missing in Redis, then appends the events Redis
does not have (appends are idempotent by event id).  When the Redis copy has
events memory does not know (someone else wrote it meanwhile) nothing is
overwritten: the session is reported in ``conflicts``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol

from google.adk.events.event import Event
from google.adk.memory.base_memory_service import BaseMemoryService, SearchMemoryResponse
from google.adk.memory.in_memory_memory_service import InMemoryMemoryService
from google.adk.memory.memory_entry import MemoryEntry
from google.adk.sessions.base_session_service import (
    BaseSessionService,
    GetSessionConfig,
    ListSessionsResponse,
)
from google.adk.sessions.in_memory_session_service import InMemorySessionService
from google.adk.sessions.session import Session
from google.adk.sessions.state import State
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException
from redis.exceptions import TimeoutError as RedisTimeoutError
from typing_extensions import Self, override

from . import telemetry
from .config import RedisSettings, load_settings
from .errors import RedisUnavailableError
from .keys import escape, unescape
from .memory_service import RedisMemoryService, history_ids, memory_text
from .session_service import RedisSessionService

logger = logging.getLogger("adk_redis.fallback")

#: Errors that mean "Redis is unreachable" (everything else propagates).
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    RedisClusterException,
    ConnectionError,
    TimeoutError,
    asyncio.TimeoutError,
    OSError,
)

_Key = tuple[str, str, str]
_SCOPED = (State.APP_PREFIX, State.USER_PREFIX, State.TEMP_PREFIX)


class BreakerState(str, enum.Enum):
    """State of a :class:`CircuitBreaker`."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    """Counts consecutive failures; opens at ``failure_threshold``."""

    failure_threshold: int = 3
    state: BreakerState = BreakerState.CLOSED
    consecutive_failures: int = 0
    times_opened: int = 0
    opened_at: float | None = None
    closed_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None

    def record_success(self) -> None:
        self.consecutive_failures = 0

    def record_failure(self, exc: BaseException) -> bool:
        """Count a failure; True when this failure opened the breaker."""
        self.consecutive_failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        self.last_error_at = time.time()
        if self.state is BreakerState.CLOSED and self.consecutive_failures >= self.failure_threshold:
            self.open()
            return True
        return False

    def open(self) -> None:
        if self.state is not BreakerState.OPEN:
            if self.state is BreakerState.CLOSED:
                self.times_opened += 1
                self.opened_at = time.monotonic()
            self.state = BreakerState.OPEN

    def half_open(self) -> None:
        self.state = BreakerState.HALF_OPEN

    def close(self) -> None:
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.closed_at = time.monotonic()


@dataclass
class WriteBackConflict:
    """A session changed in memory that could not be written back safely."""

    app_name: str
    user_id: str
    session_id: str
    reason: str
    memory_session: Session = field(repr=False)


def pool_stats(client: Any) -> dict[str, int | None]:
    """Created / in-use connections of a redis-py asyncio client (summed over cluster nodes)."""
    pools: list[Any] = []
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        pools.append(pool)
    elif hasattr(client, "get_nodes"):
        pools.extend(getattr(n, "connection_pool", None) or n for n in client.get_nodes())
    created = in_use = 0
    max_conn: int | None = None
    for p in pools:
        available = getattr(p, "_available_connections", None)
        used = getattr(p, "_in_use_connections", None)
        if available is None and hasattr(p, "_free"):  # cluster node: _connections + _free
            conns = getattr(p, "_connections", [])
            free = getattr(p, "_free", [])
            created += len(conns)
            in_use += len(conns) - len(free)
        else:
            created += len(available or []) + len(used or [])
            in_use += len(used or [])
        mc = getattr(p, "max_connections", None)
        if isinstance(mc, int):
            max_conn = (max_conn or 0) + mc
    return {"created": created, "in_use": in_use, "max": max_conn}


def _retry_failures(client: Any) -> int:
    retry = getattr(client, "retry", None)
    pool = getattr(client, "connection_pool", None)
    if retry is None and pool is not None:
        retry = getattr(pool, "connection_kwargs", {}).get("retry")
    return int(getattr(retry, "failures", 0) or 0)


class WriteBack(Protocol):
    """Something else that keeps writes in memory during an outage (see ``_Resilient.companions``)."""

    def pending(self) -> bool:
        """True while writes wait for Redis."""
        ...

    async def write_back(self) -> None:
        """Write them to Redis (raise a connection error to be retried later)."""
        ...


class _Resilient:
    """Breaker, background health check and write-back loop shared by the fallback services."""

    redis: RedisSessionService | RedisMemoryService
    breaker: CircuitBreaker
    health_check_interval: float
    fallback_operations: int
    last_recovery_seconds: float | None
    _health_task: asyncio.Task[None] | None
    _closed: bool

    def _init_breaker(self, failure_threshold: int, health_check_interval: float, start_open: bool) -> None:
        self.companions: list[WriteBack] = []
        """More writers whose pending writes the health task writes back after this service's own."""
        self.breaker = CircuitBreaker(failure_threshold=failure_threshold)
        self.health_check_interval = health_check_interval
        self.fallback_operations = 0
        self.last_recovery_seconds = None
        self._health_task = None
        self._closed = False
        telemetry.watch_fallback(self)  # the adk_redis.fallback.state gauge
        if start_open:
            self.open_at_start()

    def open_at_start(self) -> None:
        """Open the breaker because Redis did not answer at start-up (probing starts on this loop)."""
        self.breaker.open()
        self.breaker.last_error = "Redis unreachable at start-up"
        self._ensure_health_task()

    def _pending(self) -> bool:
        """True while something waits to be written back to Redis."""
        raise NotImplementedError

    def _pending_all(self) -> bool:
        return self._pending() or any(c.pending() for c in self.companions)

    async def _ping(self) -> None:
        raise NotImplementedError

    async def write_back(self) -> None:
        """Write what was changed in memory back to Redis."""
        raise NotImplementedError

    @property
    def state(self) -> BreakerState:
        """Current breaker state."""
        return self.breaker.state

    def _failed(self, exc: BaseException, op: str) -> None:
        opened = self.breaker.record_failure(exc)
        if opened:
            logger.warning("Redis unavailable (%s failed: %s); circuit breaker open, using memory", op, exc)
        else:
            logger.warning("Redis %s failed (%s); served from memory", op, exc)
        self._ensure_health_task()

    def _ensure_health_task(self) -> None:
        if self._closed:
            return
        if self._health_task is None or self._health_task.done():
            try:
                self._health_task = asyncio.get_running_loop().create_task(self._health_loop())
            except RuntimeError:  # no running loop (constructed outside async code)
                self._health_task = None

    async def _health_loop(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.health_check_interval)
            if not self._pending_all() and self.breaker.state is BreakerState.CLOSED:
                return
            try:
                await self._ping()
            except UNAVAILABLE_ERRORS as exc:
                # Failed health checks count like failed operations.
                if self.breaker.record_failure(exc):
                    logger.warning("Redis unavailable (health check: %s); circuit breaker open", exc)
                if self.breaker.state is BreakerState.HALF_OPEN:
                    self.breaker.open()
                continue
            was_open = self.breaker.state is not BreakerState.CLOSED
            if was_open:
                self.breaker.half_open()
            try:
                await self.write_back()
                for companion in self.companions:
                    await companion.write_back()
            except UNAVAILABLE_ERRORS as exc:
                logger.warning("Write-back interrupted (%s); staying on memory", exc)
                if was_open:
                    self.breaker.open()
                continue
            if not self._pending_all():
                if was_open:
                    opened_at = self.breaker.opened_at
                    self.breaker.close()
                    if opened_at is not None and self.breaker.closed_at is not None:
                        self.last_recovery_seconds = self.breaker.closed_at - opened_at
                    logger.info("Redis is back; circuit breaker closed")
                else:
                    self.breaker.record_success()
                return

    def _breaker_stats(self, client: Any) -> dict[str, Any]:
        b = self.breaker
        return {
            "store_type": "redis" if b.state is BreakerState.CLOSED else "memory",  # what serves now
            "breaker_state": b.state.value,
            "consecutive_failures": b.consecutive_failures,
            "times_opened": b.times_opened,
            "last_error": b.last_error,
            "last_error_at": b.last_error_at,
            "connection_retries": _retry_failures(client),
            "pool": pool_stats(client),
            "fallback_operations": self.fallback_operations,
            "last_recovery_seconds": self.last_recovery_seconds,
        }

    async def wait_closed(self, timeout: float) -> bool:
        """Wait until the breaker is closed and nothing awaits write-back (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.breaker.state is BreakerState.CLOSED and not self._pending_all():
                return True
            self._ensure_health_task()
            await asyncio.sleep(min(0.02, self.health_check_interval))
        return False

    async def _stop_health(self) -> None:
        self._closed = True
        task, self._health_task = self._health_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def close(self) -> None:
        """Stop the health task and close the Redis service."""
        await self._stop_health()
        await self.redis.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class FallbackSessionService(_Resilient, BaseSessionService):
    """Redis first, ADK's in-memory service while Redis is unreachable.

    Args:
      redis: the primary service.
      memory: the fallback (a new ``InMemorySessionService`` by default).
      failure_threshold: consecutive connection/timeout failures that open
        the breaker.
      health_check_interval: seconds between background PINGs while open or
        while sessions wait to be written back.
      start_open: start with the breaker open (Redis known to be down).
    """

    redis: RedisSessionService

    def __init__(
        self,
        redis: RedisSessionService,
        memory: InMemorySessionService | None = None,
        *,
        failure_threshold: int = 3,
        health_check_interval: float = 5.0,
        start_open: bool = False,
    ) -> None:
        self.redis = redis
        self.memory = memory or InMemorySessionService()
        self._dirty: set[_Key] = set()
        self._deleted: set[_Key] = set()
        self._created_state: dict[_Key, dict[str, Any]] = {}
        self.conflicts: list[WriteBackConflict] = []
        self.written_back = 0
        self._init_breaker(failure_threshold, health_check_interval, start_open)

    # -- routing -------------------------------------------------------------
    def _pending(self) -> bool:
        return bool(self._dirty or self._deleted)

    async def _ping(self) -> None:
        await self.redis.ping()

    def _memory_mode(self, key: _Key | None = None) -> bool:
        if self.breaker.state is not BreakerState.CLOSED:
            return True
        return key is not None and (key in self._dirty or key in self._deleted)

    def _mark_dirty(self, key: _Key) -> None:
        self.fallback_operations += 1
        self._dirty.add(key)
        self._ensure_health_task()

    def _memory_session(self, key: _Key) -> Session | None:
        app, user, sid = key
        return self.memory.sessions.get(app, {}).get(user, {}).get(sid)

    def _import(self, session: Session) -> None:
        """Copy a session loaded from Redis into memory so it can continue there."""
        key = (session.app_name, session.user_id, session.id)
        if self._memory_session(key) is not None:
            return
        stored = session.model_copy(deep=True)
        stored.state = {k: v for k, v in stored.state.items() if not k.startswith(_SCOPED)}
        app_vals = {
            k[len(State.APP_PREFIX) :]: v for k, v in session.state.items() if k.startswith(State.APP_PREFIX)
        }
        user_vals = {
            k[len(State.USER_PREFIX) :]: v
            for k, v in session.state.items()
            if k.startswith(State.USER_PREFIX)
        }
        for k, v in app_vals.items():
            self.memory.app_state.setdefault(session.app_name, {}).setdefault(k, v)
        for k, v in user_vals.items():
            self.memory.user_state.setdefault(session.app_name, {}).setdefault(
                session.user_id, {}
            ).setdefault(k, v)
        self.memory.sessions.setdefault(session.app_name, {}).setdefault(session.user_id, {})[session.id] = (
            stored
        )

    # -- BaseSessionService ----------------------------------------------------
    @override
    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        sid = session_id.strip() if session_id else None
        if not self._memory_mode((app_name, user_id, sid) if sid else None):
            try:
                session = await self.redis.create_session(
                    app_name=app_name, user_id=user_id, state=state, session_id=sid
                )
            except UNAVAILABLE_ERRORS as exc:
                self._failed(exc, "create_session")
            else:
                self.breaker.record_success()
                return session
        session = await self.memory.create_session(
            app_name=app_name, user_id=user_id, state=state, session_id=sid
        )
        key = (app_name, user_id, session.id)
        self._created_state[key] = dict(state or {})
        self._mark_dirty(key)
        return session

    @override
    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        key = (app_name, user_id, session_id.strip() if session_id else session_id)
        if not self._memory_mode(key):
            try:
                result = await self.redis.get_session(
                    app_name=app_name, user_id=user_id, session_id=session_id, config=config
                )
            except UNAVAILABLE_ERRORS as exc:
                self._failed(exc, "get_session")
            else:
                self.breaker.record_success()
                return result
        return await self.memory.get_session(
            app_name=app_name, user_id=user_id, session_id=session_id, config=config
        )

    @override
    async def list_sessions(self, *, app_name: str, user_id: str | None = None) -> ListSessionsResponse:
        if not self._memory_mode():
            try:
                listed = await self.redis.list_sessions(app_name=app_name, user_id=user_id)
            except UNAVAILABLE_ERRORS as exc:
                self._failed(exc, "list_sessions")
            else:
                self.breaker.record_success()
                return await self._overlay(listed, app_name, user_id)
        return await self.memory.list_sessions(app_name=app_name, user_id=user_id)

    async def _overlay(
        self, listed: ListSessionsResponse, app_name: str, user_id: str | None
    ) -> ListSessionsResponse:
        """Replace Redis entries by memory's for sessions not written back yet."""
        if not self._dirty and not self._deleted:
            return listed
        pending = {k for k in self._dirty | self._deleted if k[0] == app_name and user_id in (None, k[1])}
        if not pending:
            return listed
        sessions = [s for s in listed.sessions if (s.app_name, s.user_id, s.id) not in pending]
        mem = await self.memory.list_sessions(app_name=app_name, user_id=user_id)
        sessions += [s for s in mem.sessions if (s.app_name, s.user_id, s.id) in self._dirty]
        sessions.sort(key=lambda x: (x.last_update_time, x.user_id, x.id))
        return ListSessionsResponse(sessions=sessions)

    @override
    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        key = (app_name, user_id, session_id.strip() if session_id else session_id)
        if not self._memory_mode(key):
            try:
                await self.redis.delete_session(app_name=app_name, user_id=user_id, session_id=session_id)
            except UNAVAILABLE_ERRORS as exc:
                self._failed(exc, "delete_session")
            else:
                self.breaker.record_success()
                return
        await self.memory.delete_session(app_name=app_name, user_id=user_id, session_id=session_id)
        self._dirty.discard(key)
        self._created_state.pop(key, None)
        self._deleted.add(key)
        self.fallback_operations += 1
        self._ensure_health_task()

    @override
    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        if not self._memory_mode():
            try:
                result = await self.redis.get_user_state(app_name=app_name, user_id=user_id)
            except UNAVAILABLE_ERRORS as exc:
                self._failed(exc, "get_user_state")
            else:
                self.breaker.record_success()
                return result
        return await self.memory.get_user_state(app_name=app_name, user_id=user_id)

    @override
    async def append_event(self, session: Session, event: Event) -> Event:
        if event.partial:
            return event
        key = (session.app_name, session.user_id, session.id)
        if not self._memory_mode(key):
            try:
                result = await self.redis.append_event(session, event)
            except UNAVAILABLE_ERRORS as exc:
                self._failed(exc, "append_event")
            else:
                self.breaker.record_success()
                return result
        self._import(session)
        # The Redis revision marker is meaningless once memory holds the
        # session; after write-back the last-event check guards staleness.
        session._storage_update_marker = None
        self._mark_dirty(key)
        return await self.memory.append_event(session, event)

    # -- recovery ----------------------------------------------------------------
    async def write_back(self) -> None:
        """Write pending deletes and dirty sessions to Redis (normally run by the health task)."""
        for _ in range(100):
            if not self._dirty and not self._deleted:
                return
            for key in list(self._deleted):
                app, user, sid = key
                await self.redis.delete_session(app_name=app, user_id=user, session_id=sid)
                self._deleted.discard(key)
            for key in list(self._dirty):
                await self._write_back_one(key)

    async def _write_back_one(self, key: _Key) -> None:
        app, user, sid = key
        while True:
            mem = self._memory_session(key)
            if mem is None:
                self._dirty.discard(key)
                return
            seen = len(mem.events)
            events = list(mem.events)
            red = await self.redis.get_session(app_name=app, user_id=user, session_id=sid)
            if red is None:
                created = self._created_state.get(key, {})
                state = {
                    k: v for k, v in created.items() if k.startswith((State.APP_PREFIX, State.USER_PREFIX))
                }
                state.update({k: v for k, v in mem.state.items() if not k.startswith(_SCOPED)})
                red = await self.redis.create_session(app_name=app, user_id=user, state=state, session_id=sid)
                missing = events
            else:
                red_ids = [e.id for e in red.events]
                if [e.id for e in events[: len(red_ids)]] != red_ids:
                    self._conflict(
                        key, mem, f"Redis has {len(red_ids)} events that diverge from memory's {seen}"
                    )
                    return
                missing = events[len(red_ids) :]
            for ev in missing:
                await self.redis.append_event(red, ev.model_copy(deep=True))
            current = self._memory_session(key)
            if current is mem and len(mem.events) == seen:
                # No await between this check and the hand-over: atomic w.r.t. the loop.
                self.memory.sessions[app][user].pop(sid, None)
                self._dirty.discard(key)
                self._created_state.pop(key, None)
                self.written_back += 1
                return

    def _conflict(self, key: _Key, mem: Session, reason: str) -> None:
        app, user, sid = key
        logger.error("Write-back conflict for session %r of user %r in app %r: %s", sid, user, app, reason)
        self.conflicts.append(WriteBackConflict(app, user, sid, reason, mem.model_copy(deep=True)))
        self.memory.sessions[app][user].pop(sid, None)
        self._dirty.discard(key)
        self._created_state.pop(key, None)

    # -- observability / lifecycle ---------------------------------------------
    def get_redis_stats(self) -> dict[str, Any]:
        """Breaker state, failures, retries, pool usage and write-back counters."""
        return {
            **self._breaker_stats(self.redis.client),
            "pending_write_back": len(self._dirty),
            "pending_deletes": len(self._deleted),
            "written_back": self.written_back,
            "conflicts": len(self.conflicts),
        }


class FallbackMemoryService(_Resilient, BaseMemoryService):
    """Redis memory first, ADK's ``InMemoryMemoryService`` while Redis is unreachable.

    Writes made while Redis is unreachable (or while earlier ones wait) are kept
    in memory and in an ordered journal; when Redis answers again the journal
    is replayed in order (every step is idempotent: events by id, memories by
    id, deletes by id) and the memory copy is dropped.  Searches during an
    outage see only what was added during it; once the breaker is closed
    but entries still wait, Redis results come first, then memory's.  Memory
    ids are the same on both sides (``h:<session>:<event>``, ``m:<id>``), so
    an id returned during an outage can be deleted after it, and vice versa.
    ``forget_user`` is never queued: it raises
    :class:`~adk_redis.errors.RedisUnavailableError` while Redis is unreachable.
    """

    redis: RedisMemoryService

    def __init__(
        self,
        redis: RedisMemoryService,
        memory: InMemoryMemoryService | None = None,
        *,
        failure_threshold: int = 3,
        health_check_interval: float = 5.0,
        start_open: bool = False,
    ) -> None:
        self.redis = redis
        self.memory = memory or InMemoryMemoryService()
        self._journal: list[tuple[str, dict[str, Any]]] = []
        self.written_back = 0
        self._init_breaker(failure_threshold, health_check_interval, start_open)

    def _pending(self) -> bool:
        return bool(self._journal)

    async def _ping(self) -> None:
        await self.redis.ping()

    def _memory_mode(self) -> bool:
        return self.breaker.state is not BreakerState.CLOSED or bool(self._journal)

    async def _redis_first(self, op: str, kwargs: dict[str, Any]) -> bool:
        """Run ``op`` on Redis unless in memory mode; True when Redis took it."""
        if self._memory_mode():
            return False
        try:
            await getattr(self.redis, op)(**kwargs)
        except UNAVAILABLE_ERRORS as exc:
            self._failed(exc, op)
            return False
        self.breaker.record_success()
        return True

    def _queue(self, op: str, kwargs: dict[str, Any]) -> None:
        self._journal.append((op, kwargs))
        self.fallback_operations += 1
        self._ensure_health_task()

    async def _remember_events(
        self, app_name: str, user_id: str, events: Sequence[Event], sid: str | None
    ) -> None:
        """Memory's copy, each event renamed to the id Redis gives it."""
        renamed = [
            e.model_copy(update={"id": history_ids(sid, e)[0]}) for e in events if memory_text(e.content)
        ]
        await self.memory.add_events_to_memory(
            app_name=app_name, user_id=user_id, events=renamed, session_id=sid or "__unknown_session_id__"
        )

    @override
    async def add_session_to_memory(self, session: Session) -> None:
        await self.add_events_to_memory(
            app_name=session.app_name, user_id=session.user_id, events=session.events, session_id=session.id
        )

    @override
    async def add_events_to_memory(
        self,
        *,
        app_name: str,
        user_id: str,
        events: Sequence[Event],
        session_id: str | None = None,
        custom_metadata: Mapping[str, object] | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {
            "app_name": app_name,
            "user_id": user_id,
            "session_id": session_id,
            "custom_metadata": custom_metadata,
        }
        if await self._redis_first("add_events_to_memory", {**kwargs, "events": events}):
            return
        copies = [e.model_copy(deep=True) for e in events if memory_text(e.content)]
        self._queue("add_events_to_memory", {**kwargs, "events": copies})
        await self._remember_events(app_name, user_id, copies, session_id)

    @override
    async def add_memory(
        self,
        *,
        app_name: str,
        user_id: str,
        memories: Sequence[MemoryEntry],
        custom_metadata: Mapping[str, object] | None = None,
    ) -> None:
        # Give every entry its id now, so a replay after an outage is idempotent.
        entries = [m if m.id else m.model_copy(update={"id": uuid.uuid4().hex}) for m in memories]
        kwargs: dict[str, Any] = {
            "app_name": app_name,
            "user_id": user_id,
            "memories": entries,
            "custom_metadata": custom_metadata,
        }
        if await self._redis_first("add_memory", kwargs):
            return
        self._queue("add_memory", kwargs)
        events = [
            Event(
                id=f"m:{escape(str(m.id))}",
                author=m.author or "user",
                content=m.content,
                timestamp=_parse_iso(m.timestamp),
            )
            for m in entries
        ]
        await self.memory.add_events_to_memory(
            app_name=app_name, user_id=user_id, events=events, session_id="__memories__"
        )

    @override
    async def delete_memory(self, *, app_name: str, user_id: str, memory_id: str | None = None) -> None:
        if not memory_id:
            return
        kwargs: dict[str, Any] = {"app_name": app_name, "user_id": user_id, "memory_id": memory_id}
        if await self._redis_first("delete_memory", kwargs):
            return
        self._queue("delete_memory", kwargs)
        await self.memory.delete_memory(**kwargs)

    async def forget_user(self, app_name: str, user_id: str | int) -> None:
        """Erase the user's memory in Redis; refused (RedisUnavailableError) while Redis is unreachable."""
        if self._memory_mode() or not await self._redis_first(
            "forget_user", {"app_name": app_name, "user_id": user_id}
        ):
            raise RedisUnavailableError("forget_user needs Redis; it is unreachable now, retry later")

    @override
    async def search_memory(self, *, app_name: str, user_id: str, query: str) -> SearchMemoryResponse:
        found: list[MemoryEntry] = []
        if self.breaker.state is BreakerState.CLOSED:
            try:
                found = (
                    await self.redis.search_memory(app_name=app_name, user_id=user_id, query=query)
                ).memories
            except UNAVAILABLE_ERRORS as exc:
                self._failed(exc, "search_memory")
            else:
                self.breaker.record_success()
                if not self._journal:
                    return SearchMemoryResponse(memories=found)
        mem = await self.memory.search_memory(app_name=app_name, user_id=user_id, query=query)
        seen = {m.id for m in found}
        for entry in mem.memories:
            if entry.id not in seen:
                found.append(_with_metadata(entry))
        return SearchMemoryResponse(memories=found[: self.redis.search_limit])

    async def write_back(self) -> None:
        """Replay the journal on Redis in order, then drop memory's copy."""
        while self._journal:
            op, kwargs = self._journal[0]
            await getattr(self.redis, op)(**kwargs)
            self._journal.pop(0)
            self.written_back += 1
        # No await since the journal emptied: nothing can slip in between.
        self.memory = InMemoryMemoryService()

    def get_redis_stats(self) -> dict[str, Any]:
        """Breaker state, failures, retries, pool usage and write-back counters."""
        return {
            **self._breaker_stats(self.redis.client),
            "pending_write_back": len(self._journal),
            "written_back": self.written_back,
        }


def _parse_iso(value: str | None) -> float:
    if value:
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            pass
    return time.time()


def _with_metadata(entry: MemoryEntry) -> MemoryEntry:
    """Memory's search result with the metadata Redis results carry (from the id)."""
    kind, _, rest = (entry.id or "").partition(":")
    if kind == "h":
        sid, _, eid = rest.partition(":")
        meta = {"source": "history", "session_id": unescape(sid), "event_id": unescape(eid)}
    elif kind == "m":
        meta = {"source": "memory", "event_id": unescape(rest)}
    else:
        return entry
    return entry.model_copy(update={"custom_metadata": {**meta, **entry.custom_metadata}})


async def _reachable(service: RedisSessionService | RedisMemoryService, timeout: float) -> bool:
    try:
        return await asyncio.wait_for(service.ping(), timeout)
    except UNAVAILABLE_ERRORS:
        return False


async def _build(
    settings: RedisSettings | None,
    kw: dict[str, Any],
    redis_cls: type[RedisSessionService] | type[RedisMemoryService],
    fallback_cls: type[FallbackSessionService] | type[FallbackMemoryService],
    in_memory: type[InMemorySessionService] | type[InMemoryMemoryService],
) -> Any:
    settings = settings or load_settings()
    if not settings.redis_enabled:
        return in_memory()
    breaker_kw = {
        "failure_threshold": kw.pop("failure_threshold", settings.redis_failure_threshold),
        "health_check_interval": kw.pop("health_check_interval", settings.redis_health_check_interval),
    }
    where = _redact(kw.get("uri") or settings.redis_url)
    service = redis_cls(settings=settings, **kw)
    ok = await _reachable(service, settings.redis_connect_timeout + settings.redis_socket_timeout)
    if settings.redis_fallback_to_memory:
        if not ok:
            logger.warning("Redis at %s is unreachable; starting on %s", where, in_memory.__name__)
        return fallback_cls(service, start_open=not ok, **breaker_kw)  # type: ignore[arg-type]
    if not ok:
        await service.close()
        raise RedisUnavailableError(f"Redis at {where} is unreachable and REDIS_FALLBACK_TO_MEMORY is false")
    return service


async def create_session_service(settings: RedisSettings | None = None, **kw: Any) -> BaseSessionService:
    """The session service the settings ask for.

    * ``REDIS_ENABLED=false``: ADK's ``InMemorySessionService``;
    * ``REDIS_FALLBACK_TO_MEMORY=true`` (default): a :class:`FallbackSessionService`
      (Redis while reachable; starts open when Redis does not answer now);
    * otherwise a plain :class:`RedisSessionService`, or
      :class:`~adk_redis.errors.RedisUnavailableError` when Redis does not answer.

    ``failure_threshold`` and ``health_check_interval`` go to the fallback
    service; every other keyword to :class:`RedisSessionService`.
    """
    service: BaseSessionService = await _build(
        settings, kw, RedisSessionService, FallbackSessionService, InMemorySessionService
    )
    return service


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}"


async def create_memory_service(settings: RedisSettings | None = None, **kw: Any) -> BaseMemoryService:
    """The memory service the settings ask for (the memory twin of :func:`create_session_service`).

    ``REDIS_ENABLED=false`` -> ADK's ``InMemoryMemoryService``;
    ``REDIS_FALLBACK_TO_MEMORY=true`` (default) -> a :class:`FallbackMemoryService`
    (starts open when Redis does not answer now); otherwise a plain
    :class:`RedisMemoryService`, or :class:`RedisUnavailableError` when Redis
    does not answer.
    """
    service: BaseMemoryService = await _build(
        settings, kw, RedisMemoryService, FallbackMemoryService, InMemoryMemoryService
    )
    return service
