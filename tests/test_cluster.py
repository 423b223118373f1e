"""RedisSessionService on a real 3-master Redis Cluster (started on loopback by the test)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from google.adk.errors import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import GetSessionConfig
from redis.asyncio.cluster import RedisCluster

from adk_redis import RedisSessionService
from adk_redis._core.connection import is_cluster

from .servers import RedisServer, redis_cluster


def ev(**delta: Any) -> Event:
    return Event(author="agent", invocation_id="inv", actions=EventActions(state_delta=delta))


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[RedisServer]]:
    with redis_cluster(3) as nodes:
        yield nodes


@pytest.fixture
async def svc(cluster: list[RedisServer]) -> AsyncIterator[RedisSessionService]:
    service = RedisSessionService(
        f"redis+cluster://127.0.0.1:{cluster[0].port}", key_prefix=f"c{uuid.uuid4().hex[:8]}"
    )
    yield service
    await service.close()


async def test_cluster_client_and_slots(svc: RedisSessionService) -> None:
    assert is_cluster(svc.client) and isinstance(svc.client, RedisCluster)
    # The per-user and app-wide keys live in different slots (hence the second step on a cluster).
    from redis.crc import key_slot

    sk = svc.keys.session("app", "u", "s")
    slots = {key_slot(k.encode()) for k in (*sk.all, svc.keys.user_index("app", "u"))}
    assert len(slots) == 1
    assert key_slot(svc.keys.app_index("app").encode()) not in slots


async def test_crud_on_cluster(svc: RedisSessionService) -> None:
    apps = ["app", "other app"]
    for app in apps:
        s = await svc.create_session(
            app_name=app, user_id="alice", state={"k": 1, "user:lang": "fr", "app:mode": "x"}, session_id="s1"
        )
        with pytest.raises(AlreadyExistsError):
            await svc.create_session(app_name=app, user_id="alice", session_id="s1")
        for i in range(5):
            await svc.append_event(s, ev(n=i, **{"app:count": i, "user:last": i}))
        await svc.create_session(app_name=app, user_id="bob", session_id="s2")
        await svc.create_session(app_name=app, user_id="carol")

    got = await svc.get_session(app_name="app", user_id="alice", session_id="s1")
    assert got is not None and len(got.events) == 5
    assert got.state["n"] == 4 and got.state["app:count"] == 4 and got.state["user:last"] == 4
    assert got.state["user:lang"] == "fr" and got.state["app:mode"] == "x" and got.state["k"] == 1
    recent = await svc.get_session(
        app_name="app", user_id="alice", session_id="s1", config=GetSessionConfig(num_recent_events=2)
    )
    assert recent is not None and [e.id for e in recent.events] == [e.id for e in got.events[-2:]]
    assert await svc.get_user_state(app_name="app", user_id="alice") == {"lang": "fr", "last": 4}

    mine = await svc.list_sessions(app_name="app", user_id="alice")
    assert [x.id for x in mine.sessions] == ["s1"] and mine.sessions[0].state["app:count"] == 4
    everyone = await svc.list_sessions(app_name="app")
    assert sorted(x.user_id for x in everyone.sessions) == ["alice", "bob", "carol"]
    assert all(x.state["app:count"] == 4 for x in everyone.sessions)

    await svc.delete_session(app_name="app", user_id="alice", session_id="s1")
    assert await svc.get_session(app_name="app", user_id="alice", session_id="s1") is None
    assert sorted(x.user_id for x in (await svc.list_sessions(app_name="app")).sessions) == ["bob", "carol"]
    with pytest.raises(SessionNotFoundError):
        await svc.append_event(got, ev(n=99))
    # The other app is untouched.
    assert len((await svc.list_sessions(app_name="other app")).sessions) == 3


async def test_stale_detection_on_cluster(svc: RedisSessionService) -> None:
    s = await svc.create_session(app_name="app", user_id="u")
    a = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    b = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    assert a is not None and b is not None
    await svc.append_event(a, ev(x=1))
    with pytest.raises(StaleSessionError):
        await svc.append_event(b, ev(x=2))
    # Re-delivery of the same event is idempotent.
    e = ev(y=1)
    await svc.append_event(a, e)
    again = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    assert again is not None
    await svc.append_event(again, e)
    final = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    assert final is not None and len(final.events) == 2


async def test_many_users_spread_over_nodes(svc: RedisSessionService, cluster: list[RedisServer]) -> None:
    for i in range(30):
        s = await svc.create_session(app_name="spread", user_id=f"user{i}")
        await svc.append_event(s, ev(i=i))
    listed = await svc.list_sessions(app_name="spread")
    assert len(listed.sessions) == 30
    used = 0
    for node in cluster:
        with node.client() as c:
            if c.dbsize():
                used += 1
    assert used >= 2  # the data really is spread over several masters


async def test_pages_on_cluster(svc: RedisSessionService) -> None:
    """Per-user pages (one slot) and app-wide pages (app index, then sessions of many slots)."""
    ids = []
    for i in range(7):
        s = await svc.create_session(app_name="pg", user_id=f"user{i % 3}", state={"i": i})
        ids.append(s.id)
    await svc.delete_session(app_name="pg", user_id="user1", session_id=ids[1])
    for user, order in ((None, "created"), ("user0", "created"), (None, "updated")):
        seen, cursor = [], None
        while True:
            page = await svc.list_sessions_page(
                app_name="pg", user_id=user, limit=2, cursor=cursor, order=order
            )
            seen += [s.id for s in page.sessions]
            cursor = page.next_cursor
            if cursor is None:
                break
        want = [sid for i, sid in enumerate(ids) if i != 1 and (user is None or i % 3 == 0)]
        assert seen == (want if order == "created" else want[::-1])


async def test_concurrent_first_commands_of_a_fresh_client(cluster: list[RedisServer]) -> None:
    """redis-py's async RedisCluster loses connections when its first commands race its lazy
    initialization (40 concurrent restores failed 5-25 times per run before the fix in
    LoopLocalClient); every one of them must succeed, in several fresh clients."""
    import asyncio

    from google.adk.sessions.session import Session

    for round_ in range(4):
        prefix = f"cfirst{uuid.uuid4().hex[:8]}"
        service = RedisSessionService(f"redis+cluster://127.0.0.1:{cluster[0].port}", key_prefix=prefix)
        sessions = [
            Session(
                id=f"s{i}",
                app_name=f"app{i % 3}",
                user_id=f"u{i % 7}",
                state={"a": i},
                events=[Event(id=f"e{i}", author="user", timestamp=1.0 + i)],
                last_update_time=1.0 + i,
            )
            for i in range(40)
        ]
        writes = (service.restore_session(s) for s in sessions)
        results = await asyncio.gather(*writes, return_exceptions=True)
        assert [r for r in results if isinstance(r, BaseException)] == [], f"round {round_}"
        assert all(results)
        for i in (0, 17, 39):
            got = await service.get_session(app_name=f"app{i % 3}", user_id=f"u{i % 7}", session_id=f"s{i}")
            assert got is not None and [e.id for e in got.events] == [f"e{i}"]
        await service.close()


async def test_lww_on_cluster_keeps_the_later_app_and_user_value(cluster: list[RedisServer]) -> None:
    """stale_policy="lww": the app-slot step of an append leaves out the app: keys the event lost."""
    url = f"redis+cluster://127.0.0.1:{cluster[0].port}"
    svc = RedisSessionService(url, key_prefix=f"c{uuid.uuid4().hex[:8]}", stale_policy="lww")
    s = await svc.create_session(app_name="app", user_id="u")
    a = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    b = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    assert a is not None and b is not None

    def at(ts: float, value: str) -> Event:
        delta = {"app:mode": value, "user:last": value, "k": value}
        return Event(author="x", invocation_id="i", timestamp=ts, actions=EventActions(state_delta=delta))

    await svc.append_event(a, at(2000.0, "a"))
    await svc.append_event(b, at(1000.0, "b"))  # stale and older: stored, every key keeps "a"
    got = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    assert got is not None and len(got.events) == 2
    assert (got.state["app:mode"], got.state["user:last"], got.state["k"]) == ("a", "a", "a")
    await svc.append_event(b, at(3000.0, "c"))  # later: wins everywhere
    got = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    assert got is not None
    assert (got.state["app:mode"], got.state["user:last"], got.state["k"]) == ("c", "c", "c")
    await svc.close()
