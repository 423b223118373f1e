"""A pipeline cut by an outage (server killed) or a stall (the deadline) gives its connection back.

redis-py's ``Pipeline.execute`` loads the pipeline's scripts (``SCRIPT EXISTS``) on a pooled connection
before the ``try`` that resets the pipeline; when that step failed, the pipeline kept the connection:
the pool counted it in use for ever and the garbage collector logged asyncio's "Unclosed Pipeline
client".  Real throw-away servers; the shared server is never touched.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from google.adk.events.event import Event
from google.adk.sessions.session import Session
from google.genai import types
from redis.exceptions import ConnectionError as RedisConnectionError

import adk_redis
from adk_redis import FallbackMemoryService, RedisMemoryService, RedisSessionService, load_settings
from adk_redis._core.connection import pool_stats

from .servers import RedisServer, stall

APP = "app"
DEADLINE = 0.4
FAST = {
    "redis_connect_timeout": 0.3,
    "redis_socket_timeout": 2.0,  # longer than the deadline: the deadline is what ends a stall
    "redis_retry_attempts": 2,
    "redis_operation_timeout": DEADLINE,
}


def settings(server: RedisServer, **kw: Any) -> Any:
    return load_settings(redis_url=server.url, **{**FAST, **kw})


def said(text: str) -> Event:
    return Event(
        author="user", invocation_id="inv", content=types.Content(role="user", parts=[types.Part(text=text)])
    )


@pytest.fixture
def server() -> Iterator[RedisServer]:
    srv = RedisServer(args=["--enable-debug-command", "yes"])
    srv.start()
    yield srv
    srv.stop()


@asynccontextmanager
async def no_unclosed(caplog: pytest.LogCaptureFixture) -> AsyncIterator[None]:
    """Fail when an "Unclosed ..." error is logged (asyncio's logger) or warned (ResourceWarning),
    collecting garbage while this test's loop still runs (redis-py reports through the loop)."""
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.ERROR, logger="asyncio"):
        warnings.simplefilter("always")
        yield
        for _ in range(3):
            gc.collect()
            await asyncio.sleep(0)
    unclosed = [r.getMessage() for r in caplog.records if "Unclosed" in r.getMessage()]
    unclosed += [str(w.message) for w in caught if "Unclosed" in str(w.message)]
    assert not unclosed, unclosed


def in_use(service: Any) -> int:
    """Connections the service's pool counts as in use (all of them given back between calls)."""
    return int(pool_stats(service.client)["in_use"] or 0)


async def test_fallback_memory_outage_leaves_no_unclosed_pipeline(
    server: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with no_unclosed(caplog):
        svc = await adk_redis.create_memory_service(settings(server), key_prefix=prefix)
        assert isinstance(svc, FallbackMemoryService)
        s = Session(id="s1", app_name=APP, user_id="u", events=[said("the quokka smiles")])
        await svc.add_session_to_memory(s)
        server.kill()
        s.events.append(said("the wombat digs"))
        await svc.add_session_to_memory(s)  # served from memory
        assert in_use(svc.redis) == 0
        hits = await svc.search_memory(app_name=APP, user_id="u", query="wombat")
        assert len(hits.memories) == 1
        await svc.close()


async def test_plain_memory_outage_raises_and_gives_the_connection_back(
    server: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with no_unclosed(caplog):
        svc = RedisMemoryService(settings=settings(server), key_prefix=prefix)
        s = Session(id="s1", app_name=APP, user_id="u", events=[said("the quokka smiles")])
        await svc.add_session_to_memory(s)
        server.kill()
        for n in range(3):
            s.events.append(said(f"the wombat digs {n}"))
            with pytest.raises(RedisConnectionError):  # redis-py's, as before
                await svc.add_session_to_memory(s)
            assert in_use(svc) == 0
        server.start()  # the pool works again: no slot was lost
        await svc.add_session_to_memory(s)
        hits = await svc.search_memory(app_name=APP, user_id="u", query="wombat")
        assert len(hits.memories) == 3
        assert in_use(svc) == 0
        await svc.close()


async def test_fallback_session_outage_leaves_no_unclosed_pipeline(
    server: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with no_unclosed(caplog):
        svc = await adk_redis.create_session_service(settings(server), key_prefix=prefix)
        redis_svc = svc.redis  # type: ignore[attr-defined]
        assert isinstance(redis_svc, RedisSessionService)
        for _ in range(2):
            await svc.create_session(app_name=APP, user_id="u")
        assert len((await svc.list_sessions(app_name=APP, user_id="u")).sessions) == 2  # a pipeline
        server.kill()
        await svc.list_sessions(app_name=APP, user_id="u")  # served from memory
        await svc.create_session(app_name=APP, user_id="u")
        assert in_use(redis_svc) == 0
        await svc.close()


async def test_stalled_server_pipelines_give_their_connection_back(
    server: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with no_unclosed(caplog):
        memory = RedisMemoryService(settings=settings(server), key_prefix=prefix)
        sessions = RedisSessionService(settings=settings(server), key_prefix=prefix)
        s = Session(id="s1", app_name=APP, user_id="u", events=[said("the quokka smiles")])
        await memory.add_session_to_memory(s)
        await sessions.create_session(app_name=APP, user_id="u")
        thread = stall(server, 2.0)
        t0 = time.monotonic()
        with pytest.raises(adk_redis.RedisUnavailableError):  # the pipeline's SCRIPT EXISTS, cut
            await memory.add_events_to_memory(app_name=APP, user_id="u", events=[said("the wombat digs")])
        with pytest.raises(adk_redis.RedisUnavailableError):
            await sessions.list_sessions(app_name=APP, user_id="u")  # a pipeline, cut by the deadline
        assert time.monotonic() - t0 < 2 * DEADLINE + 0.5
        assert in_use(memory) == 0 and in_use(sessions) == 0
        thread.join()
        # the connections cut mid-reply were dropped, never reused
        await memory.add_events_to_memory(app_name=APP, user_id="u", events=[said("the wombat digs")])
        hits = await memory.search_memory(app_name=APP, user_id="u", query="wombat")
        assert len(hits.memories) == 1
        assert len((await sessions.list_sessions(app_name=APP, user_id="u")).sessions) == 1
        assert in_use(memory) == 0 and in_use(sessions) == 0
        await memory.close()
        await sessions.close()
