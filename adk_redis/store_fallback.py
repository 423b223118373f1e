"""Mid-run fallback for the design API's store (``get_session_store()``).

:class:`FallbackRedisSessionStore` is the Redis store behind the resilience core
(:mod:`adk_redis.resilience`) of its :class:`~adk_redis.fallback.FallbackSessionService`, which also
carries its sessions and messages.  The store's own records follow the same breaker and the same
journal: while Redis is unreachable, owner records, failed-attempt counters and cross-session writes
(user context, agent memory, session history) are kept in this process and journaled; when Redis
answers, the core's health loop replays them in order (owner records with ``SET NX``: an owner another
instance recorded meanwhile wins and the clash is counted in ``owner_conflicts``), then closes.  While
the breaker is open, stats report ``store_type: "memory"``, as the design asks.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypeVar

from .facade import LocalRecords, RedisSessionStore, _LocalCrossSession
from .fallback import FallbackSessionService
from .resilience import Resilience

if TYPE_CHECKING:
    from .cross_session import CrossSessionMemory

logger = logging.getLogger("adk_redis.facade")

__all__ = ["FallbackRedisSessionStore"]

T = TypeVar("T")


async def _nothing() -> None:
    return None


class _FallbackCrossSession:
    """Cross-session memory on Redis, kept locally (and journaled) while Redis is unreachable."""

    def __init__(self, core: Resilience, redis: CrossSessionMemory, local: _LocalCrossSession) -> None:
        self.core = core
        self.redis = redis
        self.local = local

    async def _write(self, key: tuple[str, ...], name: str, *args: Any, **kwargs: Any) -> None:
        async def in_memory() -> None:
            await getattr(self.local, name)(*args, **kwargs)  # validates, copies
            self.core.defer(("cross",) + key, name, lambda: getattr(self.redis, name)(*args, **kwargs))

        await self.core.call(
            name,
            lambda: getattr(self.redis, name)(*args, **kwargs),
            in_memory,
            local=self.core.pending(("cross",) + key),
        )

    async def _read(self, key: tuple[str, ...], name: str, *args: Any) -> dict[str, Any] | None:
        if self.core.pending(("cross",) + key):  # written in the outage: memory's is the newest
            found: dict[str, Any] | None = await getattr(self.local, name)(*args)
            return found
        return await self.core.call(
            name, lambda: getattr(self.redis, name)(*args), lambda: getattr(self.local, name)(*args)
        )

    async def store_user_context(
        self, user_id: str | int, context_key: str, context_data: dict[str, Any]
    ) -> None:
        key = ("user", str(user_id), context_key)
        await self._write(key, "store_user_context", user_id, context_key, context_data)

    async def get_user_context(self, user_id: str | int, context_key: str) -> dict[str, Any] | None:
        return await self._read(("user", str(user_id), context_key), "get_user_context", user_id, context_key)

    async def store_agent_memory(
        self, agent_id: str | int, memory_key: str, memory_data: dict[str, Any]
    ) -> None:
        key = ("agent", str(agent_id), memory_key)
        await self._write(key, "store_agent_memory", agent_id, memory_key, memory_data)

    async def get_agent_memory(self, agent_id: str | int, memory_key: str) -> dict[str, Any] | None:
        return await self._read(
            ("agent", str(agent_id), memory_key), "get_agent_memory", agent_id, memory_key
        )

    async def record_session(
        self,
        user_id: str | int,
        session_id: str,
        summary: dict[str, Any] | None = None,
        timestamp: float | None = None,
    ) -> None:
        key = ("history", str(user_id), session_id)
        await self._write(key, "record_session", user_id, session_id, summary=summary, timestamp=timestamp)

    async def get_session_history(self, user_id: str | int, limit: int = 10) -> list[dict[str, Any]]:
        records = {r["session_id"]: r for r in await self.local.get_session_history(user_id, limit)}

        async def from_redis() -> list[dict[str, Any]]:
            return await self.redis.get_session_history(user_id, limit)

        async def none() -> list[dict[str, Any]]:
            return []

        for r in await self.core.call("get_session_history", from_redis, none):
            records.setdefault(r["session_id"], r)
        ordered = sorted(records.values(), key=lambda r: (r["timestamp"], r["session_id"]), reverse=True)
        return ordered[: max(limit, 0)]

    async def stats(self) -> dict[str, Any]:
        return await self.core.call("memory stats", self.redis.stats, self.local.stats)


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
        self.core = self.fallback.core
        self.service = self.fallback
        self._local_cross = _LocalCrossSession(s)
        self.memory = self._cross = _FallbackCrossSession(self.core, self.memory, self._local_cross)  # type: ignore[arg-type]
        self.core.on_drained(self._drained)
        self._shadow = LocalRecords()
        self.owner_conflicts = 0
        if start_open:  # Redis was unreachable at creation: the health loop must run on the store's loop
            self._runner.run(self._open_at_start())

    async def _open_at_start(self) -> None:
        self.core.open_at_start()

    def _drained(self) -> None:
        self._local_cross.clear()

    @property
    def store_type(self) -> str:
        """``"memory"`` while the breaker is not closed, else ``"redis"``."""
        return "memory" if self.core.degraded else "redis"

    def _owner_local(self, session_id: str) -> bool:
        return self.core.pending(("owner", session_id))

    # -- store primitives: Redis unless degraded; memory (journaled for write-back) otherwise --
    async def _owner_get(self, session_id: str) -> str | None:
        async def in_memory() -> str | None:
            return self._shadow.owners.get(session_id)

        return await self.core.call(
            "owner lookup",
            lambda: RedisSessionStore._owner_get(self, session_id),
            in_memory,
            local=self._owner_local(session_id),
        )

    async def _owner_claim(self, session_id: str, user_id: str) -> str:
        async def in_memory() -> str:
            owner = self._shadow.claim(session_id, user_id)
            self.core.defer(
                ("owner", session_id), "owner claim", lambda: self._replay_claim(session_id, owner)
            )
            return owner

        return await self.core.call(
            "owner claim",
            lambda: RedisSessionStore._owner_claim(self, session_id, user_id),
            in_memory,
            local=self._owner_local(session_id),
        )

    async def _replay_claim(self, session_id: str, user_id: str) -> None:
        owner = await RedisSessionStore._owner_claim(self, session_id, user_id)
        if owner != user_id:
            self.owner_conflicts += 1
            logger.error(
                "Write-back: session %r already has another owner in Redis; kept that one", session_id
            )
        self._shadow.forget(session_id, user_id)

    async def _owner_touch(self, session_id: str) -> None:
        await self.core.call(
            "owner touch",
            lambda: RedisSessionStore._owner_touch(self, session_id),
            _nothing,  # the write-back sets the TTL
            local=self._owner_local(session_id),
        )

    async def _owner_forget(self, session_id: str, user_id: str) -> None:
        async def in_memory() -> None:
            self._shadow.forget(session_id, user_id)
            self.core.defer(
                ("owner", session_id),
                "owner forget",
                lambda: RedisSessionStore._owner_forget(self, session_id, user_id),
            )

        await self.core.call(
            "owner forget",
            lambda: RedisSessionStore._owner_forget(self, session_id, user_id),
            in_memory,
            local=self._owner_local(session_id),
        )

    async def _record_failure(self, session_id: str) -> None:
        async def in_memory() -> None:
            self._shadow.record_failure(session_id)
            self.core.defer(("failures",), "failure counter", lambda: self._replay_failure(session_id))

        await self.core.call(
            "failure counter", lambda: RedisSessionStore._record_failure(self, session_id), in_memory
        )

    async def _replay_failure(self, session_id: str) -> None:
        await RedisSessionStore._record_failure(self, session_id)
        self._shadow.unrecord_failure(session_id)

    async def _security_stats(self) -> dict[str, Any]:
        local = self._shadow.security_stats(self.config.flag_threshold)

        async def from_redis() -> dict[str, Any]:
            stats = await RedisSessionStore._security_stats(self)
            stats["total_failed_attempts"] += local["total_failed_attempts"]  # not written back yet
            return stats

        async def in_memory() -> dict[str, Any]:
            return local

        return await self.core.call("security stats", from_redis, in_memory)

    async def _total_sessions(self) -> int:
        async def in_memory() -> int:
            return len((await self.fallback.memory.list_sessions(app_name=self.app_name)).sessions)

        return await self.core.call(
            "session count", lambda: RedisSessionStore._total_sessions(self), in_memory
        )

    async def _cleanup(self) -> int:
        async def none() -> int:
            return 0

        return await self.core.call("cleanup", lambda: RedisSessionStore._cleanup(self), none)

    async def _redis_stats(self) -> dict[str, Any]:
        stats = await super()._redis_stats()
        breaker = self.fallback.get_redis_stats()
        stats.update(
            breaker_state=breaker["breaker_state"],
            fallback_operations=breaker["fallback_operations"],
            pending_write_back=breaker["pending_write_back"],
            written_back=breaker["written_back"],
            conflicts=breaker["conflicts"] + self.owner_conflicts,
            failed=breaker["failed"],
            health_restarts=breaker["health_restarts"],
            last_recovery_seconds=breaker["last_recovery_seconds"],
        )
        if stats["last_error"] is None:
            stats["last_error"] = breaker["last_error"]
        return stats
