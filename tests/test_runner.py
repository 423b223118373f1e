"""An ADK Runner with a scripted model persists through RedisSessionService."""

from __future__ import annotations

from typing import Any

from google.adk.runners import Runner

from adk_redis import RedisSessionService
from tests.agents import make_agent, run_turn


async def test_runner_persists_through_redis(redis_url: str, prefix: str, real_client: Any) -> None:
    svc = RedisSessionService(redis_url, key_prefix=prefix)
    runner = Runner(app_name="memo_app", agent=make_agent(), session_service=svc)
    session = await svc.create_session(app_name="memo_app", user_id="alice")
    events = await run_turn(runner, "alice", session.id, "the sky is blue")
    events += await run_turn(runner, "alice", session.id, "grass is green")
    assert events[-1].content.parts[0].text == "stored 2 facts"
    await svc.close()

    fresh = RedisSessionService(redis_url, key_prefix=prefix)  # new connection, new process state
    got = await fresh.get_session(app_name="memo_app", user_id="alice", session_id=session.id)
    assert got is not None
    assert got.state["user:facts"] == ["the sky is blue", "grass is green"]
    assert got.state["turns"] == 2
    kinds = [
        "call" if e.get_function_calls() else "resp" if e.get_function_responses() else e.author
        for e in got.events
    ]
    assert kinds == ["user", "call", "resp", "memo"] * 2
    assert [e.id for e in got.events] == [e.id for e in (await svc_events(fresh, session.id))]
    # a new session of the same user sees the user state; the runner continues on the reloaded service
    runner2 = Runner(app_name="memo_app", agent=make_agent(), session_service=fresh)
    s2 = await fresh.create_session(app_name="memo_app", user_id="alice")
    assert s2.state["user:facts"] == ["the sky is blue", "grass is green"]
    await run_turn(runner2, "alice", session.id, "water is wet")
    again = await fresh.get_session(app_name="memo_app", user_id="alice", session_id=session.id)
    assert again is not None and len(again.events) == 12
    await fresh.close()


async def svc_events(svc: RedisSessionService, session_id: str) -> list[Any]:
    got = await svc.get_session(app_name="memo_app", user_id="alice", session_id=session_id)
    assert got is not None
    return list(got.events)
