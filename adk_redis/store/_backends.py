"""Backends of the design API's store (:mod:`adk_redis.store._api`): where its records live.

A backend carries the ADK session service, the cross-session memory and the store's own records (owner
of each session id, failed-attempt counters) of one place:

* :class:`RedisStoreBackend`: Redis (``P:session:owner:<a>:<s>``, ``P:facade:security:<a>:...``);
* :class:`LocalStoreBackend`: this process (memory mode);
* :class:`~adk_redis.store._fallback.FallbackStoreBackend`: the two composed with the resilience core.

Every backend has the same methods (:class:`StoreBackend`); the store calls nothing else.
"""

from __future__ import annotations

import json
import time
from collections.abc import Coroutine
from typing import Any, Protocol, TypedDict, TypeVar, cast

import redis.asyncio as aioredis
from google.adk.sessions.base_session_service import BaseSessionService
from google.adk.sessions.in_memory_session_service import InMemorySessionService
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .._core.codec import text
from .._core.connection import client_stats, typed_error
from .._core.kwargs import known_fields
from .._core.ttl import ttl_ms
from .._core.url import redact_url
from ..config import RedisSettings
from ..errors import AdkRedisError, RedisUnavailableError
from ..keys import KeySchema, escape, unescape
from ..memory._cross_session import CrossSessionMemory
from ..memory._docs import history_record
from ..resilience._breaker import UNAVAILABLE_ERRORS
from ..sessions._service import RedisSessionService

T = TypeVar("T")

_FORGET_OWNER = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class SessionStoreConfig(BaseModel):
    """Facade settings (the design's ``SessionStoreConfig``).

    ``max_sessions`` is a soft cap checked when a session is created (default ``STORE_MAX_SESSIONS``,
    10,000); ``session_ttl_hours`` a sliding TTL (default ``SESSION_TTL_HOURS``; unset: sessions never
    expire); ``cleanup_interval_minutes`` (0: off) runs
    :meth:`~adk_redis.store.SessionStore.cleanup_expired_sessions` in the background; ``app_name``
    defaults to the key prefix; a session is *flagged* after ``flag_threshold`` failed (wrong-user)
    accesses.  Fields left unset take the settings' values (:meth:`resolved`).
    """

    model_config = ConfigDict(extra="forbid")

    max_sessions: int | None = Field(default=None, ge=1)
    session_ttl_hours: float | None = Field(default=None, gt=0)
    cleanup_interval_minutes: float = Field(default=60, ge=0)
    app_name: str | None = Field(default=None, min_length=1)
    flag_threshold: int = Field(default=3, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        return known_fields(cls, data)  # a misspelt field is a TypeError naming the fields

    def resolved(self, *, settings: RedisSettings) -> SessionStoreConfig:
        """This config with every field left unset taken from ``settings`` (one set of defaults)."""
        given = self.model_fields_set
        update: dict[str, Any] = {}
        if "max_sessions" not in given or self.max_sessions is None:
            update["max_sessions"] = settings.store_max_sessions
        if "session_ttl_hours" not in given:
            update["session_ttl_hours"] = settings.session_ttl_hours
        if self.app_name is None:
            update["app_name"] = settings.redis_key_prefix
        return self.model_copy(update=update)


class RedisStats(TypedDict, total=False):
    """``SessionStore.get_redis_stats()``: the design's keys, from the connection's own counters
    (:func:`adk_redis._core.connection.client_stats`); the fallback backend adds its breaker's."""

    store_type: str
    redis_available: bool
    ping_ms: float | None
    connection_retries: int
    operation_errors: int
    last_error: str | None
    pool_created_connections: int
    pool_in_use_connections: int
    pool_idle_connections: int
    pool_max_connections: int | None
    redis_url: str
    key_prefix: str
    # the fallback backend (Redis, local while it is unreachable)
    breaker_state: str
    fallback_operations: int
    pending_write_back: int
    written_back: int
    conflicts: int
    failed: int
    health_restarts: int
    last_recovery_seconds: float | None


class SecurityStats(TypedDict):
    """``SessionStore.get_security_stats()``: failed (wrong-user) accesses (Redis and local alike)."""

    total_failed_attempts: int
    flagged_sessions: int
    sessions_with_failed_attempts: int
    flag_threshold: int
    flagged_session_ids: list[str]


def _pool_fields(client: Any) -> RedisStats:
    """The design's connection fields, from the connection's counters (none for memory mode)."""
    if client is None:
        return RedisStats(
            connection_retries=0,
            pool_created_connections=0,
            pool_in_use_connections=0,
            pool_idle_connections=0,
            pool_max_connections=None,
        )
    stats = client_stats(client)
    pool = stats["pool"]
    return RedisStats(
        connection_retries=stats["connection_retries"],
        pool_created_connections=pool["created"],
        pool_in_use_connections=pool["in_use"],
        pool_idle_connections=pool["created"] - pool["in_use"],
        pool_max_connections=pool["max"],
    )


class StoreBackend(Protocol):
    """What the store needs from a backend."""

    service: BaseSessionService
    memory: CrossSessionAPI

    @property
    def store_type(self) -> str: ...
    async def guard(self, coro: Coroutine[Any, Any, T]) -> T: ...
    async def owner_get(self, session_id: str) -> str | None: ...
    async def owner_claim(self, session_id: str, user_id: str) -> str: ...
    async def owner_touch(self, session_id: str) -> None: ...
    async def owner_forget(self, session_id: str, user_id: str) -> None: ...
    async def record_failure(self, session_id: str) -> None: ...
    async def security_stats(self) -> SecurityStats: ...
    async def total_sessions(self) -> int: ...
    async def cleanup(self) -> int: ...
    async def redis_stats(self) -> RedisStats: ...
    async def close(self) -> None: ...


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


class LocalCrossSession:
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
        record = history_record(session_id, ts, _json_copy(summary or {}, "summary"))
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


class RedisStoreBackend:
    """The store's records on Redis: owner keys, failed-attempt counters, the session service
    (``stale_policy="merge"``: messages carry no state deltas, so concurrent writers never conflict) and
    cross-session memory on the same client."""

    kind = "redis"

    def __init__(
        self,
        *,
        config: SessionStoreConfig,
        settings: RedisSettings,
        app_name: str,
        client: Any,
        owns_client: bool,
    ) -> None:
        self.config = config
        self.settings = settings
        self.app_name = app_name
        self.client = client
        self.keys = KeySchema(settings.redis_key_prefix)
        self._owns_client = owns_client
        self._errors = 0
        self._last_error: str | None = None
        self._available = True
        hours = config.session_ttl_hours
        self._ttl_ms = ttl_ms(hours) if hours else None
        self._ttl_s = self._ttl_ms / 1000 if self._ttl_ms else None
        ttl_settings = settings.model_copy(update={"session_ttl_hours": hours})
        self.redis_service = RedisSessionService(client=client, settings=ttl_settings, stale_policy="merge")
        self.service: BaseSessionService = self.redis_service
        self.memory: CrossSessionAPI = CrossSessionMemory(client, self.keys, settings, app_name=app_name)
        self._forget = client.register_script(_FORGET_OWNER)

    @property
    def store_type(self) -> str:
        return "redis"

    async def guard(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a store call, counting outages for the stats (no fallback here).

        adk_redis' clients raise :class:`RedisUnavailableError` themselves (:mod:`adk_redis.connection`);
        an injected client's raw redis-py error is translated the same way (:func:`typed_error`).
        """
        try:
            result = await coro
        except Exception as exc:
            typed = typed_error(exc, what="a store call", writes=False)
            if typed is exc and not isinstance(exc, RedisUnavailableError):
                raise
            self._errors += 1
            self._available = False
            self._last_error = f"{type(exc).__name__}: {exc}"
            if typed is exc:
                raise
            raise typed from exc
        self._available = True
        return result

    def _owner_key(self, session_id: str) -> str:
        return self.keys.session_owner(self.app_name, session_id)

    async def owner_get(self, session_id: str) -> str | None:
        value = await self.client.get(self._owner_key(session_id))
        return None if value is None else text(value)

    async def owner_claim(self, session_id: str, user_id: str) -> str:
        key = self._owner_key(session_id)
        for _ in range(3):
            if await self.client.set(key, user_id, nx=True, px=self._ttl_ms):
                return user_id
            value = await self.client.get(key)
            if value is not None:
                return text(value)
        raise AdkRedisError(f"Could not claim the owner record of session {session_id!r}")

    async def owner_touch(self, session_id: str) -> None:
        if self._ttl_ms:
            await self.client.pexpire(self._owner_key(session_id), self._ttl_ms)

    async def owner_forget(self, session_id: str, user_id: str) -> None:
        await self._forget(keys=[self._owner_key(session_id)], args=[user_id])

    async def record_failure(self, session_id: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.incr(self.keys.security_failed(self.app_name))
        pipe.zincrby(self.keys.security_sessions(self.app_name), 1, escape(session_id))
        await pipe.execute()

    async def security_stats(self) -> SecurityStats:
        threshold = self.config.flag_threshold
        zkey = self.keys.security_sessions(self.app_name)
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.keys.security_failed(self.app_name))
        pipe.zcount(zkey, threshold, "+inf")
        pipe.zcard(zkey)
        pipe.zrevrangebyscore(zkey, "+inf", threshold, start=0, num=10)
        failed, flagged, with_failures, top = await pipe.execute()
        return SecurityStats(
            total_failed_attempts=int(failed or 0),
            flagged_sessions=int(flagged),
            sessions_with_failed_attempts=int(with_failures),
            flag_threshold=threshold,
            flagged_session_ids=[unescape(text(m)) for m in top],
        )

    async def total_sessions(self) -> int:
        index = self.keys.app_index(self.app_name)
        if self._ttl_s:
            return int(await self.client.zcount(index, time.time() - self._ttl_s, "+inf"))
        return int(await self.client.zcard(index))

    async def cleanup(self) -> int:
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
                    await self.owner_forget(sid, user)
                removed += len(gone)
            offset += len(batch) - len(gone)
            if len(batch) < 500:
                return removed

    async def redis_stats(self, *, ping: bool = True) -> RedisStats:
        start = time.perf_counter()
        ping_ms: float | None = None
        try:
            if not ping:  # the breaker is open: no waiting on a dead or stalled server
                raise RedisUnavailableError(self._last_error or "circuit breaker open")
            await self.client.ping()
            ping_ms = round((time.perf_counter() - start) * 1000, 3)
            self._available = True
        except UNAVAILABLE_ERRORS as exc:
            self._available = False
            self._errors += 1
            self._last_error = f"{type(exc).__name__}: {exc}"
        return RedisStats(
            store_type="redis",
            redis_available=self._available,
            ping_ms=ping_ms,
            operation_errors=self._errors,
            last_error=self._last_error,
            **_pool_fields(self.client),
            redis_url=redact_url(self.settings.redis_url) if self._owns_client else "(injected client)",
            key_prefix=self.keys.prefix,
        )

    async def close(self) -> None:
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

    def security_stats(self, threshold: int) -> SecurityStats:
        counts = self.failures
        flagged = sorted((s for s, n in counts.items() if n >= threshold), key=counts.__getitem__)
        return SecurityStats(
            total_failed_attempts=self.failed,
            flagged_sessions=len(flagged),
            sessions_with_failed_attempts=len(self.failures),
            flag_threshold=threshold,
            flagged_session_ids=flagged[::-1][:10],
        )


class LocalStoreBackend:
    """The store's records in this process (memory mode; the local side of the fallback backend)."""

    kind = "memory"

    def __init__(
        self, *, config: SessionStoreConfig, settings: RedisSettings, app_name: str, reason: str
    ) -> None:
        self.config = config
        self.app_name = app_name
        self.reason = reason
        self.records = LocalRecords()
        hours = config.session_ttl_hours
        self._ttl_s = hours * 3600 if hours else None
        self.memory_service = InMemorySessionService()
        self.service: BaseSessionService = self.memory_service
        self.local_memory = LocalCrossSession(settings)
        self.memory: CrossSessionAPI = self.local_memory

    @property
    def store_type(self) -> str:
        return "memory"

    async def guard(self, coro: Coroutine[Any, Any, T]) -> T:
        return await coro

    async def close(self) -> None:
        return None

    async def owner_get(self, session_id: str) -> str | None:
        return self.records.owners.get(session_id)

    async def owner_claim(self, session_id: str, user_id: str) -> str:
        return self.records.claim(session_id, user_id)

    async def owner_touch(self, session_id: str) -> None:
        return None

    async def owner_forget(self, session_id: str, user_id: str) -> None:
        self.records.forget(session_id, user_id)

    async def record_failure(self, session_id: str) -> None:
        self.records.record_failure(session_id)

    async def security_stats(self) -> SecurityStats:
        return self.records.security_stats(self.config.flag_threshold)

    async def total_sessions(self) -> int:
        resp = await self.service.list_sessions(app_name=self.app_name)
        if not self._ttl_s:
            return len(resp.sessions)
        cutoff = time.time() - self._ttl_s
        return sum(1 for s in resp.sessions if s.last_update_time > cutoff)

    async def cleanup(self) -> int:
        """Delete sessions idle for longer than the TTL (memory has no key expiry)."""
        if not self._ttl_s:
            return 0
        cutoff = time.time() - self._ttl_s
        resp = await self.service.list_sessions(app_name=self.app_name)
        removed = 0
        for s in resp.sessions:
            if s.last_update_time <= cutoff:
                await self.service.delete_session(app_name=self.app_name, user_id=s.user_id, session_id=s.id)
                await self.owner_forget(s.id, s.user_id)
                self.records.failures.pop(s.id, None)
                removed += 1
        return removed

    async def redis_stats(self, *, ping: bool = False) -> RedisStats:
        return RedisStats(
            store_type="memory",
            redis_available=False,
            ping_ms=None,
            operation_errors=0,
            last_error=self.reason,
            **_pool_fields(None),
        )
