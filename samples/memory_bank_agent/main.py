"""Three sessions with the memory-bank agent: learn, correct, recall.

    REDIS_URL=redis://localhost:6379 python samples/memory_bank_agent/main.py

Session 1 the user says where they live and what they eat; session 2 they moved (the fact is
updated, with a revision); session 3 the agent's prompt is preloaded with the current facts.
Offline by default; with ``GOOGLE_API_KEY`` the agent and the generator use Gemini.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from google.adk.runners import Runner  # noqa: E402
from google.genai import types  # noqa: E402

from adk_redis import RedisSessionService  # noqa: E402
from adk_redis.memory import RedisMemoryService  # noqa: E402
from memory_bank_agent.agent import make_generator, root_agent  # noqa: E402

APP, USER = "memory_bank_agent", "ann"
SAYS = (
    "Hi, I'm Ann. I live in Berlin and I am vegetarian.",
    "Big news: I moved to Paris last week!",
    "Can you suggest a dinner place near where I live?",
)


async def say(runner: Runner, session_id: str, text: str) -> str:
    out = ""
    async for event in runner.run_async(
        user_id=USER,
        session_id=session_id,
        new_message=types.Content(role="user", parts=[types.Part(text=text)]),
    ):
        if event.content and event.content.parts and event.author != "user":
            out = "".join(p.text or "" for p in event.content.parts) or out
    return out


async def run(sessions: RedisSessionService, memory: RedisMemoryService, log: Any = print) -> list[str]:
    """The three sessions; returns the facts after each one (one line per fact)."""
    runner = Runner(app_name=APP, agent=root_agent, session_service=sessions, memory_service=memory)
    snapshots: list[str] = []
    for n, text in enumerate(SAYS, 1):
        session = await sessions.create_session(app_name=APP, user_id=USER)
        log(f"session {n} user: {text}")
        log(f"session {n} agent: {await say(runner, session.id, text)}")
        await memory.flush(timeout=60)
        facts = await memory.list_facts(app_name=APP, user_id=USER)
        lines = sorted(
            f"{(f.custom_metadata or {}).get('topic')}: {f.content.parts[0].text} "
            f"(revision {(f.custom_metadata or {}).get('revision')})"
            for f in facts
            if f.content and f.content.parts
        )
        snapshots.append("\n".join(lines))
        log(f"facts after session {n}:\n  " + "\n  ".join(lines))
    return snapshots


async def main() -> None:
    url = os.environ.get("REDIS_URL", "redis://localhost:6379")
    prefix = f"membank{uuid.uuid4().hex[:6]}"
    sessions = RedisSessionService(url, key_prefix=prefix)
    memory = RedisMemoryService(url, key_prefix=prefix, generator=make_generator(), search_kinds="facts")
    try:
        await run(sessions, memory)
    finally:
        keys = [k async for k in memory.client.scan_iter(match=f"{prefix}:*")]  # demo cleanup
        if keys:
            await memory.client.delete(*keys)
        await memory.close()
        await sessions.close()


if __name__ == "__main__":
    asyncio.run(main())
