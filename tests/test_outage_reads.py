"""Reads during an outage (issue 17, item 5), with a real server killed: a session this process does not
hold raises RedisUnavailableError (it may exist in Redis) instead of reading as None; the ones it holds
are served from memory; ADK's Runner surfaces the error from run_async (and never creates an empty
session under the id); listings hold the sessions this process holds."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from google.adk.agents.llm_agent import LlmAgent
from google.adk.runners import Runner
from google.genai import types

from adk_redis import RedisSessionService, RedisUnavailableError, load_settings
from adk_redis.resilience._fallback import BreakerState, FallbackSessionService

from .agents import ScriptedModel, remember
from .helpers import FAST_FAILURE as FAST
from .helpers import delta_event as ev
from .servers import AOF_ALWAYS, RedisServer, redis_server

APP = "app"


@pytest.fixture
def aof_server() -> Iterator[RedisServer]:
    with redis_server(AOF_ALWAYS) as server:
        yield server


def fallback(server: RedisServer, prefix: str) -> FallbackSessionService:
    redis = RedisSessionService(server.url, settings=load_settings(**FAST), key_prefix=prefix)
    return FallbackSessionService(redis, failure_threshold=1, health_check_interval=0.05)


async def test_a_session_not_held_raises_one_held_is_served(
    aof_server: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    svc = fallback(aof_server, prefix)
    mine = await svc.create_session(app_name=APP, user_id="u", session_id="mine")
    await svc.append_event(mine, ev(a=1))
    other = RedisSessionService(aof_server.url, settings=load_settings(**FAST), key_prefix=prefix)
    await other.create_session(app_name=APP, user_id="u", session_id="theirs")
    gone = await svc.create_session(app_name=APP, user_id="u", session_id="gone")
    aof_server.kill()
    with pytest.raises(RedisUnavailableError, match="may exist in Redis"):  # stored only in Redis
        await svc.get_session(app_name=APP, user_id="u", session_id="theirs")
    assert svc.state is BreakerState.OPEN
    with pytest.raises(RedisUnavailableError):  # created through svc, but not held in memory
        await svc.get_session(app_name=APP, user_id="u", session_id="mine")
    with pytest.raises(RedisUnavailableError):  # an id nobody has: unknowable now, not None either
        await svc.get_session(app_name=APP, user_id="u", session_id="nobody")
    await svc.append_event(mine, ev(a=2))  # memory takes "mine" over: now it is served
    got = await svc.get_session(app_name=APP, user_id="u", session_id="mine")
    assert got is not None and got.state["a"] == 2 and len(got.events) == 2
    new = await svc.create_session(app_name=APP, user_id="u", session_id="new")  # created in memory
    got = await svc.get_session(app_name=APP, user_id="u", session_id="new")
    assert got is not None and got.id == new.id
    await svc.delete_session(app_name=APP, user_id="u", session_id="gone")  # deleted here: None
    assert await svc.get_session(app_name=APP, user_id="u", session_id="gone") is None
    del gone
    # listings: the sessions this process holds (the ones it can serve), with one warning per outage
    with caplog.at_level(logging.WARNING, logger="adk_redis.fallback"):
        listed = await svc.list_sessions(app_name=APP, user_id="u")
        await svc.list_sessions(app_name=APP, user_id="u")
        page = await svc.list_sessions_page(app_name=APP, user_id="u")
    assert {s.id for s in listed.sessions} == {"mine", "new"} == {s.id for s in page.sessions}
    assert sum("lists only the sessions this process holds" in r.message for r in caplog.records) == 1
    aof_server.start()
    assert await svc.wait_closed(10)
    got = await svc.get_session(app_name=APP, user_id="u", session_id="theirs")
    assert got is not None  # it was there all along
    listed = await svc.list_sessions(app_name=APP, user_id="u")
    assert {s.id for s in listed.sessions} == {"mine", "new", "theirs"}
    await other.close()
    await svc.close()


async def test_runner_run_async_raises_and_does_not_fork_the_session(
    aof_server: RedisServer, prefix: str
) -> None:
    svc = fallback(aof_server, prefix)
    other = RedisSessionService(aof_server.url, settings=load_settings(**FAST), key_prefix=prefix)
    await other.create_session(app_name=APP, user_id="u", session_id="s", state={"kept": True})
    agent = LlmAgent(name="memo", model=ScriptedModel(), instruction="Remember facts.", tools=[remember])
    runner = Runner(app_name=APP, agent=agent, session_service=svc, auto_create_session=True)
    aof_server.kill()
    msg = types.Content(role="user", parts=[types.Part(text="hello")])
    with pytest.raises(RedisUnavailableError):
        async for _ in runner.run_async(user_id="u", session_id="s", new_message=msg):
            pass
    # auto_create_session did not create an empty "s" in memory (it would be written back over Redis')
    assert svc.memory.sessions.get(APP, {}).get("u", {}).get("s") is None
    assert not svc.core.pending()
    aof_server.start()
    assert await svc.wait_closed(10)
    events = [e async for e in runner.run_async(user_id="u", session_id="s", new_message=msg)]
    assert events  # the turn runs once Redis is back, on the stored session
    got = await other.get_session(app_name=APP, user_id="u", session_id="s")
    assert got is not None and got.state["kept"] is True and got.state["user:facts"] == ["hello"]
    await other.close()
    await svc.close()
