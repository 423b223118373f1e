"""Mid-run fallback for the design API's store (``get_session_store()``).

:class:`FallbackRedisSessionStore` is the Redis store behind the circuit
breaker of :class:`~adk_redis.fallback.FallbackSessionService`, which also
carries its sessions and messages.  The store's own records follow the same
breaker: while Redis is unreachable, owner records, failed-attempt counters and
cross-session writes (user context, agent memory, session history) are kept in
this process; when Redis answers, the breaker's health task writes them back
(owner records with ``SET NX``: an owner another instance recorded meanwhile
wins and the clash is counted in ``owner_conflicts``), then closes.  While the
breaker is open, stats report ``store_type: "memory"``, as the design asks.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .facade import LocalRecords, RedisSessionStore, _LocalCrossSession
from .fallback import UNAVAILABLE_ERRORS, BreakerState, FallbackSessionService
from .keys import escape

if TYPE_CHECKING:
    from .cross_session import CrossSessionMemory

logger = logging.getLogger("adk_redis.facade")

__all__ = ["FallbackRedisSessionStore"]


class _FallbackCrossSession:
    """Cross-session memory on Redis, kept locally (and journaled) while Redis is unreachable."""

    def __init__(self, store: FallbackRedisSessionStore, redis: CrossSessionMemory) -> None:
        self._store = store
        self.redis = redis
        self.local = _LocalCrossSession(store.settings)
        self.journal: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    async def _write(self, name: str, *args: Any, **kwargs: Any) -> None:
        if not self._store.degraded() and not self.journal:
            try:
                await getattr(self.redis, name)(*args, **kwargs)
                return
            except UNAVAILABLE_ERRORS as exc:
                self._store.fallback._failed(exc, name)
        await getattr(self.local, name)(*args, **kwargs)  # validates, copies
        self.journal.append((name, args, kwargs))
        self._store.fallback._ensure_health_task()

    async def _read(self, name: str, *args: Any) -> dict[str, Any] | None:
        found: dict[str, Any] | None = await getattr(self.local, name)(*args)  # written in the outage: newest
        if found is not None or self._store.degraded():
            return found
        try:
            found = await getattr(self.redis, name)(*args)
        except UNAVAILABLE_ERRORS as exc:
            self._store.fallback._failed(exc, name)
        return found

    async def store_user_context(
        self, user_id: str | int, context_key: str, context_data: dict[str, Any]
    ) -> None:
        await self._write("store_user_context", user_id, context_key, context_data)

    async def get_user_context(self, user_id: str | int, context_key: str) -> dict[str, Any] | None:
        return await self._read("get_user_context", user_id, context_key)

    async def store_agent_memory(
        self, agent_id: str | int, memory_key: str, memory_data: dict[str, Any]
    ) -> None:
        await self._write("store_agent_memory", agent_id, memory_key, memory_data)

    async def get_agent_memory(self, agent_id: str | int, memory_key: str) -> dict[str, Any] | None:
        return await self._read("get_agent_memory", agent_id, memory_key)

    async def record_session(
        self,
        user_id: str | int,
        session_id: str,
        summary: dict[str, Any] | None = None,
        timestamp: float | None = None,
    ) -> None:
        await self._write("record_session", user_id, session_id, summary=summary, timestamp=timestamp)

    async def get_session_history(self, user_id: str | int, limit: int = 10) -> list[dict[str, Any]]:
        records = {r["session_id"]: r for r in await self.local.get_session_history(user_id, limit)}
        if not self._store.degraded():
            try:
                for r in await self.redis.get_session_history(user_id, limit):
                    records.setdefault(r["session_id"], r)
            except UNAVAILABLE_ERRORS as exc:
                self._store.fallback._failed(exc, "get_session_history")
        ordered = sorted(records.values(), key=lambda r: (r["timestamp"], r["session_id"]), reverse=True)
        return ordered[: max(limit, 0)]

    async def stats(self) -> dict[str, Any]:
        if not self._store.degraded():
            try:
                return await self.redis.stats()
            except UNAVAILABLE_ERRORS as exc:
                self._store.fallback._failed(exc, "memory stats")
        return await self.local.stats()

    async def write_back(self) -> None:
        while self.journal:
            name, args, kwargs = self.journal[0]
            await getattr(self.redis, name)(*args, **kwargs)
            self.journal.pop(0)
        # No await since the journal emptied: nothing can slip in between.
        self.local = _LocalCrossSession(self._store.settings)


class FallbackRedisSessionStore(RedisSessionStore):
    """The Redis store, serving from memory while Redis is unreachable (see the module docstring)."""

    def __init__(self, *, start_open: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        s = self.settings
        self.fallback = FallbackSessionService(
            self.service,  # type: ignore[arg-type]  # the RedisSessionService the base made
            failure_threshold=s.redis_failure_threshold,
            health_check_interval=s.redis_health_check_interval,
        )
        self.service = self.fallback
        self.memory = self._cross = _FallbackCrossSession(self, self.memory)  # type: ignore[arg-type]
        self._shadow = LocalRecords()
        self._forgotten: dict[str, str] = {}
        self.owner_conflicts = 0
        self.fallback.companions.append(self)
        if start_open:  # Redis was unreachable at creation: the health task must run on the store's loop
            self._runner.run(self._open_at_start())

    async def _open_at_start(self) -> None:
        self.fallback.open_at_start()

    @property
    def store_type(self) -> str:
        """``"memory"`` while the breaker is not closed, else ``"redis"``."""
        return "memory" if self.degraded() else "redis"

    def degraded(self) -> bool:
        """True while the breaker is not closed (requests are served from memory)."""
        return self.fallback.state is not BreakerState.CLOSED

    def _local(self, session_id: str) -> bool:
        return session_id in self._shadow.owners or session_id in self._forgotten

    # -- store primitives: Redis unless degraded; memory (kept for write-back) otherwise --
    async def _owner_get(self, session_id: str) -> str | None:
        if self._local(session_id):
            return self._shadow.owners.get(session_id)
        if not self.degraded():
            try:
                return await super()._owner_get(session_id)
            except UNAVAILABLE_ERRORS as exc:
                self.fallback._failed(exc, "owner lookup")
        return None

    async def _owner_claim(self, session_id: str, user_id: str) -> str:
        if not self.degraded() and not self._local(session_id):
            try:
                return await super()._owner_claim(session_id, user_id)
            except UNAVAILABLE_ERRORS as exc:
                self.fallback._failed(exc, "owner claim")
        self._forgotten.pop(session_id, None)
        self.fallback._ensure_health_task()
        return self._shadow.claim(session_id, user_id)

    async def _owner_touch(self, session_id: str) -> None:
        if self.degraded() or self._local(session_id):
            return  # the write-back sets the TTL
        try:
            await super()._owner_touch(session_id)
        except UNAVAILABLE_ERRORS as exc:
            self.fallback._failed(exc, "owner touch")

    async def _owner_forget(self, session_id: str, user_id: str) -> None:
        if not self.degraded() and not self._local(session_id):
            try:
                await super()._owner_forget(session_id, user_id)
                return
            except UNAVAILABLE_ERRORS as exc:
                self.fallback._failed(exc, "owner forget")
        self._shadow.forget(session_id, user_id)
        self._forgotten[session_id] = user_id
        self.fallback._ensure_health_task()

    async def _record_failure(self, session_id: str) -> None:
        if not self.degraded():
            try:
                await super()._record_failure(session_id)
                return
            except UNAVAILABLE_ERRORS as exc:
                self.fallback._failed(exc, "failure counter")
        self._shadow.record_failure(session_id)
        self.fallback._ensure_health_task()

    async def _security_stats(self) -> dict[str, Any]:
        local = self._shadow.security_stats(self.config.flag_threshold)
        if self.degraded():
            return local
        try:
            stats = await super()._security_stats()
        except UNAVAILABLE_ERRORS as exc:
            self.fallback._failed(exc, "security stats")
            return local
        stats["total_failed_attempts"] += local["total_failed_attempts"]  # not written back yet
        return stats

    async def _total_sessions(self) -> int:
        if not self.degraded():
            try:
                return await super()._total_sessions()
            except UNAVAILABLE_ERRORS as exc:
                self.fallback._failed(exc, "session count")
        return len((await self.fallback.memory.list_sessions(app_name=self.app_name)).sessions)

    async def _cleanup(self) -> int:
        if self.degraded():
            return 0
        try:
            return await super()._cleanup()
        except UNAVAILABLE_ERRORS as exc:
            self.fallback._failed(exc, "cleanup")
            return 0

    async def _redis_stats(self) -> dict[str, Any]:
        stats = await super()._redis_stats()
        breaker = self.fallback.get_redis_stats()
        stats.update(
            breaker_state=breaker["breaker_state"],
            fallback_operations=breaker["fallback_operations"],
            pending_write_back=breaker["pending_write_back"] + int(self.pending()),
            written_back=breaker["written_back"],
            conflicts=breaker["conflicts"] + self.owner_conflicts,
            last_recovery_seconds=breaker["last_recovery_seconds"],
        )
        if stats["last_error"] is None:
            stats["last_error"] = breaker["last_error"]
        return stats

    # -- write-back (a companion of the session service's breaker) ---------------
    def pending(self) -> bool:
        """True while owner records, counters or cross-session writes wait for Redis."""
        s = self._shadow
        return bool(s.owners or self._forgotten or s.failed or s.failures or self._cross.journal)

    async def write_back(self) -> None:
        """Write what the store kept in memory to Redis (run by the breaker's health task)."""
        for sid, user in list(self._forgotten.items()):
            await RedisSessionStore._owner_forget(self, sid, user)
            if self._forgotten.get(sid) == user:
                del self._forgotten[sid]
        for sid, user in list(self._shadow.owners.items()):
            owner = await RedisSessionStore._owner_claim(self, sid, user)
            if owner != user:
                self.owner_conflicts += 1
                logger.error("Write-back: session %r already has another owner in Redis; kept that one", sid)
            if self._shadow.owners.get(sid) == user:
                del self._shadow.owners[sid]
        failed, failures = self._shadow.failed, dict(self._shadow.failures)
        if failed or failures:
            pipe = self.client.pipeline(transaction=False)
            pipe.incrby(self.keys.security_failed(self.app_name), failed)
            for sid, n in failures.items():
                pipe.zincrby(self.keys.security_sessions(self.app_name), n, escape(sid))
            await pipe.execute()
            self._shadow.failed -= failed
            for sid, n in failures.items():
                left = self._shadow.failures.get(sid, 0) - n
                if left > 0:
                    self._shadow.failures[sid] = left
                else:
                    self._shadow.failures.pop(sid, None)
        await self._cross.write_back()
