"""The session service's failure contract on real throw-away servers: a create retried after a lost
reply, a full server, a forbidden command, planted records of the wrong type or shape."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions

from adk_redis import RedisSessionService, load_settings
from adk_redis.errors import CorruptedDataError, RedisOutOfMemoryError, RedisPermissionError

from .servers import RedisServer, stall


def ev(**delta: Any) -> Event:
    return Event(author="agent", invocation_id="inv", actions=EventActions(state_delta=delta))


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    srv = RedisServer(args=["--enable-debug-command", "yes"])
    srv.start()
    yield srv
    srv.stop()


def _script_calls(server: RedisServer) -> int:
    stats = server.client().info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))


@pytest.mark.parametrize("given_id", [True, False])
async def test_create_retried_after_a_lost_reply_returns_its_session(
    server: RedisServer, prefix: str, given_id: bool
) -> None:
    """DEBUG SLEEP longer than the socket timeout: redis-py re-sends the create; the retry must find the
    session its first attempt created (creation token), not raise AlreadyExistsError."""
    settings = load_settings(
        redis_url=server.url,
        redis_socket_timeout=0.3,
        redis_connect_timeout=0.3,
        redis_retry_attempts=5,
        redis_operation_timeout=10,
    )
    svc = RedisSessionService(settings=settings, key_prefix=prefix)
    await svc.ping()
    before = _script_calls(server)
    t = stall(server, 1.0)
    try:
        s = await svc.create_session(
            app_name="app", user_id="u", session_id="mine" if given_id else None, state={"k": 1}
        )
    finally:
        t.join()
    assert s.state == {"k": 1}
    assert _script_calls(server) - before >= 2  # the retry path really ran: the first reply was lost
    listed = (await svc.list_sessions(app_name="app", user_id="u")).sessions
    assert [x.id for x in listed] == [s.id]  # exactly one session stored, the one returned
    # a real duplicate still raises
    with pytest.raises(AlreadyExistsError):
        await svc.create_session(app_name="app", user_id="u", session_id=s.id)
    await svc.close()


async def test_out_of_memory_is_reported_as_such(server: RedisServer, prefix: str) -> None:
    svc = RedisSessionService(server.url, key_prefix=prefix)
    s = await svc.create_session(app_name="app", user_id="u")
    admin = server.client()
    used = int(admin.info("memory")["used_memory"])
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", str(used - 1024 * 100 if used > 2_000_000 else 1))
    try:
        with pytest.raises(RedisOutOfMemoryError, match="out of memory"):
            await svc.create_session(app_name="app", user_id="u", session_id="x")
        with pytest.raises(RedisOutOfMemoryError, match="out of memory"):
            await svc.append_event(s, ev(a=1))
    finally:
        admin.config_set("maxmemory", "0")
    # nothing was written by the refused calls
    assert await svc.get_session(app_name="app", user_id="u", session_id="x") is None
    got = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    assert got is not None and got.events == [] and got.state == {}
    await svc.append_event(s, ev(a=1))  # and the service works again afterwards
    await svc.close()


async def test_forbidden_command_is_a_permission_error(server: RedisServer, prefix: str) -> None:
    admin = server.client()
    admin.execute_command("ACL", "SETUSER", "noscript", "on", ">pw", "~*", "+@all", "-evalsha", "-eval")
    try:
        svc = RedisSessionService(server.url.replace("redis://", "redis://noscript:pw@"), key_prefix=prefix)
        with pytest.raises(RedisPermissionError, match="(?i)evalsha|eval"):
            await svc.create_session(app_name="app", user_id="u")
        await svc.close()
    finally:
        admin.execute_command("ACL", "DELUSER", "noscript")


async def test_planted_records_fail_only_themselves(server: RedisServer, prefix: str) -> None:
    svc = RedisSessionService(server.url, key_prefix=prefix)
    good = await svc.create_session(app_name="app", user_id="u", state={"k": 1, "app:ok": 1, "user:ok": 1})
    other = await svc.create_session(app_name="app", user_id="v")
    wrong = await svc.create_session(app_name="app", user_id="u")
    c = svc.client
    # a session hash replaced by a string, an index member that does not decode
    await c.delete(svc.keys.session("app", "u", wrong.id).meta)
    await c.set(svc.keys.session("app", "u", wrong.id).meta, "junk")
    await c.zadd(svc.keys.app_index("app"), {"no-separator-%ZZ": time.time()})
    await c.zadd(svc.keys.user_index("app", "u"), {"%ZZ": time.time()})
    # undecodable app: and user: values: bad JSON, and an encrypted value of an unknown key id
    await c.hset(svc.keys.app_state("app"), "bad", "{not json")
    await c.hset(svc.keys.user_state("app", "u"), "sealed", "2:e:k9:AAAA")
    with pytest.raises(CorruptedDataError, match=wrong.id):
        await svc.get_session(app_name="app", user_id="u", session_id=wrong.id)
    mine = (await svc.list_sessions(app_name="app", user_id="u")).sessions
    assert [s.id for s in mine] == [good.id]
    everyone = {s.id for s in (await svc.list_sessions(app_name="app")).sessions}
    assert everyone == {good.id, other.id}
    got = await svc.get_session(app_name="app", user_id="u", session_id=good.id)
    assert got is not None
    assert got.state == {"k": 1, "app:ok": 1, "user:ok": 1}  # bad values left out, good ones kept
    # create neither fails nor stores a session it reports as failed
    new = await svc.create_session(app_name="app", user_id="u", session_id="after")
    assert "app:bad" not in new.state and new.state["app:ok"] == 1
    assert await svc.get_user_state(app_name="app", user_id="u") == {"ok": 1}
    await svc.append_event(got, ev(k=2))
    skipped = "\n".join(svc.skipped_records)  # what doctor reports
    for name in ("'app:bad'", "'user:sealed'", "%ZZ", wrong.id):
        assert name in skipped
    await svc.close()


async def test_stalled_create_then_server_back(server: RedisServer, prefix: str) -> None:
    """The creation token is per call: two different creates of one id still collide after a stall."""
    svc = RedisSessionService(server.url, key_prefix=prefix)
    a = asyncio.create_task(svc.create_session(app_name="app", user_id="u", session_id="same"))
    b = asyncio.create_task(svc.create_session(app_name="app", user_id="u", session_id="same"))
    results = await asyncio.gather(a, b, return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["AlreadyExistsError", "Session"]
    await svc.close()
