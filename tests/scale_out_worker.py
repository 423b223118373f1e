"""One OS process of the scale-out test: an ADK Runner taking turns on a shared Redis session.

Usage: python -m tests.scale_out_worker <redis url> <prefix> <session id> <worker index> <turns>
Prints one JSON line: {"worker": i, "stale_retries": n}.
"""

from __future__ import annotations

import asyncio
import json
import sys

from google.adk.errors import StaleSessionError
from google.adk.events.event import Event
from google.adk.runners import Runner
from google.genai import types

from adk_redis import RedisSessionService

from .agents import make_agent, run_turn

APP, USER = "memo_app", "alice"


async def main(url: str, prefix: str, sid: str, me: int, turns: int) -> None:
    svc = RedisSessionService(url, key_prefix=prefix)
    runner = Runner(app_name=APP, agent=make_agent(), session_service=svc)
    token = f"{prefix}:test:turn"
    cached = await svc.get_session(app_name=APP, user_id=USER, session_id=sid)
    assert cached is not None
    stale = 0
    for turn in range(turns):
        while int(await svc.client.get(token) or 0) % 2 != me:  # strict alternation
            await asyncio.sleep(0.005)
        # A note appended on the session object this process loaded earlier: stale once the other
        # process has written -> StaleSessionError -> re-read and retry.
        note = Event(
            author=f"worker{me}",
            invocation_id=f"note-{me}-{turn}",
            content=types.Content(role="model", parts=[types.Part(text=f"note {me}.{turn}")]),
        )
        while True:
            try:
                await svc.append_event(cached, note)
                break
            except StaleSessionError:
                stale += 1
                fresh = await svc.get_session(app_name=APP, user_id=USER, session_id=sid)
                assert fresh is not None
                cached = fresh
        await run_turn(runner, USER, sid, f"fact {me}.{turn}")
        await svc.client.incr(token)
    await svc.close()
    print(json.dumps({"worker": me, "stale_retries": stale}), flush=True)


if __name__ == "__main__":
    url, prefix, sid, me, turns = sys.argv[1:6]
    asyncio.run(main(url, prefix, sid, int(me), int(turns)))
