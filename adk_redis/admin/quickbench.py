"""A quick latency check against the configured server (``adk-redis bench``).

A short version of ``bench/sessions.py``: p50/p99 of append_event and
get_session against the bare round trip (EVALSHA of ``return 1``), measured
interleaved so that both see the same server and network conditions.  The
data lives under a throw-away app name and is deleted afterwards.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types

from ..sessions._service import RedisSessionService

_TEXT = (
    "I'm sorry about the double charge. I've opened a refund for the duplicate payment; "
    "it usually reaches your card within 5-7 business days."
)


def _event(i: int) -> Event:
    user = i % 2 == 0
    return Event(
        invocation_id=f"inv-{i // 2}",
        author="user" if user else "support_agent",
        content=types.Content(role="user" if user else "model", parts=[types.Part(text=_TEXT)]),
        actions=EventActions(state_delta={} if user else {"turn": i, "last_intent": "refund"}),
    )


def _pct(ns: list[int], q: float) -> float:
    s = sorted(ns)
    return round(s[max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))] / 1000, 1)


def _summary(ns: list[int]) -> dict[str, float]:
    return {"n": len(ns), "p50_us": _pct(ns, 0.5), "p99_us": _pct(ns, 0.99)}


async def quick_bench(svc: RedisSessionService, iterations: int = 200, history: int = 100) -> dict[str, Any]:
    """Measure round trip, append_event and get_session(num_recent_events=10) latency (microseconds).

    ``history`` events are appended first so get_session reads a realistic session.
    """
    if iterations < 1:
        raise ValueError("iterations must be positive")
    app = f"adk-redis-bench-{uuid.uuid4().hex[:8]}"
    ping = svc.client.register_script("return 1")
    rtt: list[int] = []
    append: list[int] = []
    get: list[int] = []
    recent = GetSessionConfig(num_recent_events=10)
    session = await svc.create_session(app_name=app, user_id="bench")
    try:
        for _ in range(5):  # warm-up: connections, script cache
            await ping()
        for i in range(history):
            await svc.append_event(session, _event(i))
        await svc.get_session(app_name=app, user_id="bench", session_id=session.id, config=recent)
        for i in range(iterations):
            t0 = time.perf_counter_ns()
            await ping()
            t1 = time.perf_counter_ns()
            await svc.append_event(session, _event(history + i))
            t2 = time.perf_counter_ns()
            await svc.get_session(app_name=app, user_id="bench", session_id=session.id, config=recent)
            t3 = time.perf_counter_ns()
            rtt.append(t1 - t0)
            append.append(t2 - t1)
            get.append(t3 - t2)
    finally:
        await svc.delete_session(app_name=app, user_id="bench", session_id=session.id)
    base = _pct(rtt, 0.5) or 1.0
    return {
        "round_trip": _summary(rtt),
        "append_event": _summary(append),
        "get_session_recent10": _summary(get),
        "append_vs_round_trip": round(_pct(append, 0.5) / base, 2),
        "get_vs_round_trip": round(_pct(get, 0.5) / base, 2),
        "events_in_session": history + iterations,
    }
