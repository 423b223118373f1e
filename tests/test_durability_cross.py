"""REDIS_WAIT_REPLICAS covers every acknowledged write: cross-session memory (user context, agent
memory, knowledge, session history), ``forget_user`` and the memories deleted with a session.

A primary and a replica on loopback (throw-away servers); a replica that "falls behind" is stopped
with SIGSTOP (connected, acknowledging nothing): an acknowledged write must then raise
:class:`~adk_redis.errors.DurabilityError`, and a write that returns must already be on the replica.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from google.adk.sessions.session import Session

from adk_redis import RedisMemoryService, RedisSessionService, load_settings
from adk_redis.errors import DurabilityError

from .helpers import text_event as said
from .servers import RedisServer, frozen, primary_and_replica
from .servers import server_info as _info

APP = "app"


def _waits(server: RedisServer) -> int:
    stats = _info(server, "commandstats").get("cmdstat_wait")
    return int(stats["calls"]) if stats else 0


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[RedisServer, RedisServer]]:
    with primary_and_replica() as servers:
        yield servers


def services(primary: RedisServer, wait: int = 1) -> tuple[RedisSessionService, RedisMemoryService]:
    settings = load_settings(
        redis_url=primary.url,
        redis_key_prefix=f"dx{uuid.uuid4().hex[:6]}",
        redis_wait_replicas=wait,
        redis_wait_timeout_ms=300,
    )
    return RedisSessionService(settings=settings), RedisMemoryService(settings=settings)


async def test_cross_session_writes_are_on_the_replica_when_acknowledged(
    pair: tuple[RedisServer, RedisServer],
) -> None:
    primary, replica = pair
    _, mem = services(primary)
    cross = mem.cross_session(APP)
    keys = mem.keys
    writes: list[tuple[str, Callable[[int], Awaitable[Any]], Callable[[Any, int], bool]]] = [
        (
            "store_user_context",
            lambda n: cross.store_user_context("u", f"prefs{n}", {"tone": "brief"}),
            lambda r, n: r.exists(keys.user_context(APP, "u", f"prefs{n}")) == 1,
        ),
        (
            "store_agent_memory",
            lambda n: cross.store_agent_memory("a", f"m{n}", {"fact": "otters"}),
            lambda r, n: r.exists(keys.agent_memory(APP, "a", f"m{n}")) == 1,
        ),
        (
            "store_knowledge",
            lambda n: cross.store_knowledge("faq", f"k{n}", {"answer": "42"}),
            lambda r, n: r.exists(keys.knowledge(APP, "faq", f"k{n}")) == 1,
        ),
        (
            "record_session",
            lambda n: cross.record_session("u", f"s{n}", {"topic": "otters"}),
            lambda r, n: r.hexists(keys.history(APP, "u").data, f"s{n}") == 1,
        ),
        (
            "delete_user_context",
            lambda n: cross.delete_user_context("u", f"prefs{n}"),
            lambda r, n: r.exists(keys.user_context(APP, "u", f"prefs{n}")) == 0,
        ),
    ]
    with replica.client() as r:
        for name, write, on_replica in writes:
            waits = _waits(primary)
            await write(1)
            assert on_replica(r, 1), f"{name}: acknowledged but not on the replica"
            assert _waits(primary) > waits, f"{name}: no replica wait"
            # a replica that does not acknowledge: the write is not reported as durable
            with frozen(replica), pytest.raises(DurabilityError) as info:
                await write(2)
            assert info.value.requested == 1 and info.value.acknowledged == 0, name
            await write(2)  # retrying the same call is safe and confirms it
            assert on_replica(r, 2), f"{name}: the retry is not on the replica"
    assert mem.cross_session(APP).durability.stats["unconfirmed"] == len(writes)
    await mem.close()


async def test_forget_user_is_confirmed_on_the_replica(pair: tuple[RedisServer, RedisServer]) -> None:
    primary, replica = pair
    sessions, mem = services(primary)
    s = await sessions.create_session(app_name=APP, user_id="u", state={"user:k": 1})
    await mem.cross_session(APP).store_user_context("u", "prefs", {"tone": "brief"})
    with frozen(replica), pytest.raises(DurabilityError):
        await mem.forget_user(app_name=APP, user_id="u")
    waits = _waits(primary)
    result = await mem.forget_user(app_name=APP, user_id="u")  # the retry: confirmed
    assert _waits(primary) > waits
    assert result.sessions == 0  # the first call erased it on the primary already
    with replica.client() as r:
        assert r.exists(sessions.keys.session(APP, "u", s.id).meta) == 0
        assert r.exists(mem.keys.user_context(APP, "u", "prefs")) == 0
    await sessions.close()
    await mem.close()


async def test_memories_deleted_with_a_session_are_confirmed(pair: tuple[RedisServer, RedisServer]) -> None:
    primary, replica = pair
    sessions, mem = services(primary)
    s = await sessions.create_session(app_name=APP, user_id="u")
    for text in ("otters hold hands", "otters sleep on water"):
        await sessions.append_event(s, said(text))
    stored = await sessions.get_session(app_name=APP, user_id="u", session_id=s.id)
    assert isinstance(stored, Session)
    await mem.add_session_to_memory(stored)
    docs = mem.keys.user_memory_index(APP, "u").docs
    warm = await sessions.create_session(app_name=APP, user_id="u")  # the delete scripts loaded
    await sessions.delete_session(app_name=APP, user_id="u", session_id=warm.id)
    with replica.client() as r:
        assert r.hlen(docs) >= 2
        waits = _waits(primary)
        await sessions.delete_session(app_name=APP, user_id="u", session_id=s.id)
        # one replica wait for the session, one for its memories (in their own round trip each)
        assert _waits(primary) - waits == 2
        assert r.hlen(docs) == 0
    await sessions.close()
    await mem.close()


async def test_no_replica_wait_by_default(pair: tuple[RedisServer, RedisServer]) -> None:
    primary, _ = pair
    sessions, mem = services(primary, wait=0)
    waits = _waits(primary)
    cross = mem.cross_session(APP)
    await cross.store_user_context("u", "prefs", {"tone": "brief"})
    await cross.record_session("u", "s1")
    await cross.delete_user_context("u", "prefs")
    await mem.forget_user(app_name=APP, user_id="u")
    assert _waits(primary) == waits
    await sessions.close()
    await mem.close()


async def test_cross_session_writes_and_forget_user_on_a_cluster() -> None:
    """Redis Cluster (3 primaries, a replica each): the replica wait goes to the primary of each slot
    the operation wrote (``Durability.confirm``); a frozen replica of the user's primary is noticed."""
    from redis.crc import key_slot

    from .servers import redis_cluster

    with redis_cluster(3, replicas=1, node_timeout_ms=2000) as nodes:
        url = f"redis+cluster://127.0.0.1:{nodes[0].port}"
        settings = load_settings(
            redis_url=url,
            redis_key_prefix=f"dc{uuid.uuid4().hex[:6]}",
            redis_wait_replicas=1,
            redis_wait_timeout_ms=300,
        )
        mem = RedisMemoryService(settings=settings)
        cross = mem.cross_session(APP)
        await cross.store_user_context("u", "prefs", {"tone": "brief"})
        await cross.record_session("u", "s1", {"topic": "otters"})
        await cross.store_knowledge("faq", "k", {"answer": "42"})
        before = cross.durability.stats["confirmed"]
        await cross.delete_user_context("u", "prefs")  # three commands, then the wait (confirm)
        assert cross.durability.stats["confirmed"] == before + 1
        # the replica of the primary serving the user's slot stops acknowledging
        slot = key_slot(mem.keys.user_memory_index(APP, "u").stats.encode())
        owner = min(slot // (16384 // 3), 2)
        await cross.store_user_context("u", "prefs", {"tone": "long"})
        with frozen(nodes[3 + owner]):
            with pytest.raises(DurabilityError):
                await cross.delete_user_context("u", "prefs")
            with pytest.raises(DurabilityError):
                await mem.forget_user(app_name=APP, user_id="u")
        await mem.forget_user(app_name=APP, user_id="u")  # the retry: confirmed
        assert await cross.get_user_context("u", "prefs") is None
        await mem.close()
