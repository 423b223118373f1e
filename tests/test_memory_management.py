"""Issue 19: memory you can manage (ids that round-trip, deletion, forget_user, TTL overrides, hits,
scores).  Each test runs on fakeredis and a real server (``redis_memory``), the ADK contract ones also on
ADK's InMemoryMemoryService as the reference (``memory_service``)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from google.adk.memory.memory_entry import MemoryEntry
from google.genai import types

from adk_redis.memory_service import RedisMemoryService
from tests.memory_helpers import make_session

pytest_plugins = ["tests.memory_fixtures"]

APP = "app"


def entry(text: str, id_: str | None = None, **meta: Any) -> MemoryEntry:
    return MemoryEntry(
        id=id_, author="user", content=types.Content(parts=[types.Part(text=text)]), custom_metadata=meta
    )


async def search(svc: Any, query: str, user: str = "u") -> list[MemoryEntry]:
    return list((await svc.search_memory(app_name=APP, user_id=user, query=query)).memories)


# -- 1. ids round-trip -------------------------------------------------------------------


async def test_caller_id_round_trips(redis_memory: RedisMemoryService) -> None:
    await redis_memory.add_memory(app_name=APP, user_id="u", memories=[entry("my car is a red volvo", "car")])
    found = await search(redis_memory, "volvo")
    assert [m.id for m in found] == ["car"]
    await redis_memory.delete_memory(app_name=APP, user_id="u", memory_id="car")
    assert await search(redis_memory, "volvo") == []


async def test_generated_ids_are_accepted_as_returned(redis_memory: RedisMemoryService) -> None:
    await redis_memory.add_session_to_memory(make_session(APP, "u", "s:1 x", ["the tulips bloom in april"]))
    await redis_memory.cross_session(APP).store_user_context("u", "garden plan", {"flower": "tulips"})
    ids = [m.id for m in await search(redis_memory, "tulips")]
    assert len(ids) == 2 and all(i and i[:2] in ("h:", "c:") for i in ids)
    mids = [str(i) for i in ids]
    assert await redis_memory.delete_memories(app_name=APP, user_id="u", memory_ids=mids) == 2
    assert await search(redis_memory, "tulips") == []
    # idempotent: the second time nothing matches, and says so
    assert await redis_memory.delete_memories(app_name=APP, user_id="u", memory_ids=mids) == 0


async def test_unknown_id_is_reported(
    redis_memory: RedisMemoryService, caplog: pytest.LogCaptureFixture
) -> None:
    await redis_memory.add_memory(app_name=APP, user_id="u", memories=[entry("keep me", "kept")])
    with caplog.at_level(logging.WARNING, logger="adk_redis.memory"):
        await redis_memory.delete_memory(app_name=APP, user_id="u", memory_id="no-such-id")
    assert any("no-such-id" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert await redis_memory.delete_memories(app_name=APP, user_id="u", memory_ids=["nope", "kept"]) == 1


async def test_caller_id_cannot_collide_with_generated(redis_memory: RedisMemoryService) -> None:
    await redis_memory.add_session_to_memory(make_session(APP, "u", "s1", ["penguins waddle"]))
    [turn] = await search(redis_memory, "penguins")
    with pytest.raises(ValueError, match="reserved"):
        await redis_memory.add_memory(app_name=APP, user_id="u", memories=[entry("fake", str(turn.id))])
    # an id that only looks namespaced is the caller's own
    await redis_memory.add_memory(app_name=APP, user_id="u", memories=[entry("walrus tusks", "m:walrus")])
    assert [m.id for m in await search(redis_memory, "walrus")] == ["m:walrus"]
    assert [m.id for m in await search(redis_memory, "penguins")] == [turn.id]


async def test_legacy_prefixed_id_still_deletes(redis_memory: RedisMemoryService) -> None:
    # ids returned before issue 19 were "m:<id>": deleting with one still works
    await redis_memory.add_memory(app_name=APP, user_id="u", memories=[entry("old bicycle", "bike")])
    assert await redis_memory.delete_memories(app_name=APP, user_id="u", memory_ids=["m:bike"]) == 1
    assert await search(redis_memory, "bicycle") == []
