"""Paginated listings benchmark: a page of 100 at 1,000 / 10,000 / 100,000 sessions of one user, and
``list_sessions`` of 200 sessions against ADK's SqliteSessionService and InMemorySessionService.

Run: ``.venv/bin/python bench/pages.py [--url redis://127.0.0.1:6379/0] [--sizes 1000,10000,100000]
[--runs 300] [--json]``

Everything is measured in one process and one run (the machine may be shared and noisy: compare only
figures of the same run); p50 = median of many calls.  Page reads are timed at random positions of a
traversal (cursors collected by walking it once).  The floor is a bare redis-py round trip (EVALSHA of
``return 1``).  Keys live under a unique prefix and are deleted by SCAN at the end (bench only).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from google.adk.sessions.in_memory_session_service import InMemorySessionService
from google.adk.sessions.session import Session
from google.adk.sessions.sqlite_session_service import SqliteSessionService

from adk_redis import RedisSessionService

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sessions import drop_prefix, log  # noqa: E402 - bench/sessions.py: the same cleanup and logging

APP = "bench-pages"
PAGE = 100
LIST_SIZE = 200
STATE = {"topic": "billing", "turn": 0}


async def p50_us(call: Callable[[], Awaitable[Any]], runs: int) -> float:
    for _ in range(min(20, runs)):
        await call()
    gc.collect()
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1e6


async def build(svc: RedisSessionService, user: str, n: int, concurrency: int = 64) -> float:
    """``n`` sessions of one user through restore_session (the whole-session writer), concurrently."""
    t0 = time.perf_counter()
    sem = asyncio.Semaphore(concurrency)
    base = time.time() - n

    async def one(i: int) -> None:
        async with sem:
            s = Session(
                id=f"s{i:06d}", app_name=APP, user_id=user, state=dict(STATE), last_update_time=base + i
            )
            await svc.restore_session(s, created=base + i)

    for start in range(0, n, 5000):
        await asyncio.gather(*(one(i) for i in range(start, min(n, start + 5000))))
    return time.perf_counter() - t0


async def cursors(svc: RedisSessionService, user: str) -> list[str | None]:
    """The cursor of every page of the user's traversal (None = the first page)."""
    out: list[str | None] = [None]
    cursor = None
    while True:
        page = await svc.list_sessions_page(app_name=APP, user_id=user, limit=PAGE, cursor=cursor)
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor
        out.append(cursor)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"bench-pages-{uuid.uuid4().hex[:8]}"
    svc = RedisSessionService(args.url, key_prefix=prefix)
    floor_script = svc.client.register_script("return 1")
    report: dict[str, Any] = {"pages": {}, "list": {}}
    rng = random.Random(1)
    tmp = tempfile.mkdtemp()
    sqlite = SqliteSessionService(os.path.join(tmp, "pages.db"))
    memory = InMemorySessionService()
    try:
        report["floor_us"] = await p50_us(lambda: floor_script(), args.runs)
        marks: dict[int, list[str | None]] = {}
        for n in args.sizes:
            built = await build(svc, f"u{n}", n)
            log(f"built {n:,} sessions in {built:.1f} s")
            marks[n] = await cursors(svc, f"u{n}")
            report["pages"][n] = {"build_s": round(built, 1)}
        # interleaved: every round reads one page of each size (random positions, random size order)
        # and one bare round trip, so drift on a shared machine hits every column alike
        created: dict[int, list[float]] = {n: [] for n in args.sizes}
        updated: dict[int, list[float]] = {n: [] for n in args.sizes}
        floor: list[float] = []
        for r in range(args.runs + 20):
            order = list(args.sizes)
            rng.shuffle(order)
            for n in order:
                t = time.perf_counter()
                got = await svc.list_sessions_page(
                    app_name=APP, user_id=f"u{n}", limit=PAGE, cursor=rng.choice(marks[n])
                )
                dt = time.perf_counter() - t
                assert len(got.sessions) == PAGE
                t = time.perf_counter()
                await svc.list_sessions_page(app_name=APP, user_id=f"u{n}", limit=PAGE, order="updated")
                if r >= 20:  # warm-up rounds are not counted
                    updated[n].append(time.perf_counter() - t)
                    created[n].append(dt)
            t = time.perf_counter()
            await floor_script()
            if r >= 20:
                floor.append(time.perf_counter() - t)
        for n in args.sizes:
            report["pages"][n].update(
                created_p50_us=statistics.median(created[n]) * 1e6,
                updated_first_p50_us=statistics.median(updated[n]) * 1e6,
                floor_us=statistics.median(floor) * 1e6,
            )
            log(f"  page of {PAGE} at {n:,}: {report['pages'][n]}")
        for service in (svc, sqlite, memory):
            for _ in range(LIST_SIZE):
                await service.create_session(app_name=APP, user_id="lister", state=dict(STATE))
        services: dict[str, Any] = {"adk_redis": svc, "sqlite": sqlite, "memory": memory}
        samples: dict[str, list[float]] = {k: [] for k in services}
        for service in services.values():
            for _ in range(10):
                await service.list_sessions(app_name=APP, user_id="lister")
        for _ in range(args.runs):  # interleaved: one call of each per round
            for name, service in services.items():
                t = time.perf_counter()
                listed = await service.list_sessions(app_name=APP, user_id="lister")
                samples[name].append(time.perf_counter() - t)
                assert len(listed.sessions) == LIST_SIZE
        report["list"] = {k: statistics.median(v) * 1e6 for k, v in samples.items()}
    finally:
        log(f"cleanup: {await drop_prefix(svc.client, f'{prefix}:*')} keys")
        await sqlite.close()
        await svc.close()
    return report


def fmt(us: float) -> str:
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


def markdown(report: dict[str, Any]) -> str:
    sizes = sorted(report["pages"])
    lines = [
        f"| sessions of the user | page of {PAGE}, order created (p50) | first page, order updated (p50) "
        "| ÷ bare round trip | build |",
        "|--:|--:|--:|--:|--:|",
    ]
    for n in sizes:
        r = report["pages"][n]
        lines.append(
            f"| {n:,} | {fmt(r['created_p50_us'])} | {fmt(r['updated_first_p50_us'])} "
            f"| {r['created_p50_us'] / r['floor_us']:.1f}× | {r['build_s']} s |"
        )
    lst = report["list"]
    lines += [
        "",
        f"| list_sessions, user with {LIST_SIZE} sessions (p50) | adk_redis | ADK Sqlite | ADK InMemory |",
        "|---|--:|--:|--:|",
        f"| p50 | {fmt(lst['adk_redis'])} | {fmt(lst['sqlite'])} | {fmt(lst['memory'])} |",
        "",
        f"bare round trip (EVALSHA `return 1`): {fmt(report['floor_us'])}",
    ]
    if len(sizes) >= 2:
        lo, hi = report["pages"][sizes[0]], report["pages"][sizes[-1]]
        ratio = hi["created_p50_us"] / lo["created_p50_us"]
        lines.append(f"- page at {sizes[-1]:,} ÷ page at {sizes[0]:,}: {ratio:.2f}× (target ≤ 1.2×)")
    big = report["pages"][sizes[-1]]["created_p50_us"]
    lines.append(f"- page of {PAGE} at {sizes[-1]:,}: {fmt(big)} (target < 3 ms)")
    lines.append(f"- list_sessions ÷ ADK Sqlite: {lst['adk_redis'] / lst['sqlite']:.2f}× (target ≤ 1.0×)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--runs", type=int, default=300, help="timed calls per figure (default 300)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.sizes = [int(x) for x in args.sizes.split(",")]
    report = asyncio.run(main_async(args))
    print(json.dumps(report, indent=2) if args.json else markdown(report))


if __name__ == "__main__":
    main()
