"""Fallback services: Redis first, ADK's in-memory services while Redis is unreachable.

Both services are built on the resilience core (:mod:`adk_redis.resilience._breaker`): its circuit breaker
routes every call (Redis while closed, memory while open or half-open, memory also for a record that
waits to be written back), its journal keeps the writes served by memory in order, and its health loop
writes them back when Redis answers, then closes the breaker.

Session write-back (:class:`FallbackSessionService`) follows the merge rule of
``RedisSessionService(stale_policy="merge")`` when the service's policy is ``reject`` or ``merge``, and
the last-writer-wins rule when it is ``lww``: a session missing in Redis is created; the events memory
holds and Redis lacks are appended on top of whatever other processes stored meanwhile, in their order,
unless (merge rule) another writer changed a state key the event also writes since memory took the
session over: only such events are reported, each once, in ``conflicts`` with the key(s) that clashed
(see :mod:`adk_redis.resilience._conflicts`: held in memory up to ``REDIS_WRITEBACK_MAX_CONFLICTS``,
spilled past it, never dropped).  Any other error while writing back one session sets that session aside in
``failed`` (with the reason and memory's copy) and the write-back goes on with the next one.

Bounded: one pass writes back a snapshot of the session's pending events; the events the application
appended meanwhile are written by the next pass, and from the third pass on new appends to that session
wait (for the length of that pass) so the session is handed back to Redis.  While the breaker is
half-open only the records that wait to be written back are served by memory; everything else goes to
Redis again, so the journal only shrinks and the breaker closes.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from google.adk.events.event import Event
from google.adk.memory.base_memory_service import BaseMemoryService, SearchMemoryResponse
from google.adk.memory.in_memory_memory_service import InMemoryMemoryService
from google.adk.memory.memory_entry import MemoryEntry
from google.adk.platform.uuid import new_uuid
from google.adk.sessions.base_session_service import (
    BaseSessionService,
    GetSessionConfig,
    ListSessionsResponse,
)
from google.adk.sessions.in_memory_session_service import InMemorySessionService
from google.adk.sessions.session import Session
from google.adk.sessions.state import State
from typing_extensions import override

from .. import telemetry
from .._core.connection import client_stats
from .._core.kwargs import check_keywords, keyword_names, strict
from .._core.lifecycle import RedisClientOwner
from .._core.url import redact_url
from ..config import RedisSettings, load_settings
from ..errors import MergeConflictError, RedisUnavailableError
from ..memory._docs import UNKNOWN_SESSION_ID, Source, content_text, history_ids, parse_id
from ..memory._service import ForgetResult, MemoryPage, RedisMemoryService
from ..sessions._pages import PageOrder, SessionPage, page_in_memory
from ..sessions._service import RedisSessionService, StalePolicy
from ._breaker import (
    UNAVAILABLE_ERRORS,
    BreakerState,
    CircuitBreaker,
    FailedWrite,
    Resilience,
)
from ._conflicts import ConflictLog, WriteBackConflict
from ._startup import probe_at_start

__all__ = [
    "UNAVAILABLE_ERRORS",
    "BreakerState",
    "CircuitBreaker",
    "ConflictLog",
    "FailedWrite",
    "FallbackMemoryService",
    "FallbackSessionService",
    "WriteBackConflict",
    "create_memory_service",
    "create_session_service",
]

logger = logging.getLogger("adk_redis.fallback")

T = TypeVar("T")
_Key = tuple[str, str, str]
_SCOPED = (State.APP_PREFIX, State.USER_PREFIX, State.TEMP_PREFIX)
_HANDED_OVER_KEPT = 10_000  # written-back sessions whose callers' objects can still be caught up
_FREE_PASSES = 2  # write-back passes over one session before new appends to it wait for the last one


def _catch_up(session: Session, last_event_id: str | None, stored: Session) -> None:
    """Bring a caller's session object that memory served up to Redis after the write-back.

    The object (marker None since memory took it over) continues where memory's copy ended; it becomes
    the Redis copy as of the hand-over (other writers' events included, conflicting events of the outage
    excluded), with the Redis revision marker, so the next append is checked like any other."""
    if (session.events[-1].id if session.events else None) != last_event_id:
        return  # not the object memory's copy was built from: ADK's last-event check decides
    temp = {k: v for k, v in session.state.items() if k.startswith(State.TEMP_PREFIX)}
    session.events[:] = [e.model_copy(deep=True) for e in stored.events]
    session.state = {**stored.state, **temp}
    session.last_update_time = stored.last_update_time
    session._storage_update_marker = stored._storage_update_marker


def _delta_keys(event: Event) -> set[str]:
    delta = event.actions.state_delta if event.actions and event.actions.state_delta else {}
    return {k for k in delta if not k.startswith(State.TEMP_PREFIX)}


class _Fallback(RedisClientOwner):
    """What both fallback services share: the core, stats, lifecycle (``client``: the Redis service's)."""

    redis: Any

    def _init_core(self, failure_threshold: int, health_check_interval: float, start_open: bool) -> None:
        self._use_client(self.redis.client, lambda: None)  # the Redis service owns it
        self.core = Resilience(
            self.redis.ping,
            failure_threshold=failure_threshold,
            health_check_interval=health_check_interval,
            name="Redis",
        )
        telemetry.watch_fallback(self)  # the adk_redis.fallback.state gauge
        if start_open:
            self.core.open_at_start()

    @property
    def breaker(self) -> CircuitBreaker:
        """The circuit breaker routing calls (state, failure counts)."""
        return self.core.breaker

    @property
    def state(self) -> BreakerState:
        """Current breaker state."""
        return self.core.state

    @property
    def failed(self) -> list[FailedWrite]:
        """Writes that could not be written back, with the reason (set aside; the rest went on)."""
        return self.core.failed

    @property
    def written_back(self) -> int:
        """Writes replayed on Redis since start."""
        return self.core.written_back

    def open_at_start(self) -> None:
        """Open the breaker because Redis did not answer at start-up."""
        self.core.open_at_start()

    async def write_back(self) -> None:
        """Replay what waits in memory on Redis now (normally the health loop does it)."""
        await self.core.replay()

    async def wait_closed(self, timeout: float) -> bool:
        """Wait until the breaker is closed and nothing awaits write-back (tests, shutdown)."""
        return await self.core.wait_closed(timeout)

    def get_redis_stats(self) -> dict[str, Any]:
        """Breaker state, failures, retries, pool usage and write-back counters."""
        return {**self.core.stats(), **client_stats(self.redis.client)}

    async def close(self) -> None:
        """Stop the health loop and close the Redis service."""
        await self.core.close()
        await self.redis.close()


class FallbackSessionService(_Fallback, BaseSessionService):
    """Redis first, ADK's in-memory service while Redis is unreachable (see the module docstring).

    A session served by memory (created or appended to while Redis was unreachable) stays memory's until
    it is written back.

    Reads during an outage: ``get_session`` of a session this process holds in memory is served from
    memory; of any other session (it may exist in Redis) it raises
    :class:`~adk_redis.errors.RedisUnavailableError` rather than answer ``None`` ("no such session"), so
    ADK's ``Runner.run_async`` raises it too instead of creating an empty session under that id.
    ``list_sessions`` / ``list_sessions_page`` list the sessions this process holds (the ones it can
    serve), with a warning logged once per outage; a session deleted during the outage reads as ``None``.

    Args:
      redis: the primary service.
      memory: the fallback (a new ``InMemorySessionService`` by default).
      failure_threshold: consecutive failures that open the breaker.
      health_check_interval: seconds between background PINGs while open or while writes wait.
      start_open: start with the breaker open (Redis known to be down).
      max_conflicts: write-back conflicts held in memory before they spill (default
        ``REDIS_WRITEBACK_MAX_CONFLICTS`` of the Redis service's settings).
      conflicts_file: JSON-lines file for spilled conflicts Redis refuses (default
        ``REDIS_WRITEBACK_CONFLICTS_FILE``).
    """

    redis: RedisSessionService

    @strict
    def __init__(
        self,
        redis: RedisSessionService,
        memory: InMemorySessionService | None = None,
        *,
        failure_threshold: int = 3,
        health_check_interval: float = 5.0,
        start_open: bool = False,
        max_conflicts: int | None = None,
        conflicts_file: str | None = None,
    ) -> None:
        self.redis = redis
        self.memory = memory or InMemorySessionService()
        self._created_state: dict[_Key, dict[str, Any]] = {}
        self._base: dict[_Key, str | None] = {}
        """Redis revision marker of the session object memory took over (None: created in memory)."""
        self._handed_over: dict[_Key, tuple[str | None, Session]] = {}
        """Written-back sessions: memory copy's last event id, Redis copy right after the write-back."""
        self._created_at: dict[_Key, float] = {}
        """Creation time of the sessions created in memory (``order="created"`` pages during an outage)."""
        self._warned_listing = -1
        self._done: dict[_Key, int] = {}
        """Memory events of a session written back or reported so far (a cut write-back resumes there)."""
        self._gates: dict[_Key, asyncio.Event] = {}
        """Sessions in their last write-back pass: appends to them wait for it."""
        settings = redis.settings
        self.conflict_log = ConflictLog(
            redis,
            max_held=settings.redis_writeback_max_conflicts if max_conflicts is None else max_conflicts,
            path=conflicts_file or settings.redis_writeback_conflicts_file,
        )
        self.conflicts: list[WriteBackConflict] = self.conflict_log.held
        """Write-back conflicts held in memory (past the cap they spill: :meth:`read_conflicts`)."""
        self._init_core(failure_threshold, health_check_interval, start_open)

    # -- routing -------------------------------------------------------------------
    def _local(self, key: _Key | None) -> bool:
        """True while memory holds ``key`` (a write or a delete waits to be written back)."""
        return key is not None and (self.core.pending(("session", key)) or self.core.pending(("delete", key)))

    def _call(
        self,
        op: str,
        key: _Key | None,
        redis_fn: Callable[[], Awaitable[T]],
        memory_fn: Callable[[], Awaitable[T]],
    ) -> Awaitable[T]:
        return self.core.call(op, redis_fn, memory_fn, local=self._local(key))

    def _dirty(self, key: _Key) -> None:
        self.core.defer(
            ("session", key),
            "session",
            lambda: self._write_back_session(key),
            once=True,
            set_aside=lambda exc: self._drop(key),
        )

    def _memory_session(self, key: _Key) -> Session | None:
        app, user, sid = key
        return self.memory.sessions.get(app, {}).get(user, {}).get(sid)

    def _import(self, session: Session) -> None:
        """Copy a session loaded from Redis into memory so it can continue there."""
        key = (session.app_name, session.user_id, session.id)
        if self._memory_session(key) is not None:
            return
        self._base[key] = session._storage_update_marker
        stored = session.model_copy(deep=True)
        stored.state = {k: v for k, v in stored.state.items() if not k.startswith(_SCOPED)}
        for k, v in session.state.items():
            if k.startswith(State.APP_PREFIX):
                self.memory.app_state.setdefault(session.app_name, {}).setdefault(
                    k[len(State.APP_PREFIX) :], v
                )
            elif k.startswith(State.USER_PREFIX):
                self.memory.user_state.setdefault(session.app_name, {}).setdefault(
                    session.user_id, {}
                ).setdefault(k[len(State.USER_PREFIX) :], v)
        self.memory.sessions.setdefault(session.app_name, {}).setdefault(session.user_id, {})[session.id] = (
            stored
        )

    # -- BaseSessionService ----------------------------------------------------------
    @override
    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        """Create the session in Redis, or in memory while Redis is unreachable (written back later)."""
        # The id is chosen here, not by either side: a create whose deadline expired may still be
        # applied by a stalled server later, and memory's copy must then be that same session.
        sid = (session_id.strip() if session_id else None) or new_uuid()

        async def in_memory() -> Session:
            session = await self.memory.create_session(
                app_name=app_name, user_id=user_id, state=state, session_id=sid
            )
            key = (app_name, user_id, session.id)
            self._created_state[key] = dict(state or {})
            self._created_at[key] = session.last_update_time
            self._base[key] = None
            self._dirty(key)
            return session

        return await self._call(
            "create_session",
            (app_name, user_id, sid),
            lambda: self.redis.create_session(
                app_name=app_name, user_id=user_id, state=state, session_id=sid
            ),
            in_memory,
        )

    @override
    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        """The session from Redis, or memory's copy while memory holds it or Redis is unreachable."""
        kw: dict[str, Any] = {
            "app_name": app_name,
            "user_id": user_id,
            "session_id": session_id,
            "config": config,
        }
        key = (app_name, user_id, session_id.strip() if session_id else session_id)

        async def in_memory() -> Session | None:
            got = await self.memory.get_session(**kw)
            if got is not None or self.core.pending(("delete", key)):
                return got
            # Not this process's: it may exist in Redis.  None would read as "no such session" (and
            # make ADK's Runner with auto_create_session fork a new, empty one under the same id).
            raise RedisUnavailableError(
                f"get_session of session {session_id!r} of user {user_id!r} in app {app_name!r}: Redis is "
                "unreachable and this process does not hold the session (it may exist in Redis); retry later"
            )

        return await self._call("get_session", key, lambda: self.redis.get_session(**kw), in_memory)

    @override
    async def list_sessions(self, *, app_name: str, user_id: str | None = None) -> ListSessionsResponse:
        """Redis' sessions with memory's waiting copies laid over them (memory's alone in an outage)."""

        async def from_redis() -> ListSessionsResponse:
            listed = await self.redis.list_sessions(app_name=app_name, user_id=user_id)
            return await self._overlay(listed, app_name, user_id)

        async def in_memory() -> ListSessionsResponse:
            self._partial_listing("list_sessions", app_name)
            return await self.memory.list_sessions(app_name=app_name, user_id=user_id)

        return await self._call("list_sessions", None, from_redis, in_memory)

    def _partial_listing(self, op: str, app_name: str) -> None:
        """Log (once per outage) that a listing holds only the sessions this process holds."""
        opened = self.breaker.times_opened
        if self._warned_listing != opened:
            self._warned_listing = opened
            logger.warning(
                "%s of app %r during a Redis outage lists only the sessions this process holds "
                "(the ones it can serve now); sessions stored only in Redis are missing until it is back",
                op,
                app_name,
            )

    async def list_sessions_page(
        self,
        *,
        app_name: str,
        user_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        order: PageOrder = "created",
    ) -> SessionPage:
        """One page of a listing (see :meth:`RedisSessionService.list_sessions_page`).

        From Redis, with memory's copy in place of a session that waits to be written back;
        during an outage over the sessions memory holds (sessions memory took over from Redis
        sort as created at 0), with the same order, ties and cursors.  A traversal that spans
        the start or the end of an outage switches between the two and may miss or repeat sessions.
        """
        kw: dict[str, Any] = {
            "app_name": app_name,
            "user_id": user_id,
            "limit": limit,
            "cursor": cursor,
            "order": order,
        }

        async def from_redis() -> SessionPage:
            return await self._overlay_page(await self.redis.list_sessions_page(**kw), app_name, user_id)

        async def in_memory() -> SessionPage:
            self._partial_listing("list_sessions_page", app_name)
            listed = await self.memory.list_sessions(app_name=app_name, user_id=user_id)
            keys = self.redis.keys
            entries = [
                (
                    self._created_at.get((app_name, s.user_id, s.id), 0.0)
                    if order == "created"
                    else s.last_update_time,
                    keys.session_member(s.id)
                    if user_id is not None
                    else keys.app_index_member(s.user_id, s.id),
                    s,
                )
                for s in listed.sessions
            ]
            return page_in_memory(entries, **kw)

        return await self._call("list_sessions_page", None, from_redis, in_memory)

    async def _overlay_page(self, page: SessionPage, app_name: str, user_id: str | None) -> SessionPage:
        """Memory's copy in place of each session of the page that waits to be written back."""
        waiting = [
            k for k in self.core.journal.records() if isinstance(k, tuple) and k[0] in ("session", "delete")
        ]
        pending = {k[1]: k[0] for k in waiting if k[1][0] == app_name and user_id in (None, k[1][1])}
        if not pending or not any((s.app_name, s.user_id, s.id) in pending for s in page.sessions):
            return page
        mem = await self.memory.list_sessions(app_name=app_name, user_id=user_id)
        held = {(s.app_name, s.user_id, s.id): s for s in mem.sessions}
        sessions = []
        for s in page.sessions:
            key = (s.app_name, s.user_id, s.id)
            if key not in pending:
                sessions.append(s)
            elif key in held:
                sessions.append(held[key])
        return SessionPage(sessions=sessions, next_cursor=page.next_cursor)

    async def _overlay(
        self, listed: ListSessionsResponse, app_name: str, user_id: str | None
    ) -> ListSessionsResponse:
        """Replace Redis entries by memory's for sessions not written back yet."""
        waiting = [
            k for k in self.core.journal.records() if isinstance(k, tuple) and k[0] in ("session", "delete")
        ]
        pending = {k[1] for k in waiting if k[1][0] == app_name and user_id in (None, k[1][1])}
        if not pending:
            return listed
        sessions = [s for s in listed.sessions if (s.app_name, s.user_id, s.id) not in pending]
        mem = await self.memory.list_sessions(app_name=app_name, user_id=user_id)
        dirty = {k[1] for k in waiting if k[0] == "session"}
        sessions += [s for s in mem.sessions if (s.app_name, s.user_id, s.id) in dirty]
        sessions.sort(key=lambda x: (x.last_update_time, x.user_id, x.id))
        return ListSessionsResponse(sessions=sessions)

    @override
    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        """Delete the session in Redis, or in memory and again in Redis once it answers."""
        key = (app_name, user_id, session_id.strip() if session_id else session_id)

        async def in_memory() -> None:
            await self.memory.delete_session(app_name=app_name, user_id=user_id, session_id=session_id)
            self.core.journal.discard(("session", key))
            self._forget(key)
            self.core.defer(
                ("delete", key),
                "delete",
                lambda: self.redis.delete_session(app_name=app_name, user_id=user_id, session_id=session_id),
            )

        await self._call(
            "delete_session",
            key,
            lambda: self.redis.delete_session(app_name=app_name, user_id=user_id, session_id=session_id),
            in_memory,
        )

    @override
    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        """The user's ``user:`` state, from Redis (from memory while Redis is unreachable)."""
        return await self._call(
            "get_user_state",
            None,
            lambda: self.redis.get_user_state(app_name=app_name, user_id=user_id),
            lambda: self.memory.get_user_state(app_name=app_name, user_id=user_id),
        )

    @override
    async def append_event(self, session: Session, event: Event) -> Event:
        """Append to Redis, or to memory's copy while Redis is unreachable (written back later)."""
        if event.partial:
            return event
        key = (session.app_name, session.user_id, session.id)
        gate = self._gates.get(key)
        if gate is not None:  # the session's last write-back pass runs: wait for the hand-over
            await gate.wait()
        handed = self._handed_over.pop(key, None)
        if handed is not None and session._storage_update_marker is None and not self._local(key):
            _catch_up(session, *handed)

        async def in_memory() -> Event:
            self._import(session)
            # The Redis revision marker is meaningless once memory holds the session;
            # after write-back the last-event check guards staleness.
            session._storage_update_marker = None
            self._dirty(key)
            return await self.memory.append_event(session, event)

        return await self._call(
            "append_event", key, lambda: self.redis.append_event(session, event), in_memory
        )

    # -- write-back (one journal entry per session) --------------------------------------
    def _write_back_policy(self) -> StalePolicy:
        """The rule of the write-back: lww when the service's policy is lww, else merge."""
        return "lww" if self.redis.stale_policy == "lww" else "merge"

    async def _write_back_session(self, key: _Key) -> None:
        """Write memory's copy of one session to Redis with the service's rule, then hand it back to Redis.

        Each pass writes the events memory gained since the previous one (a snapshot); every event is
        written or reported once.  From pass ``_FREE_PASSES + 1`` on, appends to the session wait for
        the pass to end, so the write-back ends within a bounded number of passes.
        """
        try:
            await self._write_back_passes(key)
        finally:
            gate = self._gates.pop(key, None)
            if gate is not None:
                gate.set()

    async def _write_back_passes(self, key: _Key) -> None:
        app, user, sid = key
        mem = self._memory_session(key)
        if mem is None:  # deleted meanwhile (the delete is journaled after this entry)
            self._forget(key)
            return
        red = await self.redis.get_session(app_name=app, user_id=user, session_id=sid)
        if red is None:
            red = await self.redis.create_session(
                app_name=app, user_id=user, state=self._creation_state(key, mem), session_id=sid
            )
        policy = self._write_back_policy()
        ours: set[str] = set()
        stored = {e.id for e in red.events}
        taken: set[str] = set()  # state keys other writers changed since memory took over (merge rule)
        if policy == "merge":
            for other in self._others(red, self._base.get(key), {e.id for e in mem.events}):
                taken |= _delta_keys(other)
        scanned = len(red.events)  # red.events[scanned:]: not yet looked at for others' writes
        # mem.events[:done]: written back or reported (kept across attempts: a write-back cut by an
        # outage resumes there, so no event is reported twice)
        done = self._done.get(key, 0)
        passes = 0
        while True:
            mem = self._memory_session(key)
            if mem is None:
                self._forget(key)
                return
            seen = len(mem.events)
            batch = mem.events[done:seen]  # the snapshot this pass writes back
            ours.update(e.id for e in batch)
            for ev in batch:
                await self._write_back_event(key, red, ev, policy, stored, taken)
                for other in red.events[scanned:]:  # events a merged append brought in are others'
                    if other.id not in stored and other.id not in ours:
                        stored.add(other.id)
                        if policy == "merge":
                            taken |= _delta_keys(other)
                scanned = len(red.events)
                done += 1
                self._done[key] = done
            passes += 1
            if self._memory_session(key) is mem and len(mem.events) == seen:
                # No await between this check and the hand-over: atomic w.r.t. the loop.
                self.memory.sessions[app][user].pop(sid, None)
                self._forget(key)
                last = mem.events[-1].id if mem.events else None
                self._handed_over[key] = (last, red)
                if len(self._handed_over) > _HANDED_OVER_KEPT:  # objects never used again: forget
                    self._handed_over.pop(next(iter(self._handed_over)))
                return
            if passes >= _FREE_PASSES and key not in self._gates:
                self._gates[key] = asyncio.Event()  # the application keeps writing: last pass

    async def _write_back_event(
        self, key: _Key, red: Session, ev: Event, policy: StalePolicy, stored: set[str], taken: set[str]
    ) -> None:
        """Append one memory event to ``red`` (Redis' copy), or report it as a conflict."""
        if ev.id in stored:
            return
        clash = _delta_keys(ev) & taken
        if clash:
            await self._conflict(key, ev, tuple(sorted(clash)))
            return
        try:
            await self.redis.append_event(red, ev.model_copy(deep=True), stale_policy=policy)
        except MergeConflictError as exc:  # another writer got in during the write-back
            await self._conflict(key, ev, exc.keys)
            return
        stored.add(ev.id)

    @staticmethod
    def _others(red: Session, base: str | None, ours: set[str]) -> list[Event]:
        """Redis events another writer stored since memory took over (after revision ``base``)."""
        events = red.events
        if base is not None and red._storage_update_marker is not None:
            try:
                since = len(events) - (int(red._storage_update_marker) - int(base))
            except ValueError:
                since = 0
            events = events[max(since, 0) :]
        return [e for e in events if e.id not in ours]

    def _creation_state(self, key: _Key, mem: Session) -> dict[str, Any]:
        created = self._created_state.get(key, {})
        state = {k: v for k, v in created.items() if k.startswith((State.APP_PREFIX, State.USER_PREFIX))}
        state.update({k: v for k, v in mem.state.items() if not k.startswith(_SCOPED)})
        return state

    async def _conflict(self, key: _Key, event: Event, keys: tuple[str, ...]) -> None:
        app, user, sid = key
        reason = f"another writer changed state key(s) {', '.join(map(repr, keys))} since the outage began"
        logger.error(
            "Write-back conflict: event %r of session %r of user %r in app %r: %s",
            event.id,
            sid,
            user,
            app,
            reason,
        )
        await self.conflict_log.add(WriteBackConflict(app, user, sid, reason, event, keys))

    async def read_conflicts(self, *, app_name: str, limit: int = 1000) -> list[WriteBackConflict]:
        """Up to ``limit`` write-back conflicts of the app, oldest first, wherever they are held (memory,
        the Redis list, the spill file); nothing is removed."""
        return await self.conflict_log.read(app_name=app_name, limit=limit)

    async def drain_conflicts(self, *, app_name: str, limit: int = 1000) -> list[WriteBackConflict]:
        """Remove and return up to ``limit`` write-back conflicts of the app (memory's first, then the
        Redis list's, then the spill file's)."""
        return await self.conflict_log.drain(app_name=app_name, limit=limit)

    def _drop(self, key: _Key) -> Session | None:
        """Set a session aside (its write-back failed): memory's copy is returned and dropped."""
        app, user, sid = key
        mem = self.memory.sessions.get(app, {}).get(user, {}).pop(sid, None)
        self._forget(key)
        return mem

    def _forget(self, key: _Key) -> None:
        self._done.pop(key, None)
        self._created_state.pop(key, None)
        self._created_at.pop(key, None)
        self._base.pop(key, None)
        self._handed_over.pop(key, None)

    def get_redis_stats(self) -> dict[str, Any]:
        """Breaker state, failures, retries, pool usage and write-back counters."""
        stats = super().get_redis_stats()
        deletes = self.core.journal.count("delete")
        stats.update(
            pending_write_back=len(self.core.journal) - deletes,
            pending_deletes=deletes,
            **self.conflict_log.stats(),
        )
        return stats


class FallbackMemoryService(_Fallback, BaseMemoryService):
    """Redis memory first, ADK's ``InMemoryMemoryService`` while Redis is unreachable.

    Writes made while Redis is unreachable (or while earlier ones wait) are kept
    in memory and in the core's ordered journal; when Redis answers again the journal
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

    @strict
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
        self._init_core(failure_threshold, health_check_interval, start_open)
        self.core.on_drained(self._drop_memory_copy)

    def _drop_memory_copy(self) -> None:
        self.memory = InMemoryMemoryService()

    async def _write(
        self, op: str, kwargs: dict[str, Any], queued: dict[str, Any], remember: Callable[[], Awaitable[None]]
    ) -> None:
        """``op`` on Redis, or (while anything waits) queued in order and remembered in memory."""

        async def in_memory() -> None:
            self.core.defer(
                (kwargs["app_name"], kwargs["user_id"]), op, lambda: getattr(self.redis, op)(**queued)
            )
            await remember()

        await self.core.call(
            op, lambda: getattr(self.redis, op)(**kwargs), in_memory, local=self.core.pending()
        )

    @override
    async def add_session_to_memory(self, session: Session) -> None:
        """Ingest the session's events (see :meth:`add_events_to_memory`)."""
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
        """Index the events in Redis, or keep them in memory and the journal during an outage."""
        kwargs: dict[str, Any] = {
            "app_name": app_name,
            "user_id": user_id,
            "session_id": session_id,
            "custom_metadata": custom_metadata,
        }
        copies = [e.model_copy(deep=True) for e in events if content_text(e.content)]

        async def remember() -> None:
            # Memory's copy, each event renamed to the id Redis gives it.
            renamed = [e.model_copy(update={"id": history_ids(session_id, e)[0]}) for e in copies]
            await self.memory.add_events_to_memory(
                app_name=app_name,
                user_id=user_id,
                events=renamed,
                session_id=session_id or UNKNOWN_SESSION_ID,
            )

        await self._write(
            "add_events_to_memory", {**kwargs, "events": events}, {**kwargs, "events": copies}, remember
        )

    @override
    async def add_memory(
        self,
        *,
        app_name: str,
        user_id: str,
        memories: Sequence[MemoryEntry],
        custom_metadata: Mapping[str, object] | None = None,
    ) -> None:
        """Store the memories (each given an id now, so the write-back is idempotent)."""
        # Give every entry its id now, so a replay after an outage is idempotent.
        entries = [m if m.id else m.model_copy(update={"id": uuid.uuid4().hex}) for m in memories]
        kwargs: dict[str, Any] = {
            "app_name": app_name,
            "user_id": user_id,
            "memories": entries,
            "custom_metadata": custom_metadata,
        }

        async def remember() -> None:
            events = [
                Event(
                    id=str(m.id),
                    author=m.author or "user",
                    content=m.content,
                    timestamp=_parse_iso(m.timestamp),
                )
                for m in entries
            ]
            await self.memory.add_events_to_memory(
                app_name=app_name, user_id=user_id, events=events, session_id="__memories__"
            )

        await self._write("add_memory", kwargs, kwargs, remember)

    @override
    async def delete_memory(self, *, app_name: str, user_id: str, memory_id: str | None = None) -> None:
        """Delete one memory by id, in Redis or queued in order during an outage."""
        if not memory_id:
            return
        kwargs: dict[str, Any] = {"app_name": app_name, "user_id": user_id, "memory_id": memory_id}

        async def remember() -> None:
            await self.memory.delete_memory(**kwargs)

        await self._write("delete_memory", kwargs, kwargs, remember)

    async def forget_user(self, *, app_name: str, user_id: str | int) -> ForgetResult:
        """Erase the user in Redis (counts per kind); refused (RedisUnavailableError) while Redis is
        unreachable."""
        result: ForgetResult = await self.core.call(
            "forget_user",
            lambda: self.redis.forget_user(app_name=app_name, user_id=user_id),
            None,
            local=self.core.pending(),
        )
        return result

    async def _redis_only(self, op: str, fn: Callable[[], Awaitable[T]]) -> T:
        """``op`` on Redis; refused (RedisUnavailableError) while Redis is unreachable."""
        result: T = await self.core.call(op, fn, None, local=self.core.pending())
        return result

    async def delete_memories(self, *, app_name: str, user_id: str | int, memory_ids: Sequence[str]) -> int:
        """:meth:`RedisMemoryService.delete_memories` (Redis only; ADK's ``delete_memory`` is queued)."""
        return await self._redis_only(
            "delete_memories",
            lambda: self.redis.delete_memories(app_name=app_name, user_id=user_id, memory_ids=memory_ids),
        )

    async def delete_session_memories(self, *, app_name: str, user_id: str | int, session_id: str) -> int:
        """:meth:`RedisMemoryService.delete_session_memories` (Redis only)."""
        return await self._redis_only(
            "delete_session_memories",
            lambda: self.redis.delete_session_memories(
                app_name=app_name, user_id=user_id, session_id=session_id
            ),
        )

    async def list_memories(
        self,
        *,
        app_name: str,
        user_id: str | int,
        kind: Source | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> MemoryPage:
        """:meth:`RedisMemoryService.list_memories` (Redis only)."""
        return await self._redis_only(
            "list_memories",
            lambda: self.redis.list_memories(
                app_name=app_name, user_id=user_id, kind=kind, cursor=cursor, limit=limit
            ),
        )

    async def get_memory(self, *, app_name: str, user_id: str | int, memory_id: str) -> MemoryEntry | None:
        """:meth:`RedisMemoryService.get_memory` (Redis only)."""
        return await self._redis_only(
            "get_memory",
            lambda: self.redis.get_memory(app_name=app_name, user_id=user_id, memory_id=memory_id),
        )

    @override
    async def search_memory(self, *, app_name: str, user_id: str, query: str) -> SearchMemoryResponse:
        """Search Redis; during an outage (or while writes wait), memory's results too."""

        async def from_redis() -> list[MemoryEntry] | None:
            return (await self.redis.search_memory(app_name=app_name, user_id=user_id, query=query)).memories

        async def nothing() -> list[MemoryEntry] | None:
            return None

        found = await self.core.call("search_memory", from_redis, nothing)
        if found is not None and not self.core.pending():
            return SearchMemoryResponse(memories=found)
        found = list(found or [])
        mem = await self.memory.search_memory(app_name=app_name, user_id=user_id, query=query)
        seen = {m.id for m in found}
        for entry in mem.memories:
            if entry.id not in seen:
                found.append(_with_metadata(entry))
        return SearchMemoryResponse(memories=found[: self.redis.search_limit])


def _parse_iso(value: str | None) -> float:
    if value:
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            pass
    return time.time()


def _with_metadata(entry: MemoryEntry) -> MemoryEntry:
    """Memory's search result with the metadata Redis results carry (from the id)."""
    ref = parse_id(entry.id or "")
    if ref is None or ref.source not in ("history", "memory"):
        return entry
    meta = ref.metadata()
    return entry.model_copy(update={"custom_metadata": {**meta, **entry.custom_metadata}})


async def _build(
    settings: RedisSettings | None,
    kw: dict[str, Any],
    redis_cls: type[RedisSessionService] | type[RedisMemoryService],
    fallback_cls: type[FallbackSessionService] | type[FallbackMemoryService],
    in_memory: type[InMemorySessionService] | type[InMemoryMemoryService],
) -> Any:
    breaker = {"failure_threshold", "health_check_interval"}
    check_keywords(
        f"create_{'session' if redis_cls is RedisSessionService else 'memory'}_service",
        kw,
        (keyword_names(redis_cls) - {"settings"}) | breaker,
    )
    settings = settings or load_settings()
    if not settings.redis_enabled:
        return in_memory()
    breaker_kw = {
        "failure_threshold": kw.pop("failure_threshold", settings.redis_failure_threshold),
        "health_check_interval": kw.pop("health_check_interval", settings.redis_health_check_interval),
    }
    where = redact_url(kw.get("uri") or settings.redis_url)
    service = redis_cls(settings=settings, **kw)
    try:
        ok = await probe_at_start(service.ping, settings=settings, where=where, log=logger)
    except RedisUnavailableError:
        await service.close()
        raise
    if settings.redis_fallback_to_memory:
        return fallback_cls(service, start_open=not ok, **breaker_kw)  # type: ignore[arg-type]
    return service


async def create_session_service(settings: RedisSettings | None = None, **kw: Any) -> BaseSessionService:
    """The session service the settings ask for.

    * ``REDIS_ENABLED=false``: ADK's ``InMemorySessionService``;
    * ``REDIS_FALLBACK_TO_MEMORY=true`` (default): a :class:`FallbackSessionService`
      (Redis while reachable; starts open when Redis does not answer now);
    * otherwise a plain :class:`RedisSessionService`, or
      :class:`~adk_redis.errors.RedisUnavailableError` when Redis does not answer.

    ``failure_threshold`` and ``health_check_interval`` go to the fallback
    service; every other keyword to :class:`RedisSessionService` (an unknown one raises ``TypeError``).
    """
    service: BaseSessionService = await _build(
        settings, kw, RedisSessionService, FallbackSessionService, InMemorySessionService
    )
    return service


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
