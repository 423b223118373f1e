"""Memory generation with the scripted model: extraction, consolidation, revisions, retries, scope."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import fakeredis
import pytest
import redis.asyncio as aioredis
from google.adk.events.event import Event
from google.adk.memory.memory_entry import MemoryEntry
from google.genai import types

from adk_redis.memory import MemoryGenerator, RedisMemoryService, Topic, dead_jobs, retry_dead
from adk_redis.memory._generator import JobEvent
from adk_redis.memory.embeddings import HashingEmbedder
from adk_redis.testing import FactReplayModel, ScriptedModel
from tests.memory_helpers import drop_prefix

APP = "gen"
TS = datetime(2024, 5, 7, 10, 0, tzinfo=timezone.utc).timestamp()  # a Tuesday


def ev(eid: str, said: str, author: str = "user", ts: float = TS) -> Event:
    return Event(
        id=eid,
        author=author,
        invocation_id=eid,
        timestamp=ts,
        content=types.Content(role="user", parts=[types.Part(text=said)]),
    )


def extraction(*facts: tuple[str, str, list[str]]) -> str:
    return json.dumps({"facts": [{"text": t, "topic": p, "source_event_ids": s} for t, p, s in facts]})


def decisions(*items: dict[str, Any]) -> str:
    return json.dumps({"decisions": list(items)})


def prompt_of(model: ScriptedModel, n: int) -> str:
    req = model.requests[n]
    return "\n".join(p.text or "" for c in req.contents for p in c.parts or [])


@pytest.fixture(params=["redis", "fakeredis"])
async def client(request: pytest.FixtureRequest, redis_url: str, prefix: str) -> AsyncIterator[Any]:
    if request.param == "fakeredis":
        yield fakeredis.FakeAsyncRedis()
        return
    c = aioredis.Redis.from_url(redis_url)
    yield c
    await drop_prefix(c, prefix)
    await c.aclose()


def service(client: Any, prefix: str, model: ScriptedModel, **kw: Any) -> RedisMemoryService:
    gen_kw = {
        k: kw.pop(k) for k in list(kw) if k in ("max_attempts", "backoff", "max_output_chars", "topics")
    }
    gen = MemoryGenerator(model, backoff=0.0, **gen_kw)
    return RedisMemoryService(client=client, key_prefix=prefix, generator=gen, **kw)


async def facts_of(svc: RedisMemoryService, user: str = "alice") -> list[MemoryEntry]:
    return await svc.list_facts(app_name=APP, user_id=user)


def text_of(entry: MemoryEntry) -> str:
    assert entry.content is not None and entry.content.parts
    return entry.content.parts[0].text or ""


async def test_extraction_is_grounded_and_searchable(client: Any, prefix: str) -> None:
    model = ScriptedModel(
        script=[
            extraction(
                ("Alice moved to Paris on 2024-05-06.", "personal_info", ["e2"]),
                ("Alice owns a cat.", "personal_info", ["not-sent"]),  # cites an event it was not sent
            )
        ]
    )
    svc = service(client, prefix, model)
    await svc.add_events_to_memory(
        app_name=APP,
        user_id="alice",
        session_id="s1",
        events=[ev("e1", "Hi, I am Alice"), ev("e2", "I moved to Paris yesterday", ts=TS + 5)],
        custom_metadata={"wait_for_completion": True},
    )
    prompt = prompt_of(model, 0)
    assert "[e2] (2024-05-07 10:00 UTC (Tuesday)) user: I moved to Paris yesterday" in prompt
    req = model.requests[0]
    assert req.config.response_mime_type == "application/json" and req.config.response_schema is not None
    facts = await facts_of(svc)
    assert [text_of(f) for f in facts] == ["Alice moved to Paris on 2024-05-06."]
    res = await svc.search_memory(app_name=APP, user_id="alice", query="where did Alice move Paris")
    kinds = [(m.custom_metadata or {}).get("kind") for m in res.memories]
    assert "fact" in kinds and "turn" in kinds
    fact = next(m for m in res.memories if (m.custom_metadata or {}).get("kind") == "fact")
    assert fact.id == facts[0].id and fact.id is not None and fact.id.startswith("f:")
    assert fact.custom_metadata is not None and fact.custom_metadata.pop("score") > 0
    assert fact.custom_metadata == {
        "kind": "fact",
        "topic": "personal_info",
        "session_id": "s1",
        "event_ids": ["e2"],
        "revision": 1,
    }
    only = RedisMemoryService(client=client, key_prefix=prefix, search_kinds="facts")
    assert {
        m.id for m in (await only.search_memory(app_name=APP, user_id="alice", query="Paris")).memories
    } == {fact.id}
    turns = RedisMemoryService(client=client, key_prefix=prefix, search_kinds="turns")
    got = (await turns.search_memory(app_name=APP, user_id="alice", query="Paris")).memories
    assert got and all((m.custom_metadata or {}).get("kind") == "turn" for m in got)
    stats = await svc.generation_stats()
    assert stats["jobs_queued"] == 1 and stats["jobs_done"] == 1 and stats["facts_created"] == 1
    assert stats["model_calls"] == 1 and stats["prompt_tokens"] > 0
    await svc.delete_memory(app_name=APP, user_id="alice", memory_id=fact.id)
    assert await facts_of(svc) == []
    assert await svc.list_revisions(app_name=APP, user_id="alice", memory_id=fact.id) == []
    await svc.close()


async def test_incremental_jobs_send_only_new_events(client: Any, prefix: str) -> None:
    model = ScriptedModel(script=[extraction(), extraction()])
    svc = service(client, prefix, model)
    first = [ev(f"e{n}", f"turn number {n}", ts=TS + n) for n in range(6)]
    await svc.add_events_to_memory(app_name=APP, user_id="alice", session_id="s", events=first)
    await svc.add_events_to_memory(
        app_name=APP,
        user_id="alice",
        session_id="s",
        events=first + [ev("e6", "turn number 6", ts=TS + 6)],
        custom_metadata={"wait_for_completion": True},
    )
    assert await svc.flush(timeout=10)
    assert len(model.requests) == 2
    second = prompt_of(model, 1)
    new_part = second.split("New events:")[1]
    assert "[e6]" in new_part and "[e5]" not in new_part
    assert "Earlier turns (context only):" in second and "[e2]" in second and "[e1]" not in second
    # nothing new: no job
    await svc.add_events_to_memory(app_name=APP, user_id="alice", session_id="s", events=first)
    assert (await svc.generation_stats())["jobs_queued"] == 2
    await svc.close()


async def seed(
    svc: RedisMemoryService, said: str, user: str = "alice", sid: str = "s1", eid: str = "a1"
) -> None:
    await svc.add_events_to_memory(
        app_name=APP,
        user_id=user,
        session_id=sid,
        events=[ev(eid, said)],
        custom_metadata={"wait_for_completion": True},
    )


async def test_contradiction_updates_with_revision_and_rollback(client: Any, prefix: str) -> None:
    model = ScriptedModel(
        script=[
            extraction(("Alice lives in Berlin.", "personal_info", ["a1"])),
            extraction(("Alice lives in Paris since May 2024.", "personal_info", ["b1"])),
            decisions(
                {
                    "new_fact": 1,
                    "action": "UPDATE",
                    "existing": 1,
                    "text": "Alice lives in Paris since May 2024.",
                }
            ),
        ]
    )
    svc = service(client, prefix, model)
    await seed(svc, "I live in Berlin")
    await seed(svc, "I moved to Paris this month", sid="s2", eid="b1")
    assert len(model.requests) == 3  # the first job had nothing to consolidate against
    shown = prompt_of(model, 2)
    (fact,) = await facts_of(svc)
    assert "1. Alice lives in Berlin. (topic: personal_info)" in shown
    assert fact.id is not None and fact.id[2:] not in shown  # the model never sees stored ids
    assert text_of(fact) == "Alice lives in Paris since May 2024."
    assert (fact.custom_metadata or {})["revision"] == 2
    revs = await svc.list_revisions(app_name=APP, user_id="alice", memory_id=fact.id)
    assert [(r["rev"], r["action"], r["text"]) for r in revs] == [
        (1, "CREATE", "Alice lives in Berlin."),
        (2, "UPDATE", "Alice lives in Paris since May 2024."),
    ]
    assert revs[1]["eids"] == ["b1"] and revs[1]["sid"] == "s2" and revs[0]["job"] != revs[1]["job"]
    await svc.rollback(app_name=APP, user_id="alice", memory_id=fact.id, revision=1)
    (back,) = await facts_of(svc)
    assert text_of(back) == "Alice lives in Berlin." and (back.custom_metadata or {})["revision"] == 3
    hits = await svc.search_memory(app_name=APP, user_id="alice", query="Berlin")
    assert fact.id in [m.id for m in hits.memories]
    with pytest.raises(ValueError):
        await svc.rollback(app_name=APP, user_id="alice", memory_id=fact.id, revision=9)
    await svc.close()


async def test_duplicate_is_none_and_retraction_deletes(client: Any, prefix: str) -> None:
    model = ScriptedModel(
        script=[
            extraction(("Alice is vegetarian.", "user_preferences", ["a1"])),
            extraction(("Alice does not eat meat.", "user_preferences", ["b1"])),
            decisions({"new_fact": 1, "action": "NONE", "existing": 1}),
            extraction(("Alice is no longer vegetarian.", "user_preferences", ["c1"])),
            decisions({"new_fact": 1, "action": "DELETE", "existing": 1}),
        ]
    )
    svc = service(client, prefix, model)
    await seed(svc, "I am vegetarian")
    await seed(svc, "I never eat meat, you know", sid="s2", eid="b1")
    (fact,) = await facts_of(svc)
    assert text_of(fact) == "Alice is vegetarian." and (fact.custom_metadata or {})["revision"] == 1
    await seed(svc, "I stopped being vegetarian", sid="s3", eid="c1")
    assert await facts_of(svc) == []
    assert fact.id is not None
    revs = await svc.list_revisions(app_name=APP, user_id="alice", memory_id=fact.id)
    assert [r["action"] for r in revs] == ["CREATE", "DELETE"]
    stats = await svc.generation_stats()
    assert (stats["facts_created"], stats.get("facts_updated", 0), stats["facts_deleted"]) == (1, 0, 1)
    # a deleted fact can be rolled back from its revisions
    await svc.rollback(app_name=APP, user_id="alice", memory_id=fact.id, revision=1)
    assert [text_of(f) for f in await facts_of(svc)] == ["Alice is vegetarian."]
    await svc.close()


@pytest.mark.parametrize(
    "bad",
    [
        decisions({"new_fact": 1, "action": "UPDATE", "existing": 7, "text": "x"}),  # not shown
        '{"decisions": [{"new_fact": 1, "action": "UPD',  # malformed JSON
        decisions({"new_fact": 1, "action": "UPDATE", "existing": 1, "text": "y" * 400}),  # oversized
    ],
    ids=["unshown-id", "malformed", "oversized"],
)
async def test_bad_answers_are_retried_then_dead_lettered(client: Any, prefix: str, bad: str) -> None:
    first = extraction(("Alice lives in Berlin.", "personal_info", ["a1"]))
    second = extraction(("Alice lives in Paris.", "personal_info", ["b1"]))
    model = ScriptedModel(script=[first] + [second, bad] * 3)
    svc = service(client, prefix, model, max_attempts=3, max_output_chars=300)
    await seed(svc, "I live in Berlin")
    await seed(svc, "I live in Paris now", sid="s2", eid="b1")
    (fact,) = await facts_of(svc)
    assert text_of(fact) == "Alice lives in Berlin."  # nothing of the failed job applied
    stats = await svc.generation_stats()
    assert stats["jobs_retried"] == 2 and stats["jobs_dead"] == 1 and stats["dead_now"] == 1
    assert stats["queued_now"] == 0
    (dead,) = await dead_jobs(svc.client, svc.keys)
    assert dead["user"] == "alice" and dead["attempts"] == 3 and dead["error"]
    # retried from the dead letters with a good answer, the job applies
    model.script += [
        second,
        decisions({"new_fact": 1, "action": "UPDATE", "existing": 1, "text": "Alice lives in Paris."}),
    ]
    assert await retry_dead(svc.client, svc.keys) == 1
    worker = svc._generation.worker if svc._generation else None
    assert worker is not None
    await worker.step(block_ms=100)
    (fact,) = await facts_of(svc)
    assert text_of(fact) == "Alice lives in Paris."
    assert (await svc.generation_stats())["dead_now"] == 0
    await svc.close()


async def test_users_never_see_each_others_facts(client: Any, prefix: str) -> None:
    model = ScriptedModel(
        script=[
            extraction(("Alice likes green tea.", "user_preferences", ["a1"])),
            extraction(("Bob likes green tea too.", "user_preferences", ["b1"])),
        ]
    )
    svc = service(client, prefix, model)
    await seed(svc, "I like green tea")
    await seed(svc, "green tea is my favourite", user="bob", eid="b1")
    # Bob's job had nothing of Bob's to consolidate with: no consolidation call showed Alice's fact
    assert len(model.requests) == 2
    assert [text_of(f) for f in await facts_of(svc, "bob")] == ["Bob likes green tea too."]
    assert [text_of(f) for f in await facts_of(svc, "alice")] == ["Alice likes green tea."]
    res = await svc.search_memory(app_name=APP, user_id="bob", query="green tea")
    assert all("Alice" not in text_of(m) for m in res.memories)
    alice_fact = (await facts_of(svc, "alice"))[0]
    assert alice_fact.id is not None
    await svc.delete_memory(app_name=APP, user_id="bob", memory_id=alice_fact.id)  # not Bob's: no effect
    assert len(await facts_of(svc, "alice")) == 1
    await svc.close()


async def test_a_job_applies_once(client: Any, prefix: str) -> None:
    model = ScriptedModel(script=[extraction(("Alice plays chess.", "personal_info", ["a1"]))] * 3)
    svc = service(client, prefix, model, generator_worker=False)
    jobs = await svc._generation.queue.enqueue_events(  # type: ignore[union-attr]
        APP,
        "alice",
        "s1",
        [JobEvent("a1", "user", "I play chess", TS)],
    )
    worker = svc._generation.worker  # type: ignore[union-attr]
    job = {
        "id": jobs[0],
        "kind": "events",
        "app": APP,
        "user": "alice",
        "sid": "s1",
        "events": [{"id": "a1", "a": "user", "t": "I play chess", "ts": TS}],
    }
    assert (await worker.run_job(job)).status == "done"
    assert (await worker.run_job(job)).status == "duplicate"  # same job id: applied once
    again = dict(job, id="another-job")  # same facts from the same events under a new job id
    assert (await worker.run_job(again)).status == "done"
    assert [text_of(f) for f in await facts_of(svc)] == ["Alice plays chess."]
    await svc.close()


async def test_explicit_memories_consolidate(client: Any, prefix: str) -> None:
    model = ScriptedModel(
        script=[
            decisions(
                {
                    "new_fact": 1,
                    "action": "UPDATE",
                    "existing": 1,
                    "text": "Alice prefers window seats on flights.",
                }
            )
        ]
    )
    topics = [Topic("travel", "How the user likes to travel.")]
    svc = service(client, prefix, model, topics=topics)
    for said in ("Alice likes window seats.", "Alice prefers window seats on flights."):
        await svc.add_memory(
            app_name=APP,
            user_id="alice",
            memories=[MemoryEntry(content=types.Content(role="user", parts=[types.Part(text=said)]))],
            custom_metadata={"consolidate": True, "wait_for_completion": True},
        )
    (fact,) = await facts_of(svc)
    assert text_of(fact) == "Alice prefers window seats on flights."
    assert (fact.custom_metadata or {})["topic"] == "travel"
    assert len(model.requests) == 1  # explicit memories skip extraction
    await svc.close()


async def test_forget_user_removes_facts_and_queued_jobs(client: Any, prefix: str) -> None:
    model = ScriptedModel(script=[extraction(("Alice plays the cello.", "personal_info", ["a1"]))])
    svc = service(client, prefix, model, generator_worker=False)
    await svc.add_events_to_memory(
        app_name=APP, user_id="alice", session_id="s1", events=[ev("a1", "I play cello")]
    )
    assert await svc.flush(timeout=10)
    (fact,) = await facts_of(svc)
    # a second job queued, then the user is forgotten before any worker runs it
    await svc.add_events_to_memory(
        app_name=APP, user_id="alice", session_id="s1", events=[ev("a2", "I play piano too", ts=TS + 9)]
    )
    await svc.add_events_to_memory(app_name=APP, user_id="bob", session_id="s9", events=[ev("b1", "hello")])
    assert (await svc.generation_stats())["queued_now"] == 2
    assert (await svc.forget_user(app_name=APP, user_id="alice")).facts == 1
    assert await facts_of(svc) == []
    assert fact.id is not None
    assert await svc.list_revisions(app_name=APP, user_id="alice", memory_id=fact.id) == []
    assert (await svc.generation_stats())["queued_now"] == 1  # Bob's job is still there
    fk = svc.keys.memory_facts(APP, "alice")
    assert not await client.exists(fk.all, fk.fingerprints, fk.cursor, fk.lock)
    await svc.close()


async def test_a_job_running_while_the_user_is_forgotten_is_discarded(client: Any, prefix: str) -> None:
    from adk_redis.memory import erase_user_facts

    model = ScriptedModel(script=[extraction(("Alice likes jazz.", "user_preferences", ["a1"]))])
    svc = service(client, prefix, model, generator_worker=False)
    await svc.add_events_to_memory(
        app_name=APP, user_id="alice", session_id="s1", events=[ev("a1", "I like jazz")]
    )
    entries = await client.xrange(svc.keys.generation_jobs())
    job = json.loads(entries[0][1][b"job"])
    counts = await erase_user_facts(client, svc.keys, APP, "alice")  # what forget_user calls
    assert counts == {"facts": 0, "revisions": 0, "jobs": 1}
    worker = svc._generation.worker  # type: ignore[union-attr]
    assert (await worker.run_job(job)).status == "discarded"  # it had been read before the erasure
    assert await facts_of(svc) == []
    await svc.close()


async def test_search_leaves_out_turns_a_higher_fact_came_from(client: Any, prefix: str) -> None:
    model = ScriptedModel(script=[extraction(("Alice adopted a beagle named Rex.", "personal_info", ["a1"]))])
    svc = service(client, prefix, model)
    await seed(svc, "we adopted a beagle, his name is Rex")
    res = await svc.search_memory(app_name=APP, user_id="alice", query="beagle Rex adopted")
    assert [(m.custom_metadata or {}).get("kind") for m in res.memories] == ["fact"]
    turns = RedisMemoryService(client=client, key_prefix=prefix, search_kinds="turns")
    got = await turns.search_memory(app_name=APP, user_id="alice", query="beagle Rex adopted")
    assert [m.id for m in got.memories] == ["h:s1:a1"]
    await svc.close()


async def test_cli_memory_jobs_and_retry(
    redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from adk_redis.admin.cli import main

    model = ScriptedModel(script=["not json"] * 2 + [extraction(("Alice swims.", "personal_info", ["a1"]))])
    client = aioredis.Redis.from_url(redis_url)
    svc = service(client, prefix, model, max_attempts=2, generator_worker=False)
    try:
        await seed(svc, "I swim every day")
        code = await asyncio.to_thread(
            main, ["memory", "jobs", "--url", redis_url, "--prefix", prefix, "--json"]
        )
        assert code == 1  # a dead job is a problem found
        doctor = ["doctor", "--url", redis_url, "--prefix", prefix, "--sample", "1", "--json"]
        capsys.readouterr()
        assert await asyncio.to_thread(main, doctor) == 1  # doctor warns about it too
        checks = {c["check"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
        assert checks["memory generation"]["status"] == "warn"
        code = await asyncio.to_thread(
            main, ["memory", "jobs", "--url", redis_url, "--prefix", prefix, "--retry"]
        )
        assert code == 0
        worker = svc._generation.worker  # type: ignore[union-attr]
        await worker.step(block_ms=100)
        assert [text_of(f) for f in await facts_of(svc)] == ["Alice swims."]
        code = await asyncio.to_thread(main, ["memory", "jobs", "--url", redis_url, "--prefix", prefix])
        assert code == 0
    finally:
        await svc.close()
        await drop_prefix(client, prefix)
        await client.aclose()


async def test_generation_spans_and_counters(client: Any, prefix: str) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from adk_redis import telemetry

    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    telemetry.instrument(tp, MeterProvider(metric_readers=[reader]))
    try:
        model = ScriptedModel(script=[extraction(("Alice runs marathons.", "personal_info", ["a1"]))])
        svc = service(client, prefix, model)
        await seed(svc, "I run marathons")
        await svc.close()
    finally:
        telemetry.instrument()
    names = {s.name for s in exporter.get_finished_spans()}
    assert {"adk_redis.memory.generation.run_job", "adk_redis.memory.generation.extract"} <= names
    data = reader.get_metrics_data()
    assert data is not None
    points = {
        (m.name, tuple(sorted(dict(p.attributes or {}).items()))): p
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        for p in m.data.data_points
    }
    assert points[("adk_redis.generation.jobs", (("adk_redis.outcome", "done"),))].value == 1, sorted(points)
    assert points[("adk_redis.generation.facts", (("adk_redis.action", "created"),))].value == 1


async def test_generator_from_the_url_and_settings(redis_url: str, prefix: str) -> None:
    from adk_redis.errors import ConfigurationError
    from adk_redis.registry import memory_factory

    sep = "&" if "?" in redis_url else "?"
    svc = memory_factory(
        f"{redis_url}{sep}key_prefix={prefix}&generator_model=gemini-2.5-flash&search_kinds=facts"
    )
    assert isinstance(svc, RedisMemoryService)
    assert svc.generator is not None and svc.generator.model.model == "gemini-2.5-flash"
    assert svc.search_kinds == "facts" and svc.keys.prefix == prefix
    await svc.close()
    with pytest.raises(ConfigurationError, match="search_kinds"):
        memory_factory(f"{redis_url}{sep}search_kinds=everything")
    plain = RedisMemoryService(redis_url, key_prefix=prefix)
    assert plain.generator is None and plain.search_kinds == "all"
    await plain.close()
    with pytest.raises(TypeError):
        MemoryGenerator(42)  # type: ignore[arg-type]


async def test_model_timeouts_are_retried_then_dead_lettered(client: Any, prefix: str) -> None:
    slow = FactReplayModel(delay=1.0)
    svc = RedisMemoryService(
        client=client,
        key_prefix=prefix,
        generator=MemoryGenerator(slow, timeout=0.05, max_attempts=2, backoff=0.0),
    )
    await seed(svc, "I like long walks")
    stats = await svc.generation_stats()
    assert stats["jobs_dead"] == 1 and stats["jobs_retried"] == 1 and slow.calls == 2
    (dead,) = await dead_jobs(client, svc.keys)
    assert "timed out" in dead["error"]
    await svc.close()


async def test_consolidation_with_an_embedder_shows_similar_facts(client: Any, prefix: str) -> None:
    model = ScriptedModel(
        script=[
            extraction(("Alice is fond of felines.", "user_preferences", ["a1"])),
            extraction(("Alice adores cats.", "user_preferences", ["b1"])),
            decisions({"new_fact": 1, "action": "NONE", "existing": 1}),
        ]
    )
    gen = MemoryGenerator(model, backoff=0.0)
    svc = RedisMemoryService(client=client, key_prefix=prefix, generator=gen, embedder=HashingEmbedder())
    await seed(svc, "felines are great")
    await seed(svc, "I adore cats", sid="s2", eid="b1")
    # "Alice" alone links them for BM25; the vectors are stored with the fact either way
    assert "1. Alice is fond of felines." in prompt_of(model, 2)
    (fact,) = await facts_of(svc)
    ik = svc.keys.user_memory_index(APP, "alice")
    has_vector = await client.hexists(ik.vectors, fact.id) or await client.exists(ik.vector_set)
    assert has_vector
    await svc.close()


async def test_concurrent_ingestion_of_one_session_queues_its_events_once(client: Any, prefix: str) -> None:
    svc = service(client, prefix, ScriptedModel(), generator_worker=False)
    events = [ev(f"e{n}", f"turn {n}", ts=TS + n) for n in range(4)]
    await asyncio.gather(
        *(
            svc.add_events_to_memory(app_name=APP, user_id="alice", session_id="s", events=events)
            for _ in range(5)
        )
    )
    queued = await client.xrange(svc.keys.generation_jobs())
    sent = [e["id"] for _, f in queued for e in json.loads(f[b"job"])["events"] if not e.get("c")]
    assert sorted(sent) == ["e0", "e1", "e2", "e3"]
    assert await client.pttl(svc.keys.memory_facts(APP, "alice").cursor) > 0
    await svc.close()


class _Concurrency(FactReplayModel):
    """Echo facts; counts how many consolidation calls run at once."""

    running: int = 0
    most: int = 0

    async def generate_content_async(self, llm_request: Any, stream: bool = False) -> Any:  # type: ignore[override]
        consolidating = getattr(llm_request.config.response_schema, "__name__", "") == "ConsolidationAnswer"
        if consolidating:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            async for r in super().generate_content_async(llm_request, stream):
                yield r
        finally:
            if consolidating:
                self.running -= 1


async def test_two_workers_never_consolidate_one_user_at_once(client: Any, prefix: str) -> None:
    from adk_redis.memory import GenerationWorker

    model = _Concurrency(delay=0.05)
    gen = MemoryGenerator(model, backoff=0.0)
    svc = RedisMemoryService(client=client, key_prefix=prefix, generator=gen, generator_worker=False)
    for n in range(6):
        await svc.add_events_to_memory(
            app_name=APP, user_id="alice", session_id=f"s{n}", events=[ev(f"e{n}", f"alice fact {n}")]
        )
    workers = [GenerationWorker(client=client, keys=svc.keys, generator=gen) for _ in range(2)]
    await asyncio.gather(*(w.run(block_ms=50, idle_exit=0.5) for w in workers))
    assert all(w.processed for w in workers)  # both took jobs
    assert model.most == 1  # but consolidated Alice one job at a time
    assert sorted(text_of(f) for f in await facts_of(svc)) == [f"user said: alice fact {n}" for n in range(6)]
    await svc.close()


def test_prompts_carry_topics_and_examples() -> None:
    gen = MemoryGenerator(
        ScriptedModel(),
        topics=[Topic("pets", "The user's animals.")],
        examples=[("[x] user: my dog Rex is 3", [{"text": "Alice has a dog named Rex.", "topic": "pets"}])],
    )
    system, prompt = gen.extraction_prompt(
        [JobEvent("c1", "user", "hello", TS, context=True), JobEvent("e1", "user", "my cat Tom", TS + 60)]
    )
    assert "- pets: The user's animals." in system and "Alice has a dog named Rex." in system
    assert "Earlier turns (context only):\n[c1]" in prompt and prompt.endswith("user: my cat Tom")


async def test_export_import_keeps_facts(redis_url: str, prefix: str, tmp_path: Any) -> None:
    from adk_redis.admin.cli import main

    client = aioredis.Redis.from_url(redis_url)
    svc = service(
        client, prefix, ScriptedModel(script=[extraction(("Alice sings.", "personal_info", ["a1"]))])
    )
    other = RedisMemoryService(client=client, key_prefix=prefix + "b")
    try:
        await seed(svc, "I sing in a choir")
        dump = str(tmp_path / "export.jsonl")
        assert (
            await asyncio.to_thread(main, ["export", "--url", redis_url, "--prefix", prefix, "-o", dump]) == 0
        )
        assert (
            await asyncio.to_thread(
                main, ["import", "--url", redis_url, "--prefix", prefix + "b", "-i", dump]
            )
            == 0
        )
        (fact,) = await other.list_facts(app_name=APP, user_id="alice")
        assert text_of(fact) == "Alice sings."
        found = await other.search_memory(app_name=APP, user_id="alice", query="sings")
        assert fact.id in [m.id for m in found.memories]
    finally:
        await svc.close()
        await drop_prefix(client, prefix)
        await drop_prefix(client, prefix + "b")
        await client.aclose()


def test_a_fact_and_its_source_turn_raise_each_other() -> None:
    from adk_redis.memory._facts import SOURCE_BOOST, boost_sources
    from adk_redis.memory._search import Hit

    fact = Hit(1, "f:x", 1.0, json.dumps({"sid": "s1", "eids": ["a1"]}))
    hits = [Hit(1, "h:s1:b1", 2.2, "{}"), Hit(1, "h:s1:a1", 2.0, "{}"), fact, Hit(2, "k:1", 0.5, "{}")]
    got = boost_sources(hits)
    assert [h.doc_id for h in got] == ["h:s1:a1", "h:s1:b1", "f:x", "k:1"]
    assert [h.score for h in got] == [2.0 + SOURCE_BOOST * 1.0, 2.2, 1.0 + SOURCE_BOOST * 2.0, 0.5]
    assert boost_sources(hits[:2]) == hits[:2]  # no fact: unchanged


async def test_turns_kept_beyond_the_first_hits_come_back_whole(client: Any, prefix: str) -> None:
    # facts+turns: the script returns JSON and context for the first 1.5 x limit hits of its pool only;
    # a lower turn kept once the covered ones are left out is read afterwards, context included
    fact = ("Alice drinks tea, tea and tea.", "preferences", ["a1", "a2", "a3"])
    model = ScriptedModel(script=[extraction(fact)])
    svc = service(client, prefix, model, search_limit=2)
    events = [
        ev("a1", "tea please"),
        ev("a2", "more tea please"),
        ev("a3", "green tea please, hot"),
        ev("a4", "Sure.", author="assistant"),
        ev("a5", "we talked about tea at the market stall near the old harbour last week"),
        ev("a6", "Noted, the harbour market.", author="assistant"),
    ]
    await svc.add_events_to_memory(
        app_name=APP,
        user_id="alice",
        session_id="s1",
        events=events,
        custom_metadata={"wait_for_completion": True},
    )
    ik = svc.keys.user_memory_index(APP, "alice")
    pool = await svc.index.search([(ik, "")], ["tea"], 6, context=3)
    ranks = [h.doc_id for h in pool]
    assert ranks[0].startswith("f:") and ranks.index("h:s1:a5") >= 3  # a5 beyond the first 3
    assert pool[ranks.index("h:s1:a5")].payload == "" and pool[ranks.index("h:s1:a5")].context == ""
    res = await svc.search_memory(app_name=APP, user_id="alice", query="tea")
    assert [m.id for m in res.memories] == [ranks[0], "h:s1:a5"]
    a5 = res.memories[1]
    turns = RedisMemoryService(client=client, key_prefix=prefix, search_kinds="turns")
    alone = (await turns.search_memory(app_name=APP, user_id="alice", query="harbour stall")).memories[0]
    assert alone.id == "h:s1:a5" and a5.content == alone.content
    assert a5.custom_metadata is not None and alone.custom_metadata is not None
    assert a5.custom_metadata["context"] == alone.custom_metadata["context"]
    assert [c["id"] for c in a5.custom_metadata["context"]] == ["h:s1:a4", "h:s1:a6"]
    await svc.close()
