"""Hybrid search: score fusion of BM25 and cosine, query embeddings cached and batched."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adk_redis import RedisMemoryService
from adk_redis.memory.embeddings import HashingEmbedder, QueryVectors, fuse
from tests.memory_helpers import make_session, texts_of

APP = "app"


def test_fuse_by_hand() -> None:
    lexical = [("a", 4.0), ("b", 2.0), ("c", 1.0)]
    semantic = [("d", 0.8), ("b", 0.6), ("e", 0.4)]
    got = dict(fuse(lexical, semantic, 0.5))
    # bm25 / 4, cosine / 0.8; a and c: cosine unknown -> the lowest returned (0.4); d, e: bm25 0
    assert got["a"] == pytest.approx(0.5 * 1.0 + 0.5 * 0.5)
    assert got["b"] == pytest.approx(0.5 * 0.5 + 0.5 * 0.75)
    assert got["c"] == pytest.approx(0.5 * 0.25 + 0.5 * 0.5)
    assert got["d"] == pytest.approx(0.5 * 1.0)
    assert got["e"] == pytest.approx(0.5 * 0.5)
    assert [k for k, _ in fuse(lexical, semantic, 0.5)] == ["a", "b", "d", "c", "e"]


def test_fuse_limits_and_ties() -> None:
    lexical = [("x", 3.0), ("y", 3.0), ("z", 3.0)]
    assert [k for k, _ in fuse(lexical, [], 0.3)] == ["x", "y", "z"]  # ties keep the BM25 order
    assert [k for k, _ in fuse([], [("q", 0.4), ("r", 0.2)], 0.3)] == ["q", "r"]
    assert [k for k, _ in fuse(lexical, [("z", 0.9)], 0.0)] == ["x", "y", "z"]  # weight 0: BM25 only


class CountingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__(dim=64)
        self.calls: list[list[str]] = []

    async def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        await asyncio.sleep(0)
        return await super().embed(texts)


async def test_query_vectors_batch_concurrent_queries_and_cache() -> None:
    emb = CountingEmbedder()
    qv = QueryVectors(emb, size=2)
    a, b, a2 = await asyncio.gather(qv.get("alpha"), qv.get("beta"), qv.get("alpha"))
    assert emb.calls == [["alpha", "beta"]]  # one call for the tick, "alpha" once
    assert a == a2 == (await emb.embed(["alpha"]))[0]
    emb.calls.clear()
    assert await qv.get("beta") == b and emb.calls == []  # cached
    await qv.get("gamma")  # evicts "alpha" (least recently used; size 2)
    await qv.get("alpha")
    assert emb.calls == [["gamma"], ["alpha"]]


async def test_query_vectors_pass_errors_to_every_waiter() -> None:
    class Broken(HashingEmbedder):
        async def embed(self, texts: list[str]) -> list[list[float]]:
            raise RuntimeError("model unavailable")

    qv = QueryVectors(Broken())
    results = await asyncio.gather(qv.get("a"), qv.get("b"), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_hybrid_search_end_to_end(redis_client: Any, prefix: str) -> None:
    emb = CountingEmbedder()
    svc = RedisMemoryService(client=redis_client, key_prefix=prefix, embedder=emb)
    await svc.add_session_to_memory(
        make_session(APP, "u", "s", ["I adopted a puppy", "the weather is grey", "puppy food is pricey"])
    )
    emb.calls.clear()
    res = await asyncio.gather(
        svc.search_memory(app_name=APP, user_id="u", query="puppy"),
        svc.search_memory(app_name=APP, user_id="u", query="grey weather"),
    )
    assert len(emb.calls) == 1  # both query vectors in one embedding call
    assert set(texts_of(res[0])[:2]) == {"I adopted a puppy", "puppy food is pricey"}
    assert texts_of(res[1])[0] == "the weather is grey"
    # with weight 0 the order is the full-text order
    ft = RedisMemoryService(client=redis_client, key_prefix=prefix)
    zero = RedisMemoryService(client=redis_client, key_prefix=prefix, embedder=emb, hybrid_weight=0.0)
    q = "puppy"
    bm25 = texts_of(await ft.search_memory(app_name=APP, user_id="u", query=q))
    assert texts_of(await zero.search_memory(app_name=APP, user_id="u", query=q))[: len(bm25)] == bm25
    with pytest.raises(ValueError):
        RedisMemoryService(client=redis_client, key_prefix=prefix, embedder=emb, hybrid_weight=1.5)


def test_client_side_cosine_numpy_and_pure_python_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    from adk_redis.memory import _vectors as vector_index
    from adk_redis.memory.embeddings import pack

    query = [0.5, -1.0, 2.0]
    stored = {b"a": pack([1.0, 0.0, 0.0]), b"b": pack([0.5, -1.0, 2.0]), b"z": pack([0.0, 0.0, 0.0])}
    fast = dict(vector_index._cosines(query, stored))
    monkeypatch.setattr(vector_index, "_np", None)
    slow = dict(vector_index._cosines(query, stored))
    assert fast.keys() == slow.keys()
    for k in fast:
        assert fast[k] == pytest.approx(slow[k], abs=1e-6)
    assert slow[b"b"] == pytest.approx(1.0) and slow[b"z"] == 0.0


async def test_reingestion_embeds_only_new_events(redis_client: Any, prefix: str) -> None:
    emb = CountingEmbedder()
    svc = RedisMemoryService(client=redis_client, key_prefix=prefix, embedder=emb)
    session = make_session(APP, "u", "s", ["first thing", "second thing"])
    await svc.add_session_to_memory(session)
    assert [len(c) for c in emb.calls] == [2]
    hit = (await svc.search_memory(app_name=APP, user_id="u", query="first")).memories[0]
    await svc.delete_memory(app_name=APP, user_id="u", memory_id=hit.id)
    session.events += make_session(APP, "u", "s", ["third thing"]).events
    emb.calls.clear()
    await svc.add_session_to_memory(session)
    assert [c for c in emb.calls if len(c) > 0 and "thing" in c[-1]] == [["user: third thing"]]
    assert sorted(texts_of(await svc.search_memory(app_name=APP, user_id="u", query="thing"))) == [
        "second thing",
        "third thing",
    ]
