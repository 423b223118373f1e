"""REDIS_WAIT_REPLICAS: settings, the replica wait of session and memory writes, DurabilityError, WAITAOF.

A primary and a replica on loopback (throw-away servers); a replica "falls behind" by being stopped
with SIGSTOP (its connection stays up, it just does not acknowledge).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from google.adk.memory.memory_entry import MemoryEntry
from google.genai import types

from adk_redis import ConfigurationError, RedisMemoryService, RedisSessionService, load_settings
from adk_redis.errors import DurabilityError, RedisUnavailableError

from .helpers import delta_event as ev
from .servers import RedisServer, frozen, primary_and_replica, redis8_binary
from .servers import server_info as _info


def _calls(server: RedisServer, command: str) -> int:
    stats = _info(server, "commandstats").get(f"cmdstat_{command}")
    return int(stats["calls"]) if stats else 0


def _sent(server: RedisServer, command: str) -> int:
    """Calls of ``command`` the server received, failed and rejected ones included."""
    stats = _info(server, "commandstats").get(f"cmdstat_{command}") or {}
    return sum(int(stats.get(k, 0)) for k in ("calls", "failed_calls", "rejected_calls"))


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[RedisServer, RedisServer]]:
    with primary_and_replica() as servers:
        yield servers


def _svc(primary: RedisServer, prefix: str, wait: int = 1, **kw: Any) -> RedisSessionService:
    settings = load_settings(redis_wait_replicas=wait, redis_wait_timeout_ms=300, **kw)
    return RedisSessionService(primary.url, settings=settings, key_prefix=prefix)


# -- settings ---------------------------------------------------------------------------------
def test_settings_from_environment_and_url(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().redis_wait_replicas == 0  # off by default
    monkeypatch.setenv("REDIS_WAIT_REPLICAS", "2")
    monkeypatch.setenv("REDIS_WAIT_TIMEOUT_MS", "250")
    assert load_settings().redis_wait_aof is False  # WAITAOF: opt-in
    monkeypatch.setenv("REDIS_WAIT_AOF", "true")
    s = load_settings()
    assert (s.redis_wait_replicas, s.redis_wait_timeout_ms, s.redis_wait_aof) == (2, 250, True)
    monkeypatch.delenv("REDIS_WAIT_REPLICAS")
    svc = RedisSessionService("redis://127.0.0.1:1/0?wait_replicas=1&wait_timeout_ms=400&wait_aof=true")
    assert svc.settings.redis_wait_replicas == 1 and svc.settings.redis_wait_timeout_ms == 400
    assert svc.settings.redis_wait_aof is True and svc.durability.enabled
    mem = RedisMemoryService("redis://127.0.0.1:1/0?wait_replicas=3")
    assert mem.durability.replicas == 3


@pytest.mark.parametrize(
    "url, match",
    [
        ("redis://127.0.0.1:1/0?wait_replicas=-1", "wait_replicas"),
        ("redis://127.0.0.1:1/0?wait_timeout_ms=0", "wait_timeout_ms"),
        ("redis://127.0.0.1:1/0?wait_aof=maybe", "wait_aof"),
    ],
)
def test_bad_url_parameters(url: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        RedisSessionService(url)


def test_wait_timeout_must_fit_the_socket_and_operation_timeouts() -> None:
    with pytest.raises(ConfigurationError, match="REDIS_SOCKET_TIMEOUT"):
        load_settings(redis_wait_replicas=1, redis_wait_timeout_ms=3000, redis_socket_timeout=2.0)
    with pytest.raises(ConfigurationError, match="REDIS_OPERATION_TIMEOUT"):
        load_settings(redis_wait_replicas=1, redis_wait_timeout_ms=1500, redis_operation_timeout=1.0)
    # no wait: no constraint
    assert load_settings(redis_wait_timeout_ms=3000, redis_socket_timeout=2.0).redis_wait_timeout_ms == 3000
    # REDIS_SOCKET_TIMEOUT not set: 40 % of the deadline (2 s of 5 s) bounds the wait too
    with pytest.raises(ConfigurationError, match="REDIS_SOCKET_TIMEOUT"):
        load_settings(redis_wait_replicas=1, redis_wait_timeout_ms=2500)


# -- the replica wait ----------------------------------------------------------------------------
async def test_acknowledged_writes_are_on_the_replica(pair: tuple[RedisServer, RedisServer]) -> None:
    primary, replica = pair
    prefix = f"dw{uuid.uuid4().hex[:6]}"
    svc = _svc(primary, prefix)
    waits = _calls(primary, "wait")
    s = await svc.create_session(app_name="app", user_id="u", state={"user:k": 1})
    with replica.client() as r:
        assert r.exists(svc.keys.session("app", "u", s.id).meta) == 1
        for i in range(20):
            await svc.append_event(s, ev(n=i))
            # acknowledged means the replica has it, at that very moment
            assert r.llen(svc.keys.session("app", "u", s.id).log) == i + 1
        # one WAIT per write, none skipped (plus one per script's first call: NOSCRIPT, sent again)
        assert 21 <= _calls(primary, "wait") - waits <= 21 + 2
        barrier = svc.keys.wait_barrier(svc.keys.session("app", "u", s.id).meta)
        assert svc.keys.parse_key(barrier).kind == "wait_barrier"  # type: ignore[union-attr]
        assert 0 < r.pttl(barrier) <= 60_000
        await svc.delete_session(app_name="app", user_id="u", session_id=s.id)
        assert r.exists(svc.keys.session("app", "u", s.id).meta) == 0
    # create + 20 appends + the delete + the delete of the session's memories (DELETE_MEMORIES_WITH_SESSION)
    assert svc.durability.stats["confirmed"] == 23 and svc.durability.stats["unconfirmed"] == 0
    await svc.close()


async def test_no_wait_by_default(pair: tuple[RedisServer, RedisServer]) -> None:
    primary, _ = pair
    svc = _svc(primary, f"dn{uuid.uuid4().hex[:6]}", wait=0)
    waits = _calls(primary, "wait")
    s = await svc.create_session(app_name="app", user_id="u")
    await svc.append_event(s, ev(a=1))
    assert _calls(primary, "wait") == waits and not svc.durability.enabled
    await svc.close()


async def test_unconfirmed_write_raises_and_a_retry_confirms_it(
    pair: tuple[RedisServer, RedisServer],
) -> None:
    primary, replica = pair
    prefix = f"du{uuid.uuid4().hex[:6]}"
    svc = _svc(primary, prefix)
    other = _svc(primary, prefix)  # another process: its own connections
    s = await svc.create_session(app_name="app", user_id="u")
    await svc.append_event(s, ev(n=0))
    e = ev(n=1)
    log = svc.keys.session("app", "u", s.id).log
    with frozen(replica):
        with pytest.raises(DurabilityError) as info:
            await svc.append_event(s, e)
        err = info.value
        assert isinstance(err, RedisUnavailableError) and isinstance(err, ConnectionError)
        assert isinstance(err, redis.exceptions.ConnectionError)
        assert (err.requested, err.acknowledged) == (1, 0) and "Retrying the same call is safe" in str(err)
        assert [x.id for x in s.events][-1] != e.id  # the session object is not updated
        with primary.client() as p:
            assert p.llen(log) == 2  # ... but the primary has it
        # A retry that changes nothing (the event is stored) on a fresh connection still waits for the
        # replica: the barrier moves the connection's replication offset past the data.
        copy = await other.get_session(app_name="app", user_id="u", session_id=s.id)
        assert copy is not None and copy.events[-1].id == e.id
        with pytest.raises(DurabilityError):
            await other.append_event(copy, e)
    await svc.append_event(s, e)  # the replica is back: the retry confirms it
    assert [x.id for x in s.events][-1] == e.id and len(s.events) == 2
    with replica.client() as r:
        assert r.llen(log) == 2
    got = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    assert got is not None and [x.id for x in got.events] == [x.id for x in s.events]
    await svc.close()
    await other.close()


async def test_create_retried_after_durability_error(pair: tuple[RedisServer, RedisServer]) -> None:
    primary, replica = pair
    svc = _svc(primary, f"dc{uuid.uuid4().hex[:6]}")
    with frozen(replica), pytest.raises(DurabilityError):
        await svc.create_session(app_name="app", user_id="u", session_id="s1", state={"a": 1})
    with primary.client() as p:
        assert p.exists(svc.keys.session("app", "u", "s1").meta) == 1
    got = await svc.get_session(app_name="app", user_id="u", session_id="s1")
    assert got is not None and got.state == {"a": 1}
    await svc.close()


async def test_memory_writes_wait_for_the_replica(pair: tuple[RedisServer, RedisServer]) -> None:
    primary, replica = pair
    settings = load_settings(redis_wait_replicas=1, redis_wait_timeout_ms=300)
    mem = RedisMemoryService(primary.url, settings=settings, key_prefix=f"dm{uuid.uuid4().hex[:6]}")
    entries = [
        MemoryEntry(
            id=f"m{i}", content=types.Content(parts=[types.Part(text=f"fact number {i} about otters")])
        )
        for i in range(3)
    ]
    waits = _calls(primary, "wait")
    await mem.add_memory(app_name="app", user_id="u", memories=entries)
    assert 1 <= _calls(primary, "wait") - waits <= 2  # three puts, one WAIT (+1 on NOSCRIPT)
    docs = mem.keys.user_memory_index("app", "u").docs
    with replica.client() as r:
        assert r.hlen(docs) == 3
    found = await mem.search_memory(app_name="app", user_id="u", query="otters")
    assert len(found.memories) == 3
    with frozen(replica), pytest.raises(DurabilityError):
        await mem.delete_memory(app_name="app", user_id="u", memory_id=found.memories[0].id)
    await mem.delete_memory(app_name="app", user_id="u", memory_id=found.memories[0].id)
    with replica.client() as r:
        assert r.hlen(docs) == 2
    await mem.close()


# -- WAITAOF (REDIS_WAIT_AOF=true) --------------------------------------------------------------
@pytest.mark.parametrize(
    "binary, args, wait_aof, used",
    [
        ("redis8", ("--appendonly", "yes", "--appendfsync", "always"), True, True),
        ("redis8", ("--appendonly", "yes", "--appendfsync", "always"), False, False),  # opt-in only
        ("redis8", ("--appendonly", "no"), True, False),  # the server refuses WAITAOF 1: not used again
        ("default", ("--appendonly", "yes"), True, False),  # Redis 7.0: no WAITAOF
    ],
)
async def test_waitaof_used_once_detected(
    binary: str, args: tuple[str, ...], wait_aof: bool, used: bool
) -> None:
    with primary_and_replica(redis8_binary() if binary == "redis8" else None, args) as (primary, _):
        svc = _svc(primary, f"da{uuid.uuid4().hex[:6]}", redis_wait_aof=wait_aof)
        s = await svc.create_session(app_name="app", user_id="u")  # decides
        assert (svc.durability._aof.get("", True) and wait_aof) is used
        before = _sent(primary, "waitaof")
        for i in range(3):
            await svc.append_event(s, ev(n=i))
        # used: one WAITAOF per write (plus NOSCRIPT resends); not used: never sent again
        assert _sent(primary, "waitaof") - before >= 3 if used else _sent(primary, "waitaof") == before
        if not wait_aof:
            assert before == 0
        assert svc.durability.stats["confirmed"] == 4
        await svc.close()
