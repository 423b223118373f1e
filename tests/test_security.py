"""Session id policy, enumeration detection (fakeredis and a real server started here) and access logs."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import fakeredis
import pytest
import redis.asyncio as aioredis

from adk_redis import RedisSessionService
from adk_redis.keys import KeySchema
from adk_redis.security import (
    STRICT_POLICY,
    AccessRefusedError,
    EnumerationGuard,
    GuardedSessionService,
    IdPolicy,
    InvalidSessionIdError,
    client_address,
    redact,
)

from .servers import RedisServer, redis_server


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as s:
        yield s


@pytest.fixture(params=["fakeredis", "redis"])
async def client(request: pytest.FixtureRequest, server: RedisServer) -> AsyncIterator[Any]:
    if request.param == "fakeredis":
        yield fakeredis.FakeAsyncRedis()
        return
    c = aioredis.Redis.from_url(server.url)
    yield c
    await c.aclose()


@pytest.fixture
def keys() -> KeySchema:
    return KeySchema(f"sec{uuid.uuid4().hex[:8]}")


@pytest.mark.parametrize(
    "sid", [str(uuid.uuid4()), "user-42_chat.1", "a", "x" * 256, "Ünïcode-id", "with space", "a:b"]
)
def test_default_policy_accepts(sid: str) -> None:
    assert IdPolicy().allows(sid)


@pytest.mark.parametrize(
    "sid", ["", "x" * 257, "a\x00b", "line\nbreak", "tab\t", "\x1b[31mred", "zw\u200bsp"]
)
def test_default_policy_rejects(sid: str) -> None:
    assert not IdPolicy().allows(sid)
    with pytest.raises(InvalidSessionIdError) as info:
        IdPolicy().check(sid)
    assert sid not in str(info.value) or sid == ""  # the id itself is never echoed


def test_strict_and_custom_policies() -> None:
    assert STRICT_POLICY.allows(str(uuid.uuid4())) and STRICT_POLICY.allows("slug_1.2-x")
    assert not STRICT_POLICY.allows("with space") and not STRICT_POLICY.allows("-leading")
    digits = IdPolicy(max_length=8, pattern=r"\d+")
    assert digits.allows("12345678") and not digits.allows("123456789") and not digits.allows("12a")


async def test_redis_session_service_id_policy_hook(client: Any, keys: KeySchema) -> None:
    svc = RedisSessionService(client=client, key_prefix=keys.prefix)  # default: permissive but safe
    s = await svc.create_session(app_name="app", user_id="u", session_id="x" * 1024)
    assert await svc.get_session(app_name="app", user_id="u", session_id=s.id) is not None
    with pytest.raises(InvalidSessionIdError):
        await svc.create_session(app_name="app", user_id="u", session_id="bad\x00id")
    assert await svc.get_session(app_name="app", user_id="u", session_id="bad\x00id") is None
    strict = RedisSessionService(client=client, key_prefix=keys.prefix, id_policy=STRICT_POLICY)
    with pytest.raises(InvalidSessionIdError):
        await strict.create_session(app_name="app", user_id="u", session_id="has space")
    assert await strict.get_session(app_name="app", user_id="u", session_id=s.id) is None  # too long for it
    await strict.delete_session(app_name="app", user_id="u", session_id=s.id)  # refused: a no-op
    assert await svc.get_session(app_name="app", user_id="u", session_id=s.id) is not None
    ok = await strict.create_session(app_name="app", user_id="u")  # generated uuid ids pass
    assert await strict.get_session(app_name="app", user_id="u", session_id=ok.id) is not None
    await _cleanup(client, keys)


async def _cleanup(client: Any, keys: KeySchema) -> None:
    found = [k async for k in client.scan_iter(match=keys.pattern())]
    if found:
        await client.delete(*found)


async def test_enumeration_is_flagged_and_refused(client: Any, keys: KeySchema) -> None:
    inner = RedisSessionService(client=client, key_prefix=keys.prefix)
    guard = EnumerationGuard(client, keys, threshold=5, window_seconds=60, refuse=True)
    svc = GuardedSessionService(inner, guard)
    real = await svc.create_session(app_name="app", user_id="mallory")
    with client_address("10.0.0.7"):
        for i in range(5):
            assert await svc.get_session(app_name="app", user_id="mallory", session_id=f"guess{i}") is None
        assert await svc.get_session(app_name="app", user_id="mallory", session_id=real.id) is not None
        stats = await svc.get_security_stats()
        assert stats["total_failed_attempts"] == 5 and stats["flagged_sources"] == []
        assert await svc.get_session(app_name="app", user_id="mallory", session_id="guess5") is None
        stats = await svc.get_security_stats()
        assert stats["total_failed_attempts"] == 6
        assert len(stats["flagged_sources"]) == 2  # the user and the address
        assert all(s.startswith(("user:h:", "addr:h:")) for s in stats["flagged_sources"])
        with pytest.raises(AccessRefusedError):
            await svc.get_session(app_name="app", user_id="mallory", session_id=real.id)
    # Same address, other user: refused (the address is flagged); other address, other user: fine.
    with client_address("10.0.0.7"), pytest.raises(AccessRefusedError):
        await svc.get_session(app_name="app", user_id="bob", session_id="x")
    with client_address("10.0.0.8"):
        assert await svc.get_session(app_name="app", user_id="bob", session_id="x") is None
    await guard.reset("app", "mallory", "10.0.0.7")
    with client_address("10.0.0.7"):
        assert await svc.get_session(app_name="app", user_id="mallory", session_id=real.id) is not None
    await _cleanup(client, keys)


async def test_sliding_window_forgets_old_failures(client: Any, keys: KeySchema) -> None:
    guard = EnumerationGuard(client, keys, threshold=3, window_seconds=0.3)
    for _ in range(3):
        assert await guard.record_failure("app", "u") == []
    await asyncio.sleep(0.4)
    for _ in range(3):
        assert await guard.record_failure("app", "u") == []  # the first three left the window
    assert await guard.record_failure("app", "u") == [f"user:{redact('app' + chr(0) + 'u')}"]
    assert await guard.is_flagged("app", "u")
    assert (await guard.get_security_stats())["total_failed_attempts"] == 7
    await _cleanup(client, keys)


async def test_access_log_redacts_ids(client: Any, keys: KeySchema, caplog: pytest.LogCaptureFixture) -> None:
    svc = GuardedSessionService(
        RedisSessionService(client=client, key_prefix=keys.prefix), EnumerationGuard(client, keys)
    )
    caplog.set_level(logging.INFO, logger="adk_redis.access")
    with client_address("192.0.2.1"):
        s = await svc.create_session(app_name="app", user_id="alice@example.com", session_id="secret-session")
        await svc.get_session(app_name="app", user_id="alice@example.com", session_id=s.id)
        await svc.get_session(app_name="app", user_id="alice@example.com", session_id="nope")
    records = [r for r in caplog.records if r.name == "adk_redis.access"]
    assert [r.adk_redis["outcome"] for r in records] == ["ok", "hit", "miss"]  # type: ignore[attr-defined]
    joined = "\n".join(r.getMessage() for r in records)
    for secret in ("alice@example.com", "secret-session", "192.0.2.1", "nope"):
        assert secret not in joined
    assert redact("secret-session") in joined and redact("alice@example.com") in joined
    with pytest.raises(InvalidSessionIdError):
        await svc.create_session(app_name="app", user_id="u", session_id="evil\r\ninjected log line")
    await _cleanup(client, keys)
