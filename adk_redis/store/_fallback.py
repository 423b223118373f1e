"""The design API's store riding out Redis outages: a backend composed of the Redis backend and the
local backend (:mod:`adk_redis.store._backends`) with the resilience core
(:mod:`adk_redis.resilience._breaker`).

Sessions and messages go through a :class:`~adk_redis.resilience.FallbackSessionService` wrapping the two
backends' session services; its core is the store's core, so the store's own records (owner records,
failed-attempt counters, user context, agent memory, session history) follow the same breaker and the
same ordered journal: while Redis is unreachable they are kept by the local backend and journaled; when
Redis answers, the health loop replays them in order (owner records with ``SET NX``: an owner another
instance recorded meanwhile wins and the clash is counted in ``owner_conflicts``), then closes.  While
the breaker is open, stats report ``store_type: "memory"``, as the design asks.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from google.adk.sessions.base_session_service import BaseSessionService

from ..resilience._breaker import Resilience
from ..resilience._fallback import FallbackSessionService
from ._backends import (
    CrossSessionAPI,
    LocalCrossSession,
    LocalStoreBackend,
    RedisStats,
    RedisStoreBackend,
    SecurityStats,
)

logger = logging.getLogger("adk_redis.facade")

__all__ = ["FallbackStoreBackend"]

T = TypeVar("T")


async def _nothing() -> None:
    return None


async def _zero() -> int:
    return 0


class _FallbackCrossSession:
    """Cross-session memory on Redis, kept locally (and journaled) while Redis is unreachable."""

    def __init__(self, core: Resilience, redis: CrossSessionAPI, local: LocalCrossSession) -> None:
        self.core = core
        self.redis = redis
        self.local = local

    async def _write(self, key: tuple[str, ...], name: str, *args: Any, **kwargs: Any) -> None:
        async def in_memory() -> None:
            await getattr(self.local, name)(*args, **kwargs)  # validates, copies
            self.core.defer(("cross", *key), name, lambda: getattr(self.redis, name)(*args, **kwargs))

        await self.core.call(
            name,
            lambda: getattr(self.redis, name)(*args, **kwargs),
            in_memory,
            local=self.core.pending(("cross", *key)),
        )

    async def _read(self, key: tuple[str, ...], name: str, *args: Any) -> dict[str, Any] | None:
        result: dict[str, Any] | None = await self.core.call(
            name,
            lambda: getattr(self.redis, name)(*args),
            lambda: getattr(self.local, name)(*args),
            local=self.core.pending(("cross", *key)),  # written in the outage: the local copy is newest
        )
        return result

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

        async def none() -> list[dict[str, Any]]:
            return []

        for r in await self.core.call(
            "get_session_history", lambda: self.redis.get_session_history(user_id, limit), none
        ):
            records.setdefault(r["session_id"], r)
        ordered = sorted(records.values(), key=lambda r: (r["timestamp"], r["session_id"]), reverse=True)
        return ordered[: max(limit, 0)]

    async def stats(self) -> dict[str, Any]:
        return await self.core.call("memory stats", self.redis.stats, self.local.stats)


class FallbackStoreBackend:
    """Redis backend first, local backend while Redis is unreachable (see the module docstring)."""

    kind = "redis"

    def __init__(self, redis: RedisStoreBackend, local: LocalStoreBackend) -> None:
        self.redis = redis
        self.local = local
        settings = redis.settings
        self.fallback = FallbackSessionService(
            redis.redis_service,
            local.memory_service,
            failure_threshold=settings.redis_failure_threshold,
            health_check_interval=settings.redis_health_check_interval,
        )
        self.core = self.fallback.core
        self.service: BaseSessionService = self.fallback
        self.memory: CrossSessionAPI = _FallbackCrossSession(self.core, redis.memory, local.local_memory)
        self.core.on_drained(local.local_memory.clear)
        self.owner_conflicts = 0

    async def open_at_start(self) -> None:
        """Redis did not answer at creation (run on the store's loop: the health loop starts there)."""
        self.core.open_at_start()

    @property
    def store_type(self) -> str:
        """``"memory"`` while the breaker is not closed, else ``"redis"``."""
        return "memory" if self.core.degraded else "redis"

    async def guard(self, coro: Coroutine[Any, Any, T]) -> T:
        return await coro  # every primitive is routed by the core

    def _owner_local(self, session_id: str) -> bool:
        return self.core.pending(("owner", session_id))

    # -- owner records: Redis unless degraded; local (journaled for write-back) otherwise --
    async def owner_get(self, session_id: str) -> str | None:
        return await self.core.call(
            "owner lookup",
            lambda: self.redis.owner_get(session_id),
            lambda: self.local.owner_get(session_id),
            local=self._owner_local(session_id),
        )

    async def owner_claim(self, session_id: str, user_id: str) -> str:
        async def in_memory() -> str:
            owner = await self.local.owner_claim(session_id, user_id)
            self.core.defer(
                ("owner", session_id), "owner claim", lambda: self._replay_claim(session_id, owner)
            )
            return owner

        return await self.core.call(
            "owner claim",
            lambda: self.redis.owner_claim(session_id, user_id),
            in_memory,
            local=self._owner_local(session_id),
        )

    async def _replay_claim(self, session_id: str, user_id: str) -> None:
        owner = await self.redis.owner_claim(session_id, user_id)
        if owner != user_id:
            self.owner_conflicts += 1
            logger.error(
                "Write-back: session %r already has another owner in Redis; kept that one", session_id
            )
        await self.local.owner_forget(session_id, user_id)

    async def owner_touch(self, session_id: str) -> None:
        await self.core.call(
            "owner touch",
            lambda: self.redis.owner_touch(session_id),
            _nothing,  # the write-back sets the TTL
            local=self._owner_local(session_id),
        )

    async def owner_forget(self, session_id: str, user_id: str) -> None:
        async def in_memory() -> None:
            await self.local.owner_forget(session_id, user_id)
            self.core.defer(
                ("owner", session_id), "owner forget", lambda: self.redis.owner_forget(session_id, user_id)
            )

        await self.core.call(
            "owner forget",
            lambda: self.redis.owner_forget(session_id, user_id),
            in_memory,
            local=self._owner_local(session_id),
        )

    # -- failed-attempt counters ---------------------------------------------------------
    async def record_failure(self, session_id: str) -> None:
        async def in_memory() -> None:
            await self.local.record_failure(session_id)
            self.core.defer(("failures",), "failure counter", lambda: self._replay_failure(session_id))

        await self.core.call("failure counter", lambda: self.redis.record_failure(session_id), in_memory)

    async def _replay_failure(self, session_id: str) -> None:
        await self.redis.record_failure(session_id)
        self.local.records.unrecord_failure(session_id)

    async def security_stats(self) -> SecurityStats:
        local = await self.local.security_stats()

        async def from_redis() -> SecurityStats:
            stats = await self.redis.security_stats()
            stats["total_failed_attempts"] += local["total_failed_attempts"]  # not written back yet
            return stats

        async def in_memory() -> SecurityStats:
            return local

        return await self.core.call("security stats", from_redis, in_memory)

    # -- counts, cleanup, stats --------------------------------------------------------------
    async def total_sessions(self) -> int:
        return await self.core.call("session count", self.redis.total_sessions, self.local.total_sessions)

    async def cleanup(self) -> int:
        return await self.core.call("cleanup", self.redis.cleanup, _zero)

    async def redis_stats(self) -> RedisStats:
        stats = await self.redis.redis_stats(ping=not self.core.degraded)
        breaker = self.fallback.get_redis_stats()
        stats.update(
            RedisStats(
                store_type=self.store_type,
                breaker_state=breaker["breaker_state"],
                fallback_operations=breaker["fallback_operations"],
                pending_write_back=breaker["pending_write_back"],
                written_back=breaker["written_back"],
                conflicts=breaker["conflicts"] + self.owner_conflicts,
                failed=breaker["failed"],
                health_restarts=breaker["health_restarts"],
                last_recovery_seconds=breaker["last_recovery_seconds"],
            )
        )
        if stats["last_error"] is None:
            stats["last_error"] = breaker["last_error"]
        return stats

    async def close(self) -> None:
        await self.core.close()
        await self.redis.close()
