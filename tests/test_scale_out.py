"""Scale-out: two OS processes run ADK Runners on the same Redis session, taking turns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from adk_redis import RedisSessionService

from .scale_out_worker import APP, USER

ROOT = Path(__file__).resolve().parent.parent
TURNS = 6
WORKER = "tests.scale_out_worker"


async def test_two_processes_share_a_session(redis_url: str, prefix: str, real_client: Any) -> None:
    svc = RedisSessionService(redis_url, key_prefix=prefix)
    session = await svc.create_session(app_name=APP, user_id=USER, state={"turns": 0})
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", WORKER, redis_url, prefix, session.id, str(i), str(TURNS)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (0, 1)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))

    got = await svc.get_session(app_name=APP, user_id=USER, session_id=session.id)
    assert got is not None
    order = [f"{turn % 2}.{turn // 2}" for turn in range(2 * TURNS)]
    # every turn: the worker's note, then the runner's user message, tool call, tool response, answer
    kinds = [
        "call" if e.get_function_calls() else "resp" if e.get_function_responses() else e.author
        for e in got.events
    ]
    expected_kinds: list[str] = []
    for who in order:
        expected_kinds += [f"worker{who[0]}", "user", "call", "resp", "memo"]
    assert kinds == expected_kinds
    notes = [e.content.parts[0].text for e in got.events if e.author.startswith("worker") and e.content]
    assert notes == [f"note {who}" for who in order]
    assert got.state["turns"] == 2 * TURNS
    assert got.state["user:facts"] == [f"fact {who}" for who in order]
    assert len({e.id for e in got.events}) == len(got.events)
    # each worker found its cached session stale after every turn of the other one, and recovered
    stale = {r["worker"]: r["stale_retries"] for r in results}
    assert stale[0] >= TURNS - 1 and stale[1] >= TURNS - 1
    await svc.close()
