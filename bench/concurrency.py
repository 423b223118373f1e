"""Concurrent writers on one session: adk_redis (reject, merge) vs ADK's services.

Run: ``.venv/bin/python bench/concurrency.py [--url redis://127.0.0.1:6379/0] [--json]``
(``bench/sessions.py`` runs it too, after the latency table).

Scenario (issue 9): 20 asyncio tasks each load their own copy of one session and
append 50 events through it, each event writing a state key no other task writes
(disjoint deltas).  No task reloads or retries: a rejected append counts as
rejected.  Reported per service: stored (events in the session afterwards),
acknowledged (appends that returned), rejected (appends that raised), silently
lost (acknowledged but not stored, or state keys missing), wall time.

Merge-path latency (adk_redis only): p50 of an append through an up-to-date
object under ``reject`` and under ``merge``, and under ``merge`` through an object
10 events behind (the 10 other events are written, untimed, before each sample).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import gc
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import BaseSessionService
from google.genai import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sessions import Samples, drop_prefix, log, measure, open_service  # noqa: E402

from adk_redis import RedisSessionService  # noqa: E402

TASKS, APPENDS = 20, 50
APP = "bench-conc"
KINDS: dict[str, str] = {
    "ours_reject": "adk_redis (reject)",
    "ours_merge": "adk_redis (merge)",
    "memory": "ADK InMemory",
    "sqlite": "ADK Sqlite",
    "database": "ADK Database (aiosqlite)",
    "adk_redis": "ADK Redis",
}


def event(text: str, delta: dict[str, Any]) -> Event:
    return Event(
        author="user",
        invocation_id="inv",
        content=types.Content(role="user", parts=[types.Part(text=text)]),
        actions=EventActions(state_delta=delta),
    )


@asynccontextmanager
async def open_kind(kind: str, url: str, run_id: str, tmp: str) -> AsyncIterator[BaseSessionService]:
    if kind.startswith("ours_"):
        prefix = f"bench-{run_id}-{kind}"
        svc = RedisSessionService(url, key_prefix=prefix, stale_policy=kind[5:])  # type: ignore[arg-type]
        try:
            yield svc
        finally:
            await drop_prefix(svc.client, f"{prefix}:*")
            await svc.close()
    else:  # ADK's services, built exactly as the latency benchmark builds them
        async with open_service(kind, url, run_id, tmp) as svc_:
            yield svc_


async def scenario(svc: BaseSessionService, deadline: float) -> dict[str, Any]:
    s = await svc.create_session(app_name=APP, user_id="u")
    acked: list[str] = []
    rejected = 0
    start = asyncio.Event()
    t0 = time.perf_counter()

    async def task(t: int) -> None:
        nonlocal rejected
        mine = await svc.get_session(app_name=APP, user_id="u", session_id=s.id)
        assert mine is not None
        await start.wait()
        for j in range(APPENDS):
            if time.perf_counter() - t0 > deadline:  # a livelocked service: stop at the deadline
                return
            e = event(f"t{t}-{j}", {f"t{t}": j})
            try:
                await svc.append_event(mine, e)
                acked.append(e.id)
            except Exception:  # noqa: BLE001 - every refusal counts
                rejected += 1
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(task(t)) for t in range(TASKS)]
    await asyncio.sleep(0.05)
    t0 = time.perf_counter()
    start.set()
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    final = await svc.get_session(app_name=APP, user_id="u", session_id=s.id)
    assert final is not None
    stored_ids = {e.id for e in final.events}
    lost_events = len(set(acked) - stored_ids)
    # every state key must hold the value of the last stored event that wrote it
    lost_state = 0
    last: dict[str, int] = {}
    for ev_ in final.events:
        for k, v in (ev_.actions.state_delta or {}).items():
            last[k] = v
    for k, v in last.items():
        if final.state.get(k) != v:
            lost_state += 1
    return {
        "stored": len(final.events),
        "acknowledged": len(acked),
        "rejected": rejected,
        "silently_lost": lost_events,
        "state_keys_wrong": lost_state,
        "wall_s": round(wall, 3),
        "stopped_at_deadline": len(acked) + rejected < TASKS * APPENDS,
    }


async def merge_latency(svc: RedisSessionService, iterations: int) -> dict[str, float]:
    """p50 (µs) of up-to-date appends under both policies and of a merge 10 events behind."""
    out: dict[str, Samples] = {
        "reject_fresh": Samples(),
        "merge_fresh": Samples(),
        "merge_10_missed": Samples(),
    }
    fresh_r = await svc.create_session(app_name=APP, user_id="lat")
    fresh_m = await svc.create_session(app_name=APP, user_id="lat")
    behind = await svc.create_session(app_name=APP, user_id="lat")
    other = copy.deepcopy(behind)
    for i in range(10):  # warm-up
        await svc.append_event(fresh_r, event("w", {"r": i}), stale_policy="reject")
        await svc.append_event(fresh_m, event("w", {"m": i}), stale_policy="merge")
    gc.collect()
    for i in range(iterations):
        await measure(
            out["reject_fresh"], svc.append_event(fresh_r, event("x", {"r": i}), stale_policy="reject")
        )
        await measure(
            out["merge_fresh"], svc.append_event(fresh_m, event("x", {"m": i}), stale_policy="merge")
        )
        for k in range(10):
            await svc.append_event(other, event("o", {"o": k}), stale_policy="merge")
        await measure(
            out["merge_10_missed"], svc.append_event(behind, event("b", {"b": i}), stale_policy="merge")
        )
    return {k: v.summary()["p50_us"] for k, v in out.items()}


async def run(url: str, kinds: list[str], iterations: int, deadline: float) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:8]
    report: dict[str, Any] = {"tasks": TASKS, "appends": APPENDS, "services": {}}
    with tempfile.TemporaryDirectory(prefix="adk-redis-conc-") as tmp:
        for kind in kinds:
            log(f"concurrency: {KINDS[kind]} ...")
            async with open_kind(kind, url, run_id, tmp) as svc:
                report["services"][kind] = await scenario(svc, deadline)
                if kind == "ours_merge":
                    assert isinstance(svc, RedisSessionService)
                    report["merge_latency_p50_us"] = await merge_latency(svc, iterations)
    lat = report.get("merge_latency_p50_us")
    if lat:
        report["verdicts"] = [
            {
                "target": "merge: stored/acknowledged/rejected/lost = 1000/1000/0/0",
                "ok": [
                    report["services"]["ours_merge"][k]
                    for k in ("stored", "acknowledged", "rejected", "silently_lost")
                ]
                == [1000, 1000, 0, 0],
            },
            {
                "target": "merge append (none missed) p50 <= 1.1x reject's",
                "value": round(lat["merge_fresh"] / lat["reject_fresh"], 2),
                "limit": 1.1,
            },
            {
                "target": "merge append (10 missed) p50 <= 2x reject's",
                "value": round(lat["merge_10_missed"] / lat["reject_fresh"], 2),
                "limit": 2.0,
            },
        ]
        for v in report["verdicts"][1:]:
            v["ok"] = v["value"] <= v["limit"]
    return report


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"| {report['tasks']} tasks x {report['appends']} appends, disjoint keys | stored | acknowledged "
        "| rejected | silently lost | wall time |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for kind, r in report["services"].items():
        lost = r["silently_lost"] + r["state_keys_wrong"]
        lines.append(
            f"| {KINDS[kind]} | {r['stored']:,} | {r['acknowledged']:,} | {r['rejected']:,} | {lost:,} "
            f"| {r['wall_s']:.2f} s{' (stopped)' if r['stopped_at_deadline'] else ''} |"
        )
    lat = report.get("merge_latency_p50_us")
    if lat:
        lines.append("")
        r, m, m10 = lat["reject_fresh"], lat["merge_fresh"], lat["merge_10_missed"]
        lines.append(
            f"append p50: reject {r:.0f} µs; merge, none missed {m:.0f} µs ({m / r:.2f}×); "
            f"merge, 10 missed {m10:.0f} µs ({m10 / r:.2f}×)"
        )
    for v in report.get("verdicts", []):
        val = f": {v['value']} (limit {v['limit']})" if "value" in v else ""
        lines.append(f"- [{'PASS' if v['ok'] else 'MISS'}] {v['target']}{val}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--services", default=",".join(KINDS), help=f"subset of {','.join(KINDS)}")
    parser.add_argument("--iterations", type=int, default=300, help="samples of each merge-latency case")
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds before a service is stopped")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    kinds = [k.strip() for k in args.services.split(",") if k.strip()]
    report = asyncio.run(run(args.url, kinds, args.iterations, args.deadline))
    if args.json:
        log(markdown(report))
        print(json.dumps(report, indent=2))
    else:
        print(markdown(report))


if __name__ == "__main__":
    main()
