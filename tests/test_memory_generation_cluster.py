"""Memory generation on a Redis Cluster: jobs, consolidation and search across slots."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from google.adk.events.event import Event
from google.genai import types

from adk_redis.memory import MemoryGenerator, RedisMemoryService
from adk_redis.testing import FactReplayModel

from .servers import RedisServer, redis_cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[RedisServer]]:
    with redis_cluster(3) as nodes:
        yield nodes


def ev(eid: str, said: str) -> Event:
    return Event(
        id=eid,
        author="user",
        invocation_id=eid,
        timestamp=1_700_000_000.0,
        content=types.Content(role="user", parts=[types.Part(text=said)]),
    )


async def test_generation_on_a_cluster(cluster: list[RedisServer]) -> None:
    model = FactReplayModel(
        echo=False,
        match={
            "berlin": [("Ann lives in Berlin.", "personal_info")],
            "paris": [("Ann lives in Paris.", "personal_info")],
        },
        decide={"Ann lives in Paris.": ("UPDATE", "Ann lives in Berlin.")},
    )
    svc = RedisMemoryService(
        f"redis+cluster://127.0.0.1:{cluster[0].port}",
        key_prefix=f"c{uuid.uuid4().hex[:8]}",
        generator=MemoryGenerator(model, backoff=0.0),
    )
    try:
        for n, (user, said) in enumerate(
            [("ann", "I live in Berlin"), ("ann", "moved to Paris"), ("bob", "Berlin!")]
        ):
            await svc.add_events_to_memory(
                app_name="app",
                user_id=user,
                session_id=f"s{n}",
                events=[ev(f"e{n}", said)],
                custom_metadata={"wait_for_completion": True},
            )
        (fact,) = await svc.list_facts(app_name="app", user_id="ann")
        assert fact.content is not None and fact.content.parts
        assert fact.content.parts[0].text == "Ann lives in Paris." and fact.id is not None
        revs = await svc.list_revisions(app_name="app", user_id="ann", memory_id=fact.id)
        assert [r["action"] for r in revs] == ["CREATE", "UPDATE"]
        found = await svc.search_memory(app_name="app", user_id="ann", query="where does Ann live Paris")
        assert fact.id in [m.id for m in found.memories]
        assert len(await svc.list_facts(app_name="app", user_id="bob")) == 1
        stats = await svc.generation_stats()
        assert stats["jobs_done"] == 3 and stats["dead_now"] == 0
        await svc.forget_user(app_name="app", user_id="ann")
        assert await svc.list_facts(app_name="app", user_id="ann") == []
        assert json.dumps(stats)
    finally:
        await svc.close()
