"""redis+sentinel:// URLs: master + replica + one sentinel on loopback; the service survives a failover."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions

from adk_redis import RedisSessionService, load_settings

from .servers import RedisServer, SentinelProcess

NAME = "adkmaster"


def ev(**delta: Any) -> Event:
    return Event(author="agent", invocation_id="inv", actions=EventActions(state_delta=delta))


def _info(server: RedisServer, section: str) -> dict[str, Any]:
    with server.client() as c:
        return dict(c.info(section))


def _s(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def _wait(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def topology() -> Iterator[tuple[RedisServer, RedisServer, SentinelProcess]]:
    master = RedisServer(args=["--appendonly", "no", "--repl-diskless-sync-delay", "0"]).start()
    replica = RedisServer(args=["--appendonly", "no", "--replicaof", "127.0.0.1", str(master.port)])
    sentinel: SentinelProcess | None = None
    try:
        replica.start()
        _wait(lambda: _info(replica, "replication").get("master_link_status") == "up", 10, "replication link")
        sentinel = SentinelProcess(master.port, NAME).start()

        def sees_replica() -> bool:
            assert sentinel is not None
            with sentinel.client() as c:
                raw = c.execute_command("SENTINEL", "REPLICAS", NAME)
            for item in raw:
                pairs = item.items() if isinstance(item, dict) else zip(item[::2], item[1::2])
                r = {_s(k): _s(v) for k, v in pairs}
                if (
                    r.get("port") == str(replica.port)
                    and r.get("flags") == "slave"
                    and r.get("master-link-status") == "ok"
                ):
                    return True
            return False

        _wait(sees_replica, 15, "sentinel to discover the replica")
        yield master, replica, sentinel
    finally:
        if sentinel is not None:
            sentinel.stop()
        for server in (replica, master):
            server.kill()  # no persistence to flush
            server.stop()


async def test_sentinel_failover(topology: tuple[RedisServer, RedisServer, SentinelProcess]) -> None:
    master, replica, sentinel = topology
    settings = load_settings(redis_retry_attempts=8, redis_socket_timeout=1.0, redis_connect_timeout=0.5)
    svc = RedisSessionService(
        f"redis+sentinel://127.0.0.1:{sentinel.port}/{NAME}",
        settings=settings,
        key_prefix=f"sn{uuid.uuid4().hex[:8]}",
    )
    s = await svc.create_session(app_name="app", user_id="u", state={"user:k": 1})
    ids = [(await svc.append_event(s, ev(n=i))).id for i in range(10)]
    with master.client() as c:
        assert c.execute_command("WAIT", 1, 2000) == 1  # replicated before the switch

    t0 = time.monotonic()
    with sentinel.client() as c:
        c.execute_command("SENTINEL", "FAILOVER", NAME)

    def promoted() -> bool:
        with sentinel.client() as c:
            addr = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", NAME)
        return int(addr[1]) == replica.port

    await asyncio.to_thread(_wait, promoted, 20, "promotion")
    promotion = time.monotonic() - t0
    # Sentinel demotes the old master on its next INFO round (up to 10 s later).
    await asyncio.to_thread(
        _wait, lambda: _info(master, "replication").get("role") == "slave", 20, "demotion"
    )
    failover = time.monotonic() - t0
    t1 = time.monotonic()
    # The pool still holds connections to the old master (now a read-only replica):
    # the READONLY reply makes redis-py drop them and retry on the new master.
    ids += [(await svc.append_event(s, ev(n=10 + i))).id for i in range(10)]
    first_after = time.monotonic() - t1
    print(
        f"\nsentinel: replica promoted after {promotion * 1000:.0f} ms, old master demoted after "
        f"{failover * 1000:.0f} ms; 10 appends right after: {first_after * 1000:.0f} ms"
    )
    assert _info(replica, "replication")["role"] == "master"
    got = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    assert got is not None and [e.id for e in got.events] == ids and got.state["n"] == 19
    s2 = await svc.create_session(app_name="app", user_id="u")
    assert {x.id for x in (await svc.list_sessions(app_name="app", user_id="u")).sessions} == {s.id, s2.id}
    with replica.client() as c:  # the data really is on the promoted node
        assert c.dbsize() > 0
    await svc.close()


async def test_sentinel_url_needs_service_name() -> None:
    with pytest.raises(ValueError, match="service name"):
        RedisSessionService("redis+sentinel://127.0.0.1:26379", key_prefix="x")
