"""CrossSessionMemory on fakeredis and on a real server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adk_redis import CorruptedDataError
from adk_redis.keys import KeySchema
from adk_redis.memory._cross_session import CrossSessionMemory, flatten_text
from tests.memory_helpers import settings_for


@pytest.fixture
def cs(redis_client: Any, prefix: str) -> CrossSessionMemory:
    return CrossSessionMemory(redis_client, KeySchema(prefix), settings_for(prefix), "app")


async def test_user_context_roundtrip(cs: CrossSessionMemory) -> None:
    prefs = {"theme": "dark", "language": "en", "nested": {"depth": ["a", 1]}}
    await cs.store_user_context(42, "preferences", prefs)
    assert await cs.get_user_context(42, "preferences") == prefs
    assert await cs.get_user_context("42", "preferences") == prefs  # int and str ids are the same user
    assert await cs.get_user_context(43, "preferences") is None
    await cs.store_user_context(42, "profile", {"name": "Ada"})
    assert await cs.list_user_context(42) == {"preferences": prefs, "profile": {"name": "Ada"}}
    assert await cs.delete_user_context(42, "profile") is True
    assert await cs.delete_user_context(42, "profile") is False
    assert await cs.list_user_context(42) == {"preferences": prefs}
    with pytest.raises(TypeError):
        await cs.store_user_context(42, "bad", ["not", "a", "dict"])  # type: ignore[arg-type]


async def test_user_context_is_scoped_per_app(redis_client: Any, prefix: str) -> None:
    a = CrossSessionMemory(redis_client, KeySchema(prefix), settings_for(prefix), "a")
    b = CrossSessionMemory(redis_client, KeySchema(prefix), settings_for(prefix), "b")
    await a.store_user_context("u", "k", {"v": 1})
    assert await b.get_user_context("u", "k") is None
    assert await b.list_user_context("u") == {}


async def test_hostile_keys(cs: CrossSessionMemory) -> None:
    await cs.store_user_context("u:1", "a:b", {"v": 1})
    await cs.store_user_context("u", "1:a:b", {"v": 2})
    await cs.store_user_context("{u}*", "*", {"v": 3})
    assert await cs.get_user_context("u:1", "a:b") == {"v": 1}
    assert await cs.get_user_context("u", "1:a:b") == {"v": 2}
    assert await cs.list_user_context("{u}*") == {"*": {"v": 3}}
    assert await cs.list_user_context("u") == {"1:a:b": {"v": 2}}


async def test_agent_memory(cs: CrossSessionMemory) -> None:
    data = {"user_preferences": ["detailed_analysis"], "successful_strategies": ["examples"]}
    await cs.store_agent_memory("research_agent", "patterns", data)
    assert await cs.get_agent_memory("research_agent", "patterns") == data
    assert await cs.get_agent_memory("other_agent", "patterns") is None
    await cs.store_agent_memory("research_agent", "stats", {"runs": 3})
    assert await cs.list_agent_memory("research_agent") == {"patterns": data, "stats": {"runs": 3}}


async def test_knowledge_and_search(cs: CrossSessionMemory) -> None:
    await cs.store_knowledge("faq", "refunds", {"answer": "Refunds are processed within 5 business days"})
    await cs.store_knowledge("faq", "shipping", {"answer": "We ship worldwide"})
    await cs.store_knowledge("policy", "refund_policy", {"text": "No refunds on sale items"})
    assert await cs.get_knowledge("faq", "shipping") == {"answer": "We ship worldwide"}
    hits = await cs.search_knowledge("refund")
    assert {(h["category"], h["key"]) for h in hits} == {("faq", "refunds"), ("policy", "refund_policy")}
    only = await cs.search_knowledge("refund", category="policy")
    assert [(h["category"], h["key"]) for h in only] == [("policy", "refund_policy")]
    assert all(h["score"] > 0 for h in hits)
    assert await cs.search_knowledge("refund", limit=1) == hits[:1]
    assert await cs.search_knowledge("") == []


async def test_session_history_newest_first(cs: CrossSessionMemory) -> None:
    await cs.record_session(7, "s1", {"title": "first"}, timestamp=100.0)
    await cs.record_session(7, "s3", {"title": "third"}, timestamp=300.0)
    await cs.record_session(7, "s2", None, timestamp=200.0)
    hist = await cs.get_session_history(7)
    assert [h["session_id"] for h in hist] == ["s3", "s2", "s1"]
    assert hist[1]["summary"] == {} and hist[0]["timestamp"] == 300.0
    assert [h["session_id"] for h in await cs.get_session_history(7, limit=2)] == ["s3", "s2"]
    await cs.record_session(7, "s1", {"title": "again"}, timestamp=400.0)  # update moves it to the top
    assert (await cs.get_session_history(7))[0]["summary"] == {"title": "again"}
    assert await cs.get_session_history(8) == []


async def test_ttls(redis_client: Any, prefix: str) -> None:
    tiny = 0.3 / 3600
    cs = CrossSessionMemory(
        redis_client,
        KeySchema(prefix),
        settings_for(prefix, memory_ttl_hours=tiny, knowledge_ttl_hours=tiny, history_ttl_hours=tiny),
        "app",
    )
    await cs.store_user_context("u", "k", {"v": "ephemeral"})
    await cs.store_agent_memory("ag", "k", {"v": 1})
    await cs.store_knowledge("c", "k", {"v": "ephemeral"})
    await cs.record_session("u", "s")
    assert (await cs.stats())["user_contexts"] == 1
    await asyncio.sleep(0.5)
    assert await cs.get_user_context("u", "k") is None
    assert await cs.list_user_context("u") == {}
    assert await cs.get_agent_memory("ag", "k") is None
    assert await cs.list_agent_memory("ag") == {}
    assert await cs.get_knowledge("c", "k") is None
    assert await cs.search_knowledge("ephemeral") == []
    assert await cs.get_session_history("u") == []
    assert (await cs.stats())["users"] == 0


async def test_history_entries_expire_individually(redis_client: Any, prefix: str) -> None:
    short = CrossSessionMemory(
        redis_client, KeySchema(prefix), settings_for(prefix, history_ttl_hours=0.3 / 3600), "app"
    )
    long = CrossSessionMemory(redis_client, KeySchema(prefix), settings_for(prefix), "app")
    await long.record_session("u", "kept", timestamp=1.0)
    await short.record_session("u", "gone", timestamp=2.0)
    await asyncio.sleep(0.5)
    assert [h["session_id"] for h in await long.get_session_history("u")] == ["kept"]


async def test_stats(cs: CrossSessionMemory) -> None:
    await cs.store_user_context(1, "a", {"x": 1})
    await cs.store_user_context(1, "b", {"x": 2})
    await cs.store_user_context(2, "a", {"x": 3})
    await cs.store_agent_memory("ag", "m", {"y": 1})
    await cs.store_knowledge("c", "k", {"z": 1})
    await cs.record_session(1, "s1")
    st = await cs.stats()
    assert st == {
        "app_name": "app",
        "users": 2,
        "user_contexts": 3,
        "history_entries": 1,
        "indexed_memories": 3,
        "agents": 1,
        "agent_memories": 1,
        "knowledge_entries": 1,
    }


async def test_corrupted_record(cs: CrossSessionMemory, redis_client: Any) -> None:
    await cs.store_user_context("u", "good", {"v": 1})
    await cs.store_user_context("u", "bad", {"v": 2})
    await redis_client.set(cs.keys.user_context("app", "u", "bad"), b"\x80garbage")
    with pytest.raises(CorruptedDataError):
        await cs.get_user_context("u", "bad")
    assert await cs.list_user_context("u") == {"good": {"v": 1}}
    await cs.record_session("u", "s1")
    await redis_client.hset(cs.keys.history("app", "u").data, "s1", "[1]")
    assert await cs.get_session_history("u") == []


def test_flatten_text() -> None:
    assert flatten_text({"research_depth": "comprehensive", "n": [1, {"k": None}], "b": True}) == (
        "research depth comprehensive n 1 k b"
    )
