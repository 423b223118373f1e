"""samples/memory_bank_agent end to end through ADK's Runner: our session and memory services, the
offline agent model and the offline generator model (facts learned, corrected, preloaded)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import fakeredis
import pytest

from adk_redis import RedisSessionService
from adk_redis.memory import RedisMemoryService
from adk_redis.testing import ScriptedModel
from tests.memory_helpers import drop_prefix

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
os.environ["ADK_REDIS_LOCAL_MODEL"] = "1"
if str(SAMPLES) not in sys.path:
    sys.path.insert(0, str(SAMPLES))

from memory_bank_agent import main as sample  # noqa: E402
from memory_bank_agent.agent import make_generator, root_agent  # noqa: E402


@pytest.mark.parametrize("kind", ["redis", "fakeredis"])
async def test_memory_bank_sample_learns_corrects_preloads(kind: str, redis_url: str, prefix: str) -> None:
    client: Any = fakeredis.FakeAsyncRedis() if kind == "fakeredis" else None
    kw: dict[str, Any] = {"client": client} if client is not None else {}
    url = None if client is not None else redis_url
    sessions = RedisSessionService(url, key_prefix=prefix, **kw)
    memory = RedisMemoryService(
        url, key_prefix=prefix, generator=make_generator(), search_kinds="facts", **kw
    )
    agent_model = root_agent.model
    assert isinstance(agent_model, ScriptedModel)
    try:
        seen = len(agent_model.requests)
        snapshots = await sample.run(sessions, memory, log=lambda *_: None)
        assert snapshots[0].splitlines() == [
            "personal_info: Ann lives in Berlin. (revision 1)",
            "user_preferences: Ann is vegetarian. (revision 1)",
        ]
        assert snapshots[1].splitlines() == [
            "personal_info: Ann lives in Paris. (revision 2)",
            "user_preferences: Ann is vegetarian. (revision 1)",
        ]
        assert snapshots[2] == snapshots[1]
        # session 3's prompt was preloaded with the current fact, not the corrected one
        third = agent_model.requests[seen:][-1]
        prompt = str(third.config.system_instruction) + " ".join(
            p.text or "" for c in third.contents for p in c.parts or []
        )
        assert "Ann lives in Paris." in prompt and "Berlin" not in prompt
        facts = await memory.list_facts(app_name=sample.APP, user_id=sample.USER)
        paris = next(f for f in facts if "Paris" in (f.content.parts[0].text or ""))  # type: ignore[union-attr]
        assert paris.id is not None
        revs = await memory.list_revisions(app_name=sample.APP, user_id=sample.USER, memory_id=paris.id)
        assert [(r["action"], r["text"]) for r in revs] == [
            ("CREATE", "Ann lives in Berlin."),
            ("UPDATE", "Ann lives in Paris."),
        ]
        stats = await memory.generation_stats()
        assert stats.get("jobs_dead", 0) == 0
        assert stats["jobs_done"] == stats["jobs_queued"] == 3
    finally:
        if client is None:
            await drop_prefix(memory.client, prefix)
        await memory.close()
        await sessions.close()
