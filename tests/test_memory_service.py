"""RedisMemoryService: ADK contract (InMemoryMemoryService as reference) and our own guarantees."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from google.adk.memory.memory_entry import MemoryEntry
from google.genai import types

from adk_redis import CorruptedDataError
from adk_redis.memory._service import RedisMemoryService, decode_entry
from adk_redis.memory.embeddings import HashingEmbedder
from tests.memory_helpers import make_event, make_session, settings_for, texts_of

pytest_plugins = ["tests.memory_fixtures"]

APP = "app"

# -- contract: behaviour ADK's InMemoryMemoryService defines -----------------------


async def test_keyword_match_is_found(memory_service: Any) -> None:
    s = make_session(APP, "u1", "s1", ["My dog is named Rex", "I live in Paris", "The weather is nice"])
    await memory_service.add_session_to_memory(s)
    res = await memory_service.search_memory(app_name=APP, user_id="u1", query="Paris")
    assert texts_of(res) == ["I live in Paris"]
    m = res.memories[0]
    assert m.author == "user" and m.timestamp and m.id


async def test_no_match_and_empty_query(memory_service: Any) -> None:
    await memory_service.add_session_to_memory(make_session(APP, "u1", "s1", ["hello world"]))
    assert (await memory_service.search_memory(app_name=APP, user_id="u1", query="zebra")).memories == []
    assert (await memory_service.search_memory(app_name=APP, user_id="u1", query="")).memories == []
    assert (await memory_service.search_memory(app_name=APP, user_id="nobody", query="hello")).memories == []


async def test_best_match_ranks_first(memory_service: Any) -> None:
    s = make_session(APP, "u1", "s1", ["blue car", "my favourite blue car is a tesla", "red bike"])
    await memory_service.add_session_to_memory(s)
    res = await memory_service.search_memory(app_name=APP, user_id="u1", query="favourite blue tesla")
    assert texts_of(res)[0] == "my favourite blue car is a tesla"


@pytest.mark.parametrize("other", [("app", "u2"), ("app2", "u1")])
async def test_scoped_per_app_and_user(memory_service: Any, other: tuple[str, str]) -> None:
    await memory_service.add_session_to_memory(make_session(APP, "u1", "s1", ["secret password swordfish"]))
    res = await memory_service.search_memory(app_name=other[0], user_id=other[1], query="swordfish")
    assert res.memories == []
    res = await memory_service.search_memory(app_name=APP, user_id="u1", query="swordfish")
    assert len(res.memories) == 1


async def test_events_without_content_are_ignored(memory_service: Any) -> None:
    s = make_session(APP, "u1", "s1", ["apples"])
    empty = make_event("x")
    empty.content = None
    s.events.append(empty)
    await memory_service.add_session_to_memory(s)
    assert texts_of(await memory_service.search_memory(app_name=APP, user_id="u1", query="apples")) == [
        "apples"
    ]


async def test_add_events_is_idempotent(memory_service: Any) -> None:
    events = [make_event("the quick brown fox"), make_event("lazy dog")]
    for _ in range(3):
        await memory_service.add_events_to_memory(app_name=APP, user_id="u1", events=events, session_id="s")
    res = await memory_service.search_memory(app_name=APP, user_id="u1", query="fox")
    assert texts_of(res) == ["the quick brown fox"]


async def test_at_most_ten_results(memory_service: Any) -> None:
    s = make_session(APP, "u1", "s1", [f"note number {i} about coffee" for i in range(25)])
    await memory_service.add_session_to_memory(s)
    res = await memory_service.search_memory(app_name=APP, user_id="u1", query="coffee")
    assert len(res.memories) == 10


async def test_delete_memory_by_returned_id(memory_service: Any) -> None:
    s = make_session(APP, "u1", "s1", ["I am allergic to peanuts", "I like peanuts butter jelly"])
    await memory_service.add_session_to_memory(s)
    res = await memory_service.search_memory(app_name=APP, user_id="u1", query="allergic")
    await memory_service.delete_memory(app_name=APP, user_id="u1", memory_id=res.memories[0].id)
    assert (await memory_service.search_memory(app_name=APP, user_id="u1", query="allergic")).memories == []
    # re-adding the session does not bring the deleted memory back
    await memory_service.add_session_to_memory(s)
    assert (await memory_service.search_memory(app_name=APP, user_id="u1", query="allergic")).memories == []
    assert len((await memory_service.search_memory(app_name=APP, user_id="u1", query="jelly")).memories) == 1


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("私はPythonを使う", "Python"),
        ("東京に住んでいます", "東京"),
        ("Привет, мир", "мир"),
        ("Café au lait", "café"),
    ],
)
async def test_non_latin_scripts(memory_service: Any, text: str, query: str) -> None:
    await memory_service.add_session_to_memory(make_session(APP, "u1", "s1", [text, "unrelated"]))
    assert texts_of(await memory_service.search_memory(app_name=APP, user_id="u1", query=query)) == [text]


# -- ours only ------------------------------------------------------------------


async def test_inflections_and_stop_words(redis_memory: RedisMemoryService) -> None:
    s = make_session(APP, "u1", "s1", ["I adopted two cats last year", "We are going to the theatre"])
    await redis_memory.add_session_to_memory(s)
    res = await redis_memory.search_memory(app_name=APP, user_id="u1", query="adopting a cat")
    assert texts_of(res)[0] == "I adopted two cats last year"
    assert (await redis_memory.search_memory(app_name=APP, user_id="u1", query="are the to")).memories == []


async def test_cjk_phrase_matches_inside_unsegmented_text(redis_memory: RedisMemoryService) -> None:
    await redis_memory.add_session_to_memory(
        make_session(APP, "u", "s", ["東京に住んでいます", "大阪に行きました"])
    )
    res = await redis_memory.search_memory(app_name=APP, user_id="u", query="東京に住む")
    assert texts_of(res)[0] == "東京に住んでいます"


async def test_metadata_and_ids(redis_memory: RedisMemoryService) -> None:
    ev = make_event("meet Bob at noon", author="agent", event_id="e:1*{x}")
    await redis_memory.add_events_to_memory(app_name=APP, user_id="u", events=[ev], session_id="s:{1}*")
    m = (await redis_memory.search_memory(app_name=APP, user_id="u", query="Bob")).memories[0]
    meta = dict(m.custom_metadata)
    assert isinstance(meta.pop("score"), float)
    assert meta == {"session_id": "s:{1}*", "event_id": "e:1*{x}", "source": "history"}
    assert m.author == "agent" and m.timestamp is not None and m.timestamp.endswith("+00:00")
    await redis_memory.delete_memory(app_name=APP, user_id="u", memory_id=m.id)
    assert (await redis_memory.search_memory(app_name=APP, user_id="u", query="Bob")).memories == []


@pytest.mark.parametrize(
    "ids", [("a:b", "c"), ("a", "b:c"), ("*", "*"), ("{a}", "{b}"), ("a{", "}b"), ("", "x")]
)
async def test_hostile_ids_stay_separate(redis_memory: RedisMemoryService, ids: tuple[str, str]) -> None:
    app, user = ids
    await redis_memory.add_session_to_memory(make_session(app, user, "s", ["zebra crossing"]))
    assert len((await redis_memory.search_memory(app_name=app, user_id=user, query="zebra")).memories) == 1
    for a, u in [(app + ":" + user, ""), (app, user + "*"), ("*", "*"), (user, app), (app, "")]:
        if (a, u) != ids:
            assert (await redis_memory.search_memory(app_name=a, user_id=u, query="zebra")).memories == []


async def test_reingestion_adds_only_new_events(redis_memory: RedisMemoryService) -> None:
    s = make_session(APP, "u", "s", ["alpha one", "beta two"])
    await redis_memory.add_session_to_memory(s)
    s.events.append(make_event("gamma three"))
    await redis_memory.add_session_to_memory(s)
    await redis_memory.add_session_to_memory(s)
    ik = redis_memory.keys.user_memory_index(APP, "u")
    assert int(await redis_memory.client.hget(ik.stats, "n")) == 3
    assert int(await redis_memory.client.hlen(ik.postings("alpha"))) == 1


async def test_add_memory_and_replace(redis_memory: RedisMemoryService) -> None:
    entry = MemoryEntry(
        id="fact-1",
        content=types.Content(parts=[types.Part(text="favourite colour is green")]),
        author="user",
        custom_metadata={"topic": "prefs"},
    )
    await redis_memory.add_memory(app_name=APP, user_id="u", memories=[entry])
    m = (await redis_memory.search_memory(app_name=APP, user_id="u", query="colour")).memories[0]
    assert (
        m.id == "fact-1" and m.custom_metadata["topic"] == "prefs" and m.custom_metadata["source"] == "memory"
    )
    entry.content = types.Content(parts=[types.Part(text="favourite colour is purple")])
    await redis_memory.add_memory(app_name=APP, user_id="u", memories=[entry])
    assert texts_of(await redis_memory.search_memory(app_name=APP, user_id="u", query="colour")) == [
        "favourite colour is purple"
    ]
    assert (await redis_memory.search_memory(app_name=APP, user_id="u", query="green")).memories == []


async def test_search_covers_context_and_app_knowledge(redis_memory: RedisMemoryService) -> None:
    cs = redis_memory.cross_session(APP)
    await cs.store_user_context("u1", "diet", {"allergy": "shellfish"})
    await cs.store_knowledge("menu", "paella", {"ingredients": "rice shellfish saffron"})
    res = await redis_memory.search_memory(app_name=APP, user_id="u1", query="shellfish")
    assert {m.custom_metadata["source"] for m in res.memories} == {"context", "knowledge"}
    res2 = await redis_memory.search_memory(app_name=APP, user_id="u2", query="shellfish")
    assert [m.custom_metadata["source"] for m in res2.memories] == ["knowledge"]
    assert (
        await redis_memory.search_memory(app_name="other", user_id="u1", query="shellfish")
    ).memories == []
    # knowledge is not a user's to delete; context is
    for m in res.memories:
        await redis_memory.delete_memory(app_name=APP, user_id="u1", memory_id=m.id)
    res3 = await redis_memory.search_memory(app_name=APP, user_id="u1", query="shellfish")
    assert [m.custom_metadata["source"] for m in res3.memories] == ["knowledge"]
    assert await cs.get_user_context("u1", "diet") is None


async def test_history_ttl_expires_entries(redis_client: Any, prefix: str) -> None:
    svc = RedisMemoryService(client=redis_client, settings=settings_for(prefix, history_ttl_hours=0.4 / 3600))
    await svc.add_session_to_memory(make_session(APP, "u", "s", ["short lived fact"]))
    await svc.add_events_to_memory(
        app_name=APP,
        user_id="u",
        events=[make_event("long lived fact")],
        session_id="s2",
        custom_metadata={"ttl_hours": 1.0},
    )
    assert len((await svc.search_memory(app_name=APP, user_id="u", query="fact")).memories) == 2
    await asyncio.sleep(0.6)
    assert texts_of(await svc.search_memory(app_name=APP, user_id="u", query="fact")) == ["long lived fact"]
    ik = svc.keys.user_memory_index(APP, "u")
    assert int(await redis_client.hget(ik.stats, "n")) == 1  # pruned lazily by the search
    assert await redis_client.exists(ik.postings("short")) == 0


async def test_cleanup_prunes_everything_expired(redis_client: Any, prefix: str) -> None:
    svc = RedisMemoryService(client=redis_client, settings=settings_for(prefix, history_ttl_hours=0.3 / 3600))
    await svc.add_session_to_memory(make_session(APP, "u", "s", [f"fact {i} kiwi" for i in range(150)]))
    await svc.add_events_to_memory(  # keeps the index keys alive
        app_name=APP, user_id="u", events=[make_event("durable")], custom_metadata={"ttl_hours": 1}
    )
    await asyncio.sleep(0.5)
    # more than one lazy-prune batch is pending: results are still filtered
    assert (await svc.search_memory(app_name=APP, user_id="u", query="kiwi")).memories == []
    assert await svc.cleanup(app_name=APP, user_id="u") == 150 - 64
    ik = svc.keys.user_memory_index(APP, "u")
    assert int(await redis_client.hget(ik.stats, "n")) == 1
    assert await redis_client.zcard(ik.expiry) == 1
    assert await redis_client.exists(ik.postings("kiwi")) == 0


async def test_corrupted_record_is_skipped(redis_memory: RedisMemoryService) -> None:
    await redis_memory.add_session_to_memory(make_session(APP, "u", "s", ["mango smoothie", "mango salsa"]))
    ik = redis_memory.keys.user_memory_index(APP, "u")
    docs = await redis_memory.client.hkeys(ik.docs)
    await redis_memory.client.hset(ik.docs, docs[0], b"{not json")
    res = await redis_memory.search_memory(app_name=APP, user_id="u", query="mango")
    assert len(res.memories) == 1
    with pytest.raises(CorruptedDataError):
        decode_entry("h:x", "{not json")


async def test_forget_user(redis_memory: RedisMemoryService, prefix: str) -> None:
    cs = redis_memory.cross_session(APP)
    await redis_memory.add_session_to_memory(make_session(APP, "u1", "s", ["walnut bread"]))
    await redis_memory.add_session_to_memory(make_session(APP, "u2", "s", ["walnut cake"]))
    await cs.store_user_context("u1", "k", {"v": "walnut"})
    await cs.record_session("u1", "s")
    await redis_memory.forget_user(app_name=APP, user_id="u1")
    assert (await redis_memory.search_memory(app_name=APP, user_id="u1", query="walnut")).memories == []
    assert len((await redis_memory.search_memory(app_name=APP, user_id="u2", query="walnut")).memories) == 1
    left = [k async for k in redis_memory.client.scan_iter(match=f"{prefix}:*u1*")]
    assert left == []


async def test_hybrid_search_with_embedder(redis_client: Any, prefix: str) -> None:
    emb = HashingEmbedder(synonyms={"automobile": "car", "vehicle": "car"})
    svc = RedisMemoryService(client=redis_client, key_prefix=prefix, embedder=emb)
    s = make_session(APP, "u", "s", ["I drive an old automobile", "I cook pasta on sundays", "my cat sleeps"])
    await svc.add_session_to_memory(s)
    res = await svc.search_memory(app_name=APP, user_id="u", query="what car do I have")
    assert texts_of(res)[0] == "I drive an old automobile"
    res = await svc.search_memory(app_name=APP, user_id="u", query="pasta")
    assert texts_of(res)[0] == "I cook pasta on sundays"
    other = await svc.search_memory(app_name=APP, user_id="someone", query="car")
    assert other.memories == []


async def test_context_manager_closes_own_client(redis_url: str, prefix: str) -> None:
    async with RedisMemoryService(redis_url, key_prefix=prefix) as svc:
        await svc.add_session_to_memory(make_session(APP, "u", "s", ["ping pong"]))
        assert len((await svc.search_memory(app_name=APP, user_id="u", query="pong")).memories) == 1
        await svc.forget_user(app_name=APP, user_id="u")


async def test_lua_bm25_matches_python_reference(redis_client: Any, prefix: str) -> None:
    import math
    import random

    from adk_redis.keys import KeySchema
    from adk_redis.memory._search import SearchIndex
    from adk_redis.memory._tokenizer import index_terms

    rnd = random.Random(3)
    vocab = ["apple", "banana", "cherry", "date", "elder", "fig", "grape", "honeydew", "kiwi", "lemon"]
    docs = {
        f"d{i}": " ".join(rnd.choice(vocab[: 3 + i % 8]) for _ in range(rnd.randint(1, 12)))
        for i in range(80)
    }
    idx = SearchIndex(redis_client)
    ik = KeySchema(prefix).user_memory_index("a", "u")
    for d, body in docs.items():
        await idx.put(ik, d, body, "{}", ttl_ms=60_000)
    counts = {d: index_terms(t)[0] for d, t in docs.items()}
    n = len(docs)
    avgdl = sum(sum(c.values()) for c in counts.values()) / n

    def bm25(d: str, terms: list[str]) -> float:
        c, dl, s = counts[d], sum(counts[d].values()), 0.0
        for t in terms:
            df = sum(1 for x in counts.values() if t in x)
            if t in c:
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                s += idf * c[t] * 2.2 / (c[t] + 1.2 * (1 - 0.75 + 0.75 * dl / avgdl))
        return s

    for query in (["apple", "kiwi"], ["banana"], ["lemon", "grape", "apple"], ["honeydew", "cherry"]):
        hits = await idx.search([(ik, "")], query, 10)
        assert hits
        for h in hits:
            assert h.score == pytest.approx(bm25(h.doc_id, query), rel=1e-9)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        exact = sorted(((bm25(d, query), d) for d in docs), key=lambda x: (-x[0], x[1]))[:10]
        assert hits[0].score == pytest.approx(exact[0][0])
