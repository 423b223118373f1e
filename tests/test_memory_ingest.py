"""Ingestion and ranking details: tie order, exchange context, stale session objects, term caps, OOM."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis
import redis.asyncio as aioredis
from google.adk.memory.memory_entry import MemoryEntry
from google.adk.sessions.session import Session
from google.genai import types

from adk_redis import RedisMemoryService, RedisSessionService
from adk_redis.errors import RedisOutOfMemoryError
from adk_redis.memory._cross_session import CrossSessionMemory
from tests.memory_helpers import make_event, settings_for, texts_of
from tests.servers import RedisServer

APP = "app"


async def _search(svc: Any, query: str, user: str = "u") -> list[str]:
    return texts_of(await svc.search_memory(app_name=APP, user_id=user, query=query))


# -- equal scores keep insertion order (as ADK's InMemoryMemoryService) -----------------------------
async def test_equal_scores_keep_insertion_order(memory_service: Any) -> None:
    events = [make_event(f"note {i} about work", event_id=f"note-{i}") for i in range(20)]
    events.append(make_event("the backlog note about work", event_id="backlog"))
    await memory_service.add_session_to_memory(
        Session(id="many", app_name=APP, user_id="u", events=events, last_update_time=1000)
    )
    # the best match is stored last but ranks first; the rest tie and keep the order they were added
    # in ("note 10" does not come before "note 2")
    assert await _search(memory_service, "work backlog note") == ["the backlog note about work"] + [
        f"note {i} about work" for i in range(9)
    ]


async def test_more_matching_words_rank_first(memory_service: Any) -> None:
    events = [
        make_event("The deploy is ready.", event_id="a"),
        make_event("Ready.", event_id="b"),
        make_event("The deploy status is ready.", event_id="c"),
    ]
    await memory_service.add_session_to_memory(Session(id="s", app_name=APP, user_id="u", events=events))
    assert await _search(memory_service, "deploy status ready") == [
        "The deploy status is ready.",
        "The deploy is ready.",
        "Ready.",
    ]


async def test_ties_across_calls_follow_insertion_not_ids(redis_memory: RedisMemoryService) -> None:
    for mid in ["zeta", "alpha", "mid"]:  # ids sort the other way round
        await redis_memory.add_memory(
            app_name=APP,
            user_id="u",
            memories=[MemoryEntry(id=mid, content=types.Content(parts=[types.Part(text="walk the dog")]))],
        )
    res = await redis_memory.search_memory(app_name=APP, user_id="u", query="dog")
    assert [m.id for m in res.memories] == ["zeta", "alpha", "mid"]


# -- a turn is indexed with the other party's adjacent turns (at half weight) ----------------------------
# They raise its rank; they never make it a hit by themselves (issue 19: every hit has a query term).
async def test_answer_ranked_by_the_words_of_its_question(redis_memory: RedisMemoryService) -> None:
    q = make_event("What is the name of your cat?", author="user", event_id="q")
    a = make_event("Pixel, she is a grey cat with white paws.", author="assistant", event_id="a")
    other = make_event("My neighbour has a cat too.", author="user", event_id="o")
    session = Session(id="s", app_name=APP, user_id="u", events=[q])
    await redis_memory.add_session_to_memory(session)
    assert await _search(redis_memory, "Pixel") == []
    session.events += [a, other]  # re-ingestion after the next turns (only new events are added)
    await redis_memory.add_session_to_memory(session)
    hits = await _search(redis_memory, "name of the cat")
    assert hits[0] == "What is the name of your cat?"  # its own words count double
    # the answer outranks the neighbour's turn, though both say "cat" once: its question's words count
    assert hits.index("Pixel, she is a grey cat with white paws.") < hits.index("My neighbour has a cat too.")
    # the question, indexed before its answer existed, now also carries the answer's words (rank only)
    assert await _search(redis_memory, "Pixel paws") == ["Pixel, she is a grey cat with white paws."]
    assert (await _search(redis_memory, "cat paws"))[:2] == [
        "Pixel, she is a grey cat with white paws.",
        "What is the name of your cat?",
    ]


async def test_speaker_and_month_are_searchable(redis_memory: RedisMemoryService) -> None:
    may = 1683554160.0  # 8 May 2023
    events = [
        make_event("I went hiking.", author="Caroline", event_id="c", ts=may),
        make_event("I went hiking.", author="Melanie", event_id="m", ts=may + 86400 * 60),
    ]
    await redis_memory.add_session_to_memory(Session(id="s", app_name=APP, user_id="u", events=events))
    res = await redis_memory.search_memory(app_name=APP, user_id="u", query="Where did Melanie go hiking?")
    assert [m.author for m in res.memories] == ["Melanie", "Caroline"]
    res = await redis_memory.search_memory(app_name=APP, user_id="u", query="hiking in May 2023")
    assert [m.author for m in res.memories] == ["Caroline", "Melanie"]


# -- add_session_to_memory with a stale session object ------------------------------------------------
@pytest.fixture(params=["fakeredis", "redis"])
async def client(request: pytest.FixtureRequest, redis_url: str, prefix: str) -> Any:
    if request.param == "fakeredis":
        yield fakeredis.FakeAsyncRedis()
        return
    c = aioredis.Redis.from_url(redis_url)
    yield c
    keys = [k async for k in c.scan_iter(match=f"{prefix}*", count=1000)]
    if keys:
        await c.delete(*keys)
    await c.aclose()


async def test_stale_session_object_ingests_the_stored_events(client: Any, prefix: str) -> None:
    sessions = RedisSessionService(client=client, key_prefix=prefix)
    memory = RedisMemoryService(client=client, key_prefix=prefix)
    created = await sessions.create_session(app_name=APP, user_id="u")
    # a Runner turn appends through its own copy of the session
    copy = await sessions.get_session(app_name=APP, user_id="u", session_id=created.id)
    assert copy is not None
    await sessions.append_event(copy, make_event("I keep bees on the roof", author="user"))
    await sessions.append_event(copy, make_event("Bees need water nearby.", author="agent"))
    assert created.events == []
    await memory.add_session_to_memory(created)  # the object create_session returned: no events
    assert sorted(await _search(memory, "bees")) == ["Bees need water nearby.", "I keep bees on the roof"]


async def test_session_without_text_events_logs_a_warning(
    client: Any, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    # the memory service on another prefix than the sessions: only the object's events are known
    sessions = RedisSessionService(client=client, key_prefix=prefix + "s")
    memory = RedisMemoryService(client=client, key_prefix=prefix)
    created = await sessions.create_session(app_name=APP, user_id="u")
    copy = await sessions.get_session(app_name=APP, user_id="u", session_id=created.id)
    assert copy is not None
    await sessions.append_event(copy, make_event("I keep bees on the roof"))
    with caplog.at_level(logging.WARNING, logger="adk_redis.memory"):
        await memory.add_session_to_memory(created)
    assert "no text events" in caplog.text and created.id in caplog.text
    assert await _search(memory, "bees") == []
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="adk_redis.memory"):
        await memory.add_session_to_memory(copy)  # the up-to-date object works, silently
    assert caplog.text == ""
    assert await _search(memory, "bees") == ["I keep bees on the roof"]


# -- term caps: the excess is ignored and logged, never an error ------------------------------------
async def test_term_caps(redis_client: Any, prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_for(prefix).model_copy(
        update={"memory_max_terms_per_document": 5, "memory_max_query_terms": 2}
    )
    svc = RedisMemoryService(client=redis_client, settings=settings)
    words = [f"word{i}" for i in range(12)]
    with caplog.at_level(logging.WARNING, logger="adk_redis.memory"):
        await svc.add_memory(
            app_name=APP,
            user_id="u",
            memories=[MemoryEntry(id="big", content=types.Content(parts=[types.Part(text=" ".join(words))]))],
        )
    assert "7 more ignored" in caplog.text and "MEMORY_MAX_TERMS_PER_DOCUMENT" in caplog.text
    assert len(await _search(svc, "word4")) == 1
    assert await _search(svc, "word5") == []  # beyond the first five distinct terms
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="adk_redis.memory"):
        assert await _search(svc, "nothing nowhere word0") == []  # only the first two terms searched
        assert len(await _search(svc, "word0 nothing nowhere")) == 1
    assert "MEMORY_MAX_QUERY_TERMS" in caplog.text


# -- maxmemory with noeviction: a memory write raises and writes nothing --------------------------
@pytest.fixture
def full_server() -> Iterator[RedisServer]:
    server = RedisServer(args=["--appendonly", "no", "--maxmemory-policy", "noeviction"]).start()
    try:
        yield server
    finally:
        server.kill()
        server.stop()


def _fill(server: RedisServer) -> None:
    """Put maxmemory below what is used (this throw-away server only): every write that may grow
    memory is refused from now on."""
    c = server.client()
    for n in range(16):
        c.set(f"filler:{n}", "x" * 65536)
    used = int(c.info("memory")["used_memory"])
    c.config_set("maxmemory", used - 256 * 1024)
    with pytest.raises(redis.exceptions.ResponseError, match="maxmemory"):
        c.set("one-more", "x")
    c.close()


async def test_memory_writes_respect_maxmemory(full_server: RedisServer, prefix: str) -> None:
    async with RedisMemoryService(full_server.url, key_prefix=prefix) as svc:
        await svc.add_memory(
            app_name=APP,
            user_id="u",
            memories=[MemoryEntry(id="old", content=types.Content(parts=[types.Part(text="old tulips")]))],
        )
        _fill(full_server)
        before = await svc.client.dbsize()
        with pytest.raises(RedisOutOfMemoryError, match="out of memory"):
            await svc.add_memory(
                app_name=APP,
                user_id="u",
                memories=[MemoryEntry(id="old", content=types.Content(parts=[types.Part(text="new roses")]))],
            )
        with pytest.raises(RedisOutOfMemoryError):
            await svc.add_events_to_memory(
                app_name=APP, user_id="u", events=[make_event("fresh daffodils")], session_id="s"
            )
        with pytest.raises(RedisOutOfMemoryError):
            await svc.cross_session(APP).store_user_context("u", "garden", {"flower": "iris"})
        assert await svc.client.dbsize() == before
        # nothing written: the old memory is intact, the new ones are absent
        assert await _search(svc, "tulips") == ["old tulips"]
        assert await _search(svc, "roses daffodils iris") == []
        # deleting still works (it frees memory)
        await svc.delete_memory(app_name=APP, user_id="u", memory_id="old")
        assert await _search(svc, "tulips") == []


async def test_cross_session_writes_respect_maxmemory(full_server: RedisServer, prefix: str) -> None:
    """User context, agent memory, knowledge and session history are refused (typed error) and write
    nothing, also when the history script has expired entries to prune first (a write that is not
    deny-oom would lift the server's OOM check for the rest of the script)."""
    async with RedisMemoryService(full_server.url, key_prefix=prefix) as svc:
        cs = svc.cross_session(APP)
        await cs.record_session("u", "kept", {"title": "kept"})
        short = CrossSessionMemory(  # its history entries live 0.1 s (the keys live on)
            svc.client, svc.keys, settings_for(prefix, history_ttl_hours=0.1 / 3600), APP
        )
        await short.record_session("u", "old", {"title": "old"})
        await cs.store_agent_memory("agent", "plan", {"step": 1})
        await cs.store_knowledge("faq", "hours", {"open": "9-17"})
        await asyncio.sleep(0.2)  # the "old" history entry expired: the next record prunes it first
        _fill(full_server)
        before = await svc.client.dbsize()
        for write in (
            cs.record_session("u", "new", {"title": "new"}),
            cs.store_agent_memory("agent", "plan", {"step": 2}),
            cs.store_agent_memory("agent2", "plan", {"step": 1}),
            cs.store_knowledge("faq", "hours", {"open": "always"}),
            cs.store_user_context("u", "garden", {"flower": "iris"}),
        ):
            with pytest.raises(RedisOutOfMemoryError, match="out of memory"):
                await write
        assert await svc.client.dbsize() == before
        assert await cs.get_agent_memory("agent", "plan") == {"step": 1}
        assert await cs.get_agent_memory("agent2", "plan") is None
        assert await cs.get_knowledge("faq", "hours") == {"open": "9-17"}
        assert await cs.get_user_context("u", "garden") is None
        assert [h["session_id"] for h in await cs.get_session_history("u")] == ["kept"]
