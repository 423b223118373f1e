"""ADK session-service contract: the same assertions on ADK's InMemorySessionService
(the reference) and on RedisSessionService over fakeredis and a real server."""

from __future__ import annotations

import time
from typing import Any

import pytest
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.sessions.base_session_service import GetSessionConfig

from tests.helpers import text_event


async def test_create_and_get_roundtrip(session_service: Any) -> None:
    s = await session_service.create_session(
        app_name="app", user_id="u1", state={"k": 1, "app:a": "x", "user:u": [1, 2], "temp:t": 9}
    )
    assert s.state == {"k": 1, "app:a": "x", "user:u": [1, 2]}
    assert s.events == []
    got = await session_service.get_session(app_name="app", user_id="u1", session_id=s.id)
    assert got is not None
    assert got.id == s.id and got.app_name == "app" and got.user_id == "u1"
    assert got.state == {"k": 1, "app:a": "x", "user:u": [1, 2]}
    assert got.last_update_time == pytest.approx(s.last_update_time)


async def test_missing_session_is_none(session_service: Any) -> None:
    assert await session_service.get_session(app_name="app", user_id="u", session_id="nope") is None


async def test_duplicate_id_raises(session_service: Any) -> None:
    await session_service.create_session(app_name="app", user_id="u", session_id="dup")
    with pytest.raises(AlreadyExistsError):
        await session_service.create_session(app_name="app", user_id="u", session_id="dup")
    # The same id for another user or app is a different session.
    await session_service.create_session(app_name="app", user_id="other", session_id="dup")
    await session_service.create_session(app_name="app2", user_id="u", session_id="dup")


async def test_ids_are_stripped(session_service: Any) -> None:
    s = await session_service.create_session(app_name="app", user_id="u", session_id="  padded  ")
    assert s.id == "padded"
    assert await session_service.get_session(app_name="app", user_id="u", session_id=" padded ") is not None
    await session_service.delete_session(app_name="app", user_id="u", session_id="padded ")
    assert await session_service.get_session(app_name="app", user_id="u", session_id="padded") is None


async def test_generated_ids_are_unique(session_service: Any) -> None:
    ids = {(await session_service.create_session(app_name="app", user_id="u")).id for _ in range(5)}
    assert len(ids) == 5


async def test_append_event_persists_event_and_state(session_service: Any) -> None:
    s = await session_service.create_session(app_name="app", user_id="u", state={"n": 0})
    e1 = text_event("hello", n=1, **{"app:shared": "A", "user:pref": "dark", "temp:scratch": 5})
    await session_service.append_event(s, e1)
    # temp state is visible in the live session object but never persisted
    assert s.state["temp:scratch"] == 5
    assert s.state["n"] == 1 and s.state["app:shared"] == "A" and s.state["user:pref"] == "dark"
    got = await session_service.get_session(app_name="app", user_id="u", session_id=s.id)
    assert got is not None
    assert got.state == {"n": 1, "app:shared": "A", "user:pref": "dark"}
    assert [e.id for e in got.events] == [e1.id]
    assert got.events[0].content == e1.content
    assert "temp:scratch" not in (got.events[0].actions.state_delta or {})
    assert got.last_update_time == pytest.approx(e1.timestamp)


async def test_partial_events_are_not_stored(session_service: Any) -> None:
    s = await session_service.create_session(app_name="app", user_id="u")
    partial = text_event("par")
    partial.partial = True
    await session_service.append_event(s, partial)
    got = await session_service.get_session(app_name="app", user_id="u", session_id=s.id)
    assert got is not None and got.events == []


async def test_append_to_missing_or_deleted_session(session_service: Any) -> None:
    s = await session_service.create_session(app_name="app", user_id="u")
    await session_service.delete_session(app_name="app", user_id="u", session_id=s.id)
    with pytest.raises(SessionNotFoundError):
        await session_service.append_event(s, text_event("late"))


async def test_app_and_user_state_are_shared(session_service: Any) -> None:
    a = await session_service.create_session(app_name="app", user_id="alice")
    b = await session_service.create_session(app_name="app", user_id="alice")
    c = await session_service.create_session(app_name="app", user_id="bob")
    await session_service.append_event(
        a, text_event("x", **{"app:color": "red", "user:lang": "fr", "own": 1})
    )
    gb = await session_service.get_session(app_name="app", user_id="alice", session_id=b.id)
    gc = await session_service.get_session(app_name="app", user_id="bob", session_id=c.id)
    assert gb is not None and gc is not None
    assert gb.state == {"app:color": "red", "user:lang": "fr"}
    assert gc.state == {"app:color": "red"}
    assert await session_service.get_user_state(app_name="app", user_id="alice") == {"lang": "fr"}
    assert await session_service.get_user_state(app_name="app", user_id="bob") == {}
    other_app = await session_service.create_session(app_name="app2", user_id="alice")
    assert other_app.state == {}


async def test_get_session_config(session_service: Any) -> None:
    s = await session_service.create_session(app_name="app", user_id="u")
    base = time.time()
    events = [text_event(f"m{i}", ts=base + i) for i in range(6)]
    for e in events:
        await session_service.append_event(s, e)

    async def ids(config: GetSessionConfig) -> list[str]:
        got = await session_service.get_session(app_name="app", user_id="u", session_id=s.id, config=config)
        assert got is not None
        return [e.id for e in got.events]

    all_ids = [e.id for e in events]
    assert await ids(GetSessionConfig()) == all_ids
    assert await ids(GetSessionConfig(num_recent_events=2)) == all_ids[-2:]
    assert await ids(GetSessionConfig(num_recent_events=0)) == []
    assert await ids(GetSessionConfig(num_recent_events=100)) == all_ids
    assert await ids(GetSessionConfig(after_timestamp=base + 3)) == all_ids[3:]
    assert await ids(GetSessionConfig(after_timestamp=base + 2.5)) == all_ids[3:]
    assert await ids(GetSessionConfig(after_timestamp=base + 100)) == []
    assert await ids(GetSessionConfig(num_recent_events=4, after_timestamp=base + 3)) == all_ids[3:]
    assert await ids(GetSessionConfig(num_recent_events=2, after_timestamp=base + 1)) == all_ids[-2:]
    with pytest.raises(ValueError):
        GetSessionConfig(num_recent_events=-1)


async def test_list_sessions(session_service: Any) -> None:
    s1 = await session_service.create_session(app_name="app", user_id="u1", state={"a": 1, "app:g": 1})
    s2 = await session_service.create_session(app_name="app", user_id="u1", state={"user:p": 2})
    s3 = await session_service.create_session(app_name="app", user_id="u2")
    await session_service.create_session(app_name="other", user_id="u1")
    await session_service.append_event(s1, text_event("newest", ts=time.time() + 10))

    mine = (await session_service.list_sessions(app_name="app", user_id="u1")).sessions
    assert [s.id for s in mine] == [s2.id, s1.id]  # oldest update first
    assert all(s.events == [] for s in mine)
    assert mine[1].state == {"a": 1, "app:g": 1, "user:p": 2}
    everyone = (await session_service.list_sessions(app_name="app")).sessions
    assert {s.id for s in everyone} == {s1.id, s2.id, s3.id}
    assert [s.id for s in everyone][-1] == s1.id
    by_id = {s.id: s for s in everyone}
    assert by_id[s3.id].state == {"app:g": 1}
    assert by_id[s3.id].user_id == "u2"
    assert (await session_service.list_sessions(app_name="app", user_id="nobody")).sessions == []
    assert (await session_service.list_sessions(app_name="nope")).sessions == []


async def test_delete_session(session_service: Any) -> None:
    s = await session_service.create_session(app_name="app", user_id="u")
    keep = await session_service.create_session(app_name="app", user_id="u")
    await session_service.append_event(s, text_event("x"))
    await session_service.delete_session(app_name="app", user_id="u", session_id=s.id)
    assert await session_service.get_session(app_name="app", user_id="u", session_id=s.id) is None
    listed = (await session_service.list_sessions(app_name="app", user_id="u")).sessions
    assert [x.id for x in listed] == [keep.id]
    assert [x.id for x in (await session_service.list_sessions(app_name="app")).sessions] == [keep.id]
    # deleting a missing session is a no-op
    await session_service.delete_session(app_name="app", user_id="u", session_id="ghost")


async def test_recreate_after_delete_starts_empty(session_service: Any) -> None:
    s = await session_service.create_session(app_name="app", user_id="u", session_id="again")
    await session_service.append_event(s, text_event("x", k=1))
    await session_service.delete_session(app_name="app", user_id="u", session_id="again")
    s2 = await session_service.create_session(app_name="app", user_id="u", session_id="again")
    got = await session_service.get_session(app_name="app", user_id="u", session_id="again")
    assert got is not None and got.events == [] and got.state == {} and s2.state == {}


async def test_same_session_object_keeps_appending(session_service: Any) -> None:
    s = await session_service.create_session(app_name="app", user_id="u")
    for i in range(20):
        await session_service.append_event(s, text_event(f"m{i}", counter=i))
    got = await session_service.get_session(app_name="app", user_id="u", session_id=s.id)
    assert got is not None and len(got.events) == 20 and got.state["counter"] == 19
    # a freshly read session object can continue the conversation
    await session_service.append_event(got, text_event("after reload"))
    again = await session_service.get_session(app_name="app", user_id="u", session_id=s.id)
    assert again is not None and len(again.events) == 21


async def test_equal_redelivery_is_idempotent(session_service: Any) -> None:
    s = await session_service.create_session(app_name="app", user_id="u")
    e = text_event("once", n=1)
    await session_service.append_event(s, e)
    await session_service.append_event(s, e.model_copy(deep=True))
    got = await session_service.get_session(app_name="app", user_id="u", session_id=s.id)
    assert got is not None and [x.id for x in got.events] == [e.id]


@pytest.mark.parametrize(
    "weird",
    ["a:b", "*", "{tag}", "has space", "ünïcødé-用户", "x" * 1024, "%41", "a%3Ab", "", "k\\e[y]?"],
)
async def test_unusual_ids_are_isolated(session_service: Any, weird: str) -> None:
    sid = weird.strip() or "blank-session"
    s = await session_service.create_session(
        app_name=weird, user_id=weird, session_id=sid, state={"v": weird}
    )
    await session_service.append_event(s, text_event("hi", **{"user:w": weird}))
    got = await session_service.get_session(app_name=weird, user_id=weird, session_id=sid)
    assert got is not None and got.state == {"v": weird, "user:w": weird}
    # near-miss ids see nothing
    assert await session_service.get_session(app_name=weird, user_id=weird + "x", session_id=sid) is None
    assert await session_service.get_session(app_name=weird + ":", user_id=weird, session_id=sid) is None
    listed = (await session_service.list_sessions(app_name=weird, user_id=weird)).sessions
    assert [x.id for x in listed] == [sid]
    assert [(x.user_id, x.id) for x in (await session_service.list_sessions(app_name=weird)).sessions] == [
        (weird, sid)
    ]
