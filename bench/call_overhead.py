"""Per-call cost of the service's client: sequential GETs through ``RedisSessionService.client`` and
``append_event`` calls, median of several rounds (docs/benchmarks.md, "Call overhead of typed errors").

Run against a throw-away server, once per checkout to compare (the figures of one run only compare with
the same run's):

    redis-server --port 6390 --save "" &
    PYTHONPATH=/path/to/checkout .venv/bin/python bench/call_overhead.py redis://127.0.0.1:6390

Prints ``<GET µs/call> <append µs/call>``.  Keys live under a unique prefix (left on the throw-away server).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time

from google.adk.events.event import Event
from google.genai import types

from adk_redis import RedisSessionService, load_settings


async def main(url: str, rounds: int = 5, n: int = 2000) -> None:
    svc = RedisSessionService(settings=load_settings(redis_url=url, redis_key_prefix=f"lat{os.getpid()}"))
    session = await svc.create_session(app_name="a", user_id="u")
    gets, appends = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            await svc.client.get("x")
        gets.append((time.perf_counter() - start) / n * 1e6)
        start = time.perf_counter()
        for _ in range(n // 4):
            content = types.Content(role="user", parts=[types.Part(text="hi")])
            await svc.append_event(session, Event(author="user", invocation_id="i", content=content))
        appends.append((time.perf_counter() - start) / (n // 4) * 1e6)
    print(f"{statistics.median(gets):.1f} {statistics.median(appends):.1f}")
    await svc.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0"))
