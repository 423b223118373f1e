"""CrossSessionMemory: user context, agent memory, shared knowledge and session history.

The design's cross-session API, scoped to one app.  Values are JSON documents
(never pickle) with per-record TTLs from the settings (``MEMORY_TTL_HOURS``,
``KNOWLEDGE_TTL_HOURS``, ``HISTORY_TTL_HOURS``; fractional hours allowed).
User context and knowledge are also indexed for full-text search, so
:class:`adk_redis.memory.RedisMemoryService` finds them.  Knowledge is
shared by every user of the app (scoped per app, never across apps).
Document ids, payloads and stored values: :mod:`adk_redis.memory._docs`.

Every write respects ``maxmemory``: with Redis at its limit under
``noeviction`` a store or record raises
:class:`~adk_redis.errors.RedisOutOfMemoryError` and writes nothing (other
error replies map as :func:`adk_redis.errors.server_error` says).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from redis.exceptions import ResponseError

from .._core.codec import text
from .._core.connection import adopt_client, read_script
from .._core.durability import Durability, Recorder
from .._core.kwargs import strict
from .._core.ttl import ttl_ms
from ..config import RedisSettings
from ..errors import CorruptedDataError, server_error
from ..keys import KeySchema, escape, unescape
from ._docs import (
    context_id,
    context_payload,
    dump_value,
    history_record,
    knowledge_filter,
    knowledge_id,
    knowledge_member,
    knowledge_payload,
    knowledge_result,
    load_object,
)
from ._search import SearchIndex, now_ms
from .embeddings import Embedder, pack

logger = logging.getLogger("adk_redis.memory")

__all__ = ["CrossSessionMemory", "ttl_ms"]

# Out of memory: Redis checks maxmemory in a script only until its first write, so every script
# here that may grow memory starts writing with a deny-oom command (ZADD, SET); under maxmemory with
# noeviction it stops there with an OOM error and writes nothing.

# KEYS: order, data, expiry   ARGV: member, timestamp, record, expires_ms, ttl_ms, now_ms
# The entry is written first (deny-oom ZADD), then up to 256 expired entries are pruned (the new
# entry expires in the future, so it is never among them).
_HISTORY_PUT = r"""
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[6], 'LIMIT', 0, 256)
for _, m in ipairs(dead) do
  redis.call('ZREM', KEYS[1], m); redis.call('HDEL', KEYS[2], m); redis.call('ZREM', KEYS[3], m)
end
local ttl = tonumber(ARGV[5])
for k = 1, 3 do
  local cur = redis.call('PTTL', KEYS[k])
  if cur == -1 or (cur >= 0 and cur < ttl) then redis.call('PEXPIRE', KEYS[k], ttl) end
end
return 1
"""

# KEYS: order, data, expiry   ARGV: now_ms, limit  -> newest-first JSON records
_HISTORY_GET = r"""
local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
for _, m in ipairs(dead) do
  redis.call('ZREM', KEYS[1], m); redis.call('HDEL', KEYS[2], m); redis.call('ZREM', KEYS[3], m)
end
local ids = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(ids))
"""

# KEYS: index zset [, document]   ARGV: score, member, ttl_ms, gt ('1': only raise the score) [, value]
# Adds the member, SETs the optional document with the TTL, and extends (never shortens) the
# index's TTL: what ZADD + PEXPIRE GT/NX do on Redis 7, in a form Redis 6.2 runs too.
_INDEX_PUT = r"""
local ttl = tonumber(ARGV[3])
if #KEYS > 1 then redis.call('SET', KEYS[2], ARGV[5], 'PX', ttl) end
if ARGV[4] == '1' then
  redis.call('ZADD', KEYS[1], 'GT', ARGV[1], ARGV[2])
else
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
end
local cur = redis.call('PTTL', KEYS[1])
if cur == -1 or (cur >= 0 and cur < ttl) then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""

# KEYS: registry zset   ARGV: now_ms -> live members (pruning expired ones)
_LIVE_MEMBERS = r"""
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""


def flatten_text(value: Any) -> str:
    """Searchable text of a JSON value: object keys and leaf values."""
    out: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            for k, item in v.items():
                out.append(str(k).replace("_", " "))
                walk(item)
        elif isinstance(v, (list, tuple)):
            for item in v:
                walk(item)
        elif v is not None and not isinstance(v, bool):
            out.append(str(v).replace("_", " "))

    walk(value)
    return " ".join(out)


def _check_data(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TypeError(f"{what} must be a dict, got {type(data).__name__}")
    return data


class CrossSessionMemory:
    """Persistent memory across sessions for one app (see module docstring).

    User and agent ids may be ``int`` (they are converted with ``str()``).  With an
    ``embedder``, user context and knowledge documents also get vectors (hybrid search).
    """

    @strict
    def __init__(
        self,
        client: Any,
        keys: KeySchema,
        settings: RedisSettings,
        app_name: str = "default",
        *,
        index: SearchIndex | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        client = adopt_client(client, settings)  # an injected client: deadline and typed errors too
        self.client = client
        self.embedder = embedder  # optional: context/knowledge vectors for hybrid search
        self.keys = keys
        self.settings = settings
        self.app_name = app_name
        self.index = index if index is not None else SearchIndex(client)
        self._history_put = client.register_script(_HISTORY_PUT)
        self._history_get = read_script(client, _HISTORY_GET)
        self._live = read_script(client, _LIVE_MEMBERS)
        self._index_put = client.register_script(_INDEX_PUT)
        #: REDIS_WAIT_REPLICAS: every acknowledged write also confirmed on replicas (same round trip)
        self.durability = Durability(client, settings, keys)

    # -- helpers -------------------------------------------------------------
    @property
    def _memory_ttl(self) -> int:
        return ttl_ms(self.settings.memory_ttl_hours)

    async def _write(self, script: Any, keys: list[str], args: list[Any], where: str) -> Any:
        """Run a writing script; a Redis error reply becomes its typed error
        (:func:`~adk_redis.errors.server_error`: out of memory, no permission, corrupted data).  With
        ``REDIS_WAIT_REPLICAS``, with the replica wait in the same round trip
        (:class:`~adk_redis.errors.DurabilityError` when replicas do not confirm it)."""
        try:
            if not self.durability.enabled:
                return await script(keys=keys, args=args)
            durable = self.durability
            call = durable.script(script, keys, args)
            (reply,) = await durable.execute([call], route_key=keys[0], what=where)
            if isinstance(reply, Exception):
                raise reply
            return reply
        except ResponseError as exc:
            err = server_error(exc, where)
            if err is exc:
                raise
            raise err from exc

    async def _index(self, ik: Any, doc_id: str, indexed: str, payload: str, **kw: Any) -> None:
        """``index.put``; with ``REDIS_WAIT_REPLICAS``, with the replica wait in the same round trip."""
        if not self.durability.enabled:
            await self.index.put(ik, doc_id, indexed, payload, **kw)
            return
        recorder = Recorder(self.index._put)
        await self.index.put(ik, doc_id, indexed, payload, client=recorder, **kw)
        where = f"indexing memory {doc_id!r}"
        (reply,) = await self.durability.execute(recorder.calls, route_key=ik.stats, what=where)
        if isinstance(reply, Exception):
            raise server_error(reply, where) if isinstance(reply, ResponseError) else reply

    async def _register(self, kind: str, member: str, ttl: int) -> None:
        key = self.keys.memory_registry(self.app_name, kind)
        await self._write(
            self._index_put,
            [key],
            [now_ms() + ttl, member, ttl, "1"],
            f"registering {unescape(member)!r} in the {kind} registry of app {self.app_name!r}",
        )

    async def _live_members(self, zset: str) -> list[str]:
        return [text(m) for m in await self._live(keys=[zset], args=[now_ms()])]

    async def _vector(self, body: str) -> bytes:
        if self.embedder is None:
            return b""
        return pack((await self.embedder.embed([body]))[0])

    async def _get_json(self, key: str, where: str) -> dict[str, Any] | None:
        raw = await self.client.get(key)
        return None if raw is None else load_object(raw, where)

    async def _list(self, zset: str, key_of: Any, where: str) -> dict[str, dict[str, Any]]:
        members = await self._live_members(zset)
        if not members:
            return {}
        names = [unescape(m) for m in members]
        raws = await self.client.mget([key_of(n) for n in names])
        out: dict[str, dict[str, Any]] = {}
        for name, raw in zip(names, raws):
            if raw is None:
                continue
            try:
                out[name] = load_object(raw, f"{where} {name!r}")
            except CorruptedDataError as exc:
                logger.warning("skipping corrupted record: %s", exc)
        return out

    # -- user context ----------------------------------------------------------
    async def store_user_context(
        self, user_id: str | int, context_key: str, context_data: dict[str, Any]
    ) -> None:
        """Store (replace) one user-context document; TTL ``MEMORY_TTL_HOURS``; searchable."""
        uid = str(user_id)
        data = _check_data(context_data, "context_data")
        value = dump_value(data)
        now = now_ms()
        ttl = self._memory_ttl
        payload = context_payload(context_key, data, value, now / 1000)
        indexed = f"{context_key.replace('_', ' ')} {flatten_text(data)}"
        await self._index(
            self.keys.user_memory_index(self.app_name, uid),
            context_id(context_key),
            indexed,
            payload,
            ttl_ms=ttl,
            now=now,
            vector=await self._vector(indexed),
            side=(
                self.keys.user_context(self.app_name, uid, context_key),
                value,
                self.keys.user_context_index(self.app_name, uid),
                escape(context_key),
            ),
        )
        await self._register("users", escape(uid), ttl)

    async def get_user_context(self, user_id: str | int, context_key: str) -> dict[str, Any] | None:
        """One user-context document, or None (missing or expired)."""
        uid = str(user_id)
        return await self._get_json(
            self.keys.user_context(self.app_name, uid, context_key), f"user context {context_key!r}"
        )

    async def list_user_context(self, user_id: str | int) -> dict[str, dict[str, Any]]:
        """Every live context document of the user (corrupted ones skipped with a warning)."""
        uid = str(user_id)
        return await self._list(
            self.keys.user_context_index(self.app_name, uid),
            lambda k: self.keys.user_context(self.app_name, uid, k),
            "user context",
        )

    async def delete_user_context(self, user_id: str | int, context_key: str) -> bool:
        """Delete one context document (and its search entry); True if it existed."""
        uid = str(user_id)
        existed = await self.client.delete(self.keys.user_context(self.app_name, uid, context_key))
        await self.client.zrem(self.keys.user_context_index(self.app_name, uid), escape(context_key))
        ik = self.keys.user_memory_index(self.app_name, uid)
        indexed = await self.index.delete(ik, context_id(context_key))
        # REDIS_WAIT_REPLICAS: the three writes (one slot) confirmed on replicas, one round trip more
        await self.durability.confirm(ik.stats, what=f"delete of user context {context_key!r} of {uid!r}")
        return bool(existed) or indexed

    # -- agent memory ----------------------------------------------------------
    async def store_agent_memory(
        self, agent_id: str | int, memory_key: str, memory_data: dict[str, Any]
    ) -> None:
        """Store (replace) one agent-memory document; TTL ``MEMORY_TTL_HOURS``."""
        aid = str(agent_id)
        value = dump_value(_check_data(memory_data, "memory_data"))
        ttl = self._memory_ttl
        zset = self.keys.agent_memory_index(self.app_name, aid)
        doc = self.keys.agent_memory(self.app_name, aid, memory_key)
        await self._write(
            self._index_put,
            [zset, doc],
            [now_ms() + ttl, escape(memory_key), ttl, "0", value],
            f"storing agent memory {memory_key!r} of agent {aid!r} in app {self.app_name!r}",
        )
        await self._register("agents", escape(aid), ttl)

    async def get_agent_memory(self, agent_id: str | int, memory_key: str) -> dict[str, Any] | None:
        """One agent-memory document, or None."""
        aid = str(agent_id)
        return await self._get_json(
            self.keys.agent_memory(self.app_name, aid, memory_key), f"agent memory {memory_key!r}"
        )

    async def list_agent_memory(self, agent_id: str | int) -> dict[str, dict[str, Any]]:
        """Every live memory document of the agent."""
        aid = str(agent_id)
        return await self._list(
            self.keys.agent_memory_index(self.app_name, aid),
            lambda k: self.keys.agent_memory(self.app_name, aid, k),
            "agent memory",
        )

    # -- shared knowledge ------------------------------------------------------
    async def store_knowledge(self, category: str, knowledge_key: str, data: dict[str, Any]) -> None:
        """Store (replace) one app-wide knowledge document; TTL ``KNOWLEDGE_TTL_HOURS``; searchable."""
        value = dump_value(_check_data(data, "data"))
        now = now_ms()
        ttl = ttl_ms(self.settings.knowledge_ttl_hours)
        payload = knowledge_payload(category, knowledge_key, data, value, now / 1000)
        indexed = f"{category.replace('_', ' ')} {knowledge_key.replace('_', ' ')} {flatten_text(data)}"
        await self._index(
            self.keys.knowledge_index(self.app_name),
            knowledge_id(category, knowledge_key),
            indexed,
            payload,
            ttl_ms=ttl,
            now=now,
            vector=await self._vector(indexed),
            side=(
                self.keys.knowledge(self.app_name, category, knowledge_key),
                value,
                self.keys.memory_registry(self.app_name, "knowledge"),
                knowledge_member(category, knowledge_key),
            ),
        )

    async def get_knowledge(self, category: str, knowledge_key: str) -> dict[str, Any] | None:
        """One knowledge document, or None."""
        return await self._get_json(
            self.keys.knowledge(self.app_name, category, knowledge_key),
            f"knowledge {category!r}/{knowledge_key!r}",
        )

    async def search_knowledge(
        self, query: str, category: str | None = None, limit: int = 10
    ) -> list[dict[str, Any]]:
        """BM25 search over the app's knowledge (optionally one category).

        Returns dicts ``{"category", "key", "data", "score"}``, best first.
        """
        flt = knowledge_filter(category)
        hits = await self.index.search([(self.keys.knowledge_index(self.app_name), flt)], query, limit)
        out: list[dict[str, Any]] = []
        for hit in hits:
            try:
                out.append({**knowledge_result(hit.payload, f"knowledge {hit.doc_id!r}"), "score": hit.score})
            except (CorruptedDataError, KeyError) as exc:
                logger.warning("skipping corrupted knowledge record %r: %s", hit.doc_id, exc)
        return out

    # -- session history -------------------------------------------------------
    async def record_session(
        self,
        user_id: str | int,
        session_id: str,
        summary: dict[str, Any] | None = None,
        timestamp: float | None = None,
    ) -> None:
        """Record (or update) a session in the user's history; entry TTL ``HISTORY_TTL_HOURS``."""
        uid = str(user_id)
        ts = time.time() if timestamp is None else float(timestamp)
        record = dump_value(history_record(session_id, ts, summary or {}))
        hk = self.keys.history(self.app_name, uid)
        ttl = ttl_ms(self.settings.history_ttl_hours)
        now = now_ms()
        await self._write(
            self._history_put,
            [hk.order, hk.data, hk.expiry],
            [escape(session_id), repr(ts), record, now + ttl, ttl, now],
            f"recording session {session_id!r} in the history of user {uid!r} in app {self.app_name!r}",
        )
        await self._register("users", escape(uid), ttl)

    async def get_session_history(self, user_id: str | int, limit: int = 10) -> list[dict[str, Any]]:
        """The user's recorded sessions, newest first: ``{"session_id", "timestamp", "summary"}``."""
        if limit <= 0:
            return []
        hk = self.keys.history(self.app_name, str(user_id))
        raws = await self._history_get(keys=[hk.order, hk.data, hk.expiry], args=[now_ms(), limit])
        out: list[dict[str, Any]] = []
        for raw in raws:
            if raw is None:
                continue
            try:
                out.append(load_object(raw, "session history"))
            except CorruptedDataError as exc:
                logger.warning("skipping corrupted history record: %s", exc)
        return out

    # -- stats -----------------------------------------------------------------
    async def stats(self) -> dict[str, Any]:
        """Counts of live records of this app (O(users + agents); an admin call)."""
        users = await self._live_members(self.keys.memory_registry(self.app_name, "users"))
        agents = await self._live_members(self.keys.memory_registry(self.app_name, "agents"))
        knowledge = await self._live_members(self.keys.memory_registry(self.app_name, "knowledge"))
        now = now_ms()
        pipe = self.client.pipeline(transaction=False)
        for u in users:
            uid = unescape(u)
            pipe.zcount(self.keys.user_context_index(self.app_name, uid), now, "+inf")
            pipe.zcount(self.keys.history(self.app_name, uid).expiry, now, "+inf")
            pipe.zcount(self.keys.user_memory_index(self.app_name, uid).expiry, now, "+inf")
        for a in agents:
            pipe.zcount(self.keys.agent_memory_index(self.app_name, unescape(a)), now, "+inf")
        counts = [int(c) for c in await pipe.execute()] if users or agents else []
        n = 3 * len(users)
        return {
            "app_name": self.app_name,
            "users": len(users),
            "user_contexts": sum(counts[0:n:3]),
            "history_entries": sum(counts[1:n:3]),
            "indexed_memories": sum(counts[2:n:3]),
            "agents": len(agents),
            "agent_memories": sum(counts[n:]),
            "knowledge_entries": len(knowledge),
        }
