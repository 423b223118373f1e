"""A memory batch that meets ``maxmemory`` part way says exactly what it wrote (issue 17, item 6)."""

from __future__ import annotations

import uuid

import pytest
from google.adk.events.event import Event
from google.adk.sessions.session import Session
from google.genai import types

from adk_redis import RedisMemoryService, load_settings
from adk_redis.errors import RedisOutOfMemoryError

from .servers import redis_server

APP = "app"


def turn(n: int) -> Event:
    words = " ".join(f"word{n}x{k} topic{k % 7}" for k in range(60))
    author = "user" if n % 2 == 0 else "agent"
    return Event(
        author=author,
        invocation_id=f"i{n}",
        content=types.Content(role=author, parts=[types.Part(text=words)]),
    )


async def test_batch_meeting_maxmemory_reports_what_it_wrote() -> None:
    with redis_server() as server:
        direct = server.client()
        used = int(direct.info("memory")["used_memory"])
        direct.config_set("maxmemory-policy", "noeviction")
        direct.config_set("maxmemory", used + 600_000)  # room for part of the batch
        prefix = "m" + uuid.uuid4().hex[:8]
        svc = RedisMemoryService(settings=load_settings(redis_url=server.url, redis_key_prefix=prefix))
        session = Session(id="s1", app_name=APP, user_id="u", events=[turn(n) for n in range(300)])
        ik = svc.keys.user_memory_index(APP, "u")

        with pytest.raises(RedisOutOfMemoryError) as info:
            await svc.add_session_to_memory(session)
        written = info.value.written
        stored = {k.decode() for k in direct.hkeys(ik.docs)}
        assert 0 < len(written) < 300, len(written)
        assert set(written) == stored  # exactly what is in Redis, nothing more, nothing less
        assert f"{len(written)} document(s) were written" in str(info.value)
        assert "nothing was written" not in str(info.value)

        # memory freed: the same call again stores the rest, each document once
        direct.config_set("maxmemory", 0)
        await svc.add_session_to_memory(session)
        assert direct.hlen(ik.docs) == 300
        assert int(direct.hget(ik.stats, "n")) == 300
        await svc.close()


async def test_batch_refused_whole_says_nothing_was_written() -> None:
    with redis_server() as server:
        direct = server.client()
        direct.config_set("maxmemory-policy", "noeviction")
        direct.config_set("maxmemory", 1)  # below what the server already uses: every write refused
        svc = RedisMemoryService(settings=load_settings(redis_url=server.url, redis_key_prefix="m1"))
        session = Session(id="s1", app_name=APP, user_id="u", events=[turn(n) for n in range(5)])
        with pytest.raises(RedisOutOfMemoryError) as info:
            await svc.add_session_to_memory(session)
        assert info.value.written == () and "nothing was written" in str(info.value)
        direct.config_set("maxmemory", 0)
        assert direct.dbsize() == 0
        await svc.close()
