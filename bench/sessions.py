"""Session-service latency benchmark: adk_redis vs ADK's own services and the bare Redis round trip.

Run: ``.venv/bin/python bench/sessions.py [--url redis://127.0.0.1:6379/0] [--iterations N] [--json]``
(then the concurrent-writers scenario of ``bench/concurrency.py``; ``--no-concurrency`` skips it)

Every service runs the same workload in one process against the same Redis;
only the awaited service call is timed.  Keys live under a unique prefix and
are deleted at the end (the server may be shared: no FLUSH*).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig
from google.adk.sessions.in_memory_session_service import InMemorySessionService
from google.genai import types

from adk_redis import RedisSessionService, RedisSettings
from adk_redis._core.connection import create_client

BIG = 1000  # events in the "large" session
LIST_SIZE = 200  # sessions of the listed user
APP = "bench-app"

OPS: list[tuple[str, str]] = [
    ("create", "create_session"),
    ("append_empty", "append_event, empty session"),
    ("append_big", f"append_event, {BIG:,}-event session"),
    ("get_full", f"get_session, {BIG:,} events, full"),
    ("get_recent", f"get_session, {BIG:,} events, num_recent_events=10"),
    ("list", f"list_sessions, user with {LIST_SIZE} sessions"),
]

SERVICES: dict[str, str] = {
    "ours": "adk_redis",
    "adk_redis": "ADK Redis",
    "memory": "ADK InMemory",
    "sqlite": "ADK Sqlite",
    "database": "ADK Database (aiosqlite)",
}

_USER_TEXT = "Hi, I was charged twice for my March invoice (order #48213). Can you refund the duplicate?"
_MODEL_TEXT = (
    "I'm sorry about the double charge. I can see two payments of $49.00 on March 3 for order "
    "#48213. I've opened a refund for the duplicate payment; it usually reaches your card within "
    "5-7 business days. You'll receive a confirmation email shortly. Is there anything else I can "
    "help you with regarding your billing or your subscription?"
)


def make_event(i: int, *, author: str | None = None) -> Event:
    """A realistic conversation event: text content, and a small state_delta on agent turns."""
    is_user = author == "user" if author else i % 2 == 0
    if is_user:
        return Event(
            invocation_id=f"inv-{i // 2}",
            author="user",
            content=types.Content(role="user", parts=[types.Part(text=_USER_TEXT)]),
        )
    return Event(
        invocation_id=f"inv-{i // 2}",
        author="support_agent",
        content=types.Content(role="model", parts=[types.Part(text=_MODEL_TEXT)]),
        actions=EventActions(state_delta={"turn": i, "last_intent": "refund", "user:tier": "pro"}),
    )


# -- measurement ---------------------------------------------------------------------------


@dataclass
class Samples:
    ns: list[int] = field(default_factory=list)

    def pct(self, q: float) -> float:
        """Nearest-rank percentile in microseconds."""
        s = sorted(self.ns)
        return s[max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))] / 1000

    def summary(self) -> dict[str, float]:
        return {"n": len(self.ns), "p50_us": round(self.pct(0.50), 1), "p99_us": round(self.pct(0.99), 1)}


class Budget:
    """Run up to ``n`` iterations, stopping early after ``seconds`` (keeping at least ``floor``)."""

    def __init__(self, n: int, seconds: float, floor: int = 20) -> None:
        self.n, self.seconds, self.floor = n, seconds, floor

    def __iter__(self) -> Any:
        start = time.perf_counter()
        for i in range(self.n):
            if i >= self.floor and time.perf_counter() - start > self.seconds:
                return
            yield i


async def measure(samples: Samples, call: Awaitable[Any]) -> Any:
    t0 = time.perf_counter_ns()
    result = await call
    samples.ns.append(time.perf_counter_ns() - t0)
    return result


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- services ------------------------------------------------------------------------------


async def drop_prefix(client: Any, pattern: str) -> int:
    """Delete this run's keys (bench cleanup only; SCAN is never on a request path)."""
    n = 0
    batch: list[Any] = []
    async for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 500:
            n += await client.unlink(*batch)
            batch = []
    if batch:
        n += await client.unlink(*batch)
    return n


@asynccontextmanager
async def open_service(kind: str, url: str, run_id: str, tmp: str) -> AsyncIterator[BaseSessionService]:
    if kind == "ours":
        prefix = f"bench-{run_id}-ours"
        svc = RedisSessionService(url, key_prefix=prefix)
        try:
            yield svc
        finally:
            log(f"  cleanup: {await drop_prefix(svc.client, f'{prefix}:*')} keys")
            await svc.close()
    elif kind == "adk_redis":
        from google.adk.integrations.redis import RedisSessionService as AdkRedis
        from google.adk.integrations.redis import RedisSessionServiceConfig

        prefix = f"bench-{run_id}-adk:"
        client = aioredis.Redis.from_url(url, decode_responses=True)  # what ADK builds from a URI
        try:
            yield AdkRedis(RedisSessionServiceConfig(uri=url, key_prefix=prefix), redis_client=client)
        finally:
            log(f"  cleanup: {await drop_prefix(client, f'{prefix}*')} keys")
            await client.aclose()
    elif kind == "memory":
        yield InMemorySessionService()
    elif kind == "sqlite":
        from google.adk.sessions.sqlite_session_service import SqliteSessionService

        svc_sqlite = SqliteSessionService(os.path.join(tmp, f"{run_id}-sqlite.db"))
        try:
            yield svc_sqlite
        finally:
            await svc_sqlite.close()
    elif kind == "database":
        from google.adk.sessions.database_session_service import DatabaseSessionService

        svc_db = DatabaseSessionService(f"sqlite+aiosqlite:///{os.path.join(tmp, f'{run_id}-db.db')}")
        try:
            yield svc_db
        finally:
            await svc_db.close()
    else:
        raise ValueError(kind)


# iteration caps per (service, op) on top of --iterations and the time budget: the blob-rewriting
# ADK Redis service and the SQL services pay O(session size) per call on the large session.
_CAPS: dict[tuple[str, str], int] = {
    ("adk_redis", "append_big"): 50,
    ("adk_redis", "get_full"): 100,
    ("adk_redis", "list"): 100,
    ("memory", "get_full"): 100,
    ("sqlite", "get_full"): 100,
    ("database", "get_full"): 100,
    ("database", "list"): 100,
}


async def run_service(
    kind: str, svc: BaseSessionService, iterations: int, budget: float, probe: Callable[[], Awaitable[Any]]
) -> dict[str, Any]:
    """Run every operation; a bare round trip (``probe``) precedes each timed call, for every service.

    The probes give each operation a floor measured under the same conditions (the machine may be shared).
    """
    res: dict[str, Samples] = {op: Samples() for op, _ in OPS}
    floors: dict[str, Samples] = {op: Samples() for op, _ in OPS}

    async def timed(op: str, call: Awaitable[Any]) -> Any:
        await measure(floors[op], probe())
        return await measure(res[op], call)

    def plan(op: str) -> Budget:
        return Budget(min(iterations, _CAPS.get((kind, op), iterations)), budget)

    async def settle() -> None:
        gc.collect()
        await asyncio.sleep(0)

    # warm-up: connections, script cache, schema creation, lazy imports
    warm = await svc.create_session(app_name=APP, user_id="warm")
    for i in range(4):
        await svc.append_event(warm, make_event(i))
    await svc.get_session(app_name=APP, user_id="warm", session_id=warm.id)
    await svc.get_session(
        app_name=APP, user_id="warm", session_id=warm.id, config=GetSessionConfig(num_recent_events=2)
    )
    await svc.list_sessions(app_name=APP, user_id="warm")

    await settle()
    fresh = []
    for _ in plan("create"):
        fresh.append(
            await timed(
                "create",
                svc.create_session(app_name=APP, user_id="creator", state={"topic": "billing", "turn": 0}),
            )
        )

    await settle()
    for i, session in zip(plan("append_empty"), fresh, strict=False):
        await timed("append_empty", svc.append_event(session, make_event(2 * i + 1)))
    del fresh

    t0 = time.perf_counter()
    big = await svc.create_session(app_name=APP, user_id="big", state={"topic": "billing", "turn": 0})
    for i in range(BIG):
        await svc.append_event(big, make_event(i))
    setup_big = time.perf_counter() - t0
    log(f"  built a {BIG}-event session in {setup_big:.1f} s")

    await settle()
    for _ in plan("get_full"):
        got = await timed("get_full", svc.get_session(app_name=APP, user_id="big", session_id=big.id))
    assert got is not None and len(got.events) == BIG, "full get_session returned the wrong events"
    del got

    await settle()
    recent = GetSessionConfig(num_recent_events=10)
    for _ in plan("get_recent"):
        got = await timed(
            "get_recent",
            svc.get_session(app_name=APP, user_id="big", session_id=big.id, config=recent),
        )
    assert got is not None and len(got.events) == 10, "get_session(num_recent_events=10) is wrong"
    del got

    await settle()
    for i in plan("append_big"):
        await timed("append_big", svc.append_event(big, make_event(BIG + 2 * i + 1)))
    del big

    for _ in range(LIST_SIZE):
        await svc.create_session(app_name=APP, user_id="lister", state={"topic": "billing", "turn": 0})
    await settle()
    for _ in plan("list"):
        listed = await timed("list", svc.list_sessions(app_name=APP, user_id="lister"))
    assert len(listed.sessions) == LIST_SIZE, f"listed {len(listed.sessions)} sessions"

    out: dict[str, Any] = {
        op: {**s.summary(), "floor_p50_us": floors[op].summary()["p50_us"]} for op, s in res.items()
    }
    out["floor"] = Samples([n for f in floors.values() for n in f.ns]).summary()
    out["setup_big_s"] = round(setup_big, 2)
    return out


async def run_floor(script: Callable[[], Awaitable[Any]], iterations: int, budget: float) -> dict[str, float]:
    """A block of bare round trips: EVALSHA of ``return 1``."""
    for _ in range(50):
        await script()
    gc.collect()
    samples = Samples()
    for _ in Budget(iterations, budget):
        await measure(samples, script())
    return samples.summary()


# -- scale: long sessions and Redis memory ------------------------------------------------------

SCALE_EVENTS = (1_000, 10_000)


async def _plant_format1(svc: RedisSessionService, sid: str, events: list[Event]) -> list[str]:
    """The same events in the format-1 layout (events HASH + timestamps ZSET), for the memory row."""
    sk = svc.keys.session(APP, "format1", sid)
    pipe = svc.client.pipeline(transaction=False)
    for seq, ev in enumerate(events):
        pipe.hset(sk.legacy_events, mapping={str(seq): svc.codec.encode_event(ev), f"#{ev.id}": str(seq)})
        pipe.zadd(sk.legacy_times, {str(seq): ev.timestamp})
    await pipe.execute()
    return [sk.legacy_events, sk.legacy_times]


async def _bytes(client: Any, keys: list[str]) -> int:
    return sum([(await client.memory_usage(k, samples=0)) or 0 for k in keys])


async def run_scale(url: str, run_id: str, iterations: int, budget: float) -> dict[str, Any]:
    """get/append on 1,000- and 10,000-event sessions, and Redis bytes per event and per session."""
    from google.adk.sessions.session import Session

    prefix = f"bench-{run_id}-scale"
    svc = RedisSessionService(url, key_prefix=prefix)
    out: dict[str, Any] = {}
    try:
        for n in SCALE_EVENTS:
            events = [make_event(i) for i in range(n)]
            sid = f"s{n}"
            await svc.restore_session(
                Session(
                    id=sid,
                    app_name=APP,
                    user_id="scale",
                    state={"topic": "billing"},
                    events=events,
                    last_update_time=events[-1].timestamp,
                )
            )
            sk = svc.keys.session(APP, "scale", sid)
            json_bytes = sum(len(e.model_dump_json(exclude_none=True)) for e in events) / n
            row: dict[str, Any] = {
                "events": n,
                "json_bytes_per_event": round(json_bytes, 1),
                "redis_bytes_per_event": round((await _bytes(svc.client, list(sk.all))) / n, 1),
            }
            if n == SCALE_EVENTS[0]:
                old = await _plant_format1(svc, sid, events)
                row["format1_bytes_per_event"] = round((await _bytes(svc.client, [sk.meta, *old])) / n, 1)
                await svc.client.delete(*old)
            gc.collect()
            full, recent, append = Samples(), Samples(), Samples()
            for _ in Budget(min(iterations, 100 if n <= 1000 else 20), budget, floor=10):
                got = await measure(full, svc.get_session(app_name=APP, user_id="scale", session_id=sid))
            assert got is not None and len(got.events) == n
            del got
            cfg = GetSessionConfig(num_recent_events=10)
            for _ in Budget(iterations, budget):
                tail = await measure(
                    recent, svc.get_session(app_name=APP, user_id="scale", session_id=sid, config=cfg)
                )
            assert tail is not None and len(tail.events) == 10
            for i in Budget(iterations, budget):
                await measure(append, svc.append_event(tail, make_event(n + 2 * i + 1)))
            # the same session in ADK's InMemorySessionService (a deep copy per event on get_session)
            mem = InMemorySessionService()
            held = await mem.create_session(app_name=APP, user_id="scale", session_id=sid)
            for ev in events:
                await mem.append_event(held, ev)
            del held
            gc.collect()
            mem_full = Samples()
            for _ in Budget(min(iterations, 100 if n <= 1000 else 20), budget, floor=10):
                await measure(mem_full, mem.get_session(app_name=APP, user_id="scale", session_id=sid))
            del mem
            row.update(
                get_full=full.summary(),
                get_recent=recent.summary(),
                append=append.summary(),
                memory_get_full=mem_full.summary(),
            )
            out[str(n)] = row
            log(f"  {n:,} events: {row}")
        # bytes per session: 1,000 sessions with two state keys and no events (record + index entries)
        before = await _bytes(svc.client, _index_keys(svc))
        for _ in range(1000):
            await svc.create_session(app_name=APP, user_id="many", state={"topic": "billing", "turn": 0})
        metas = [
            svc.keys.session(APP, "many", svc.keys.parse_session_member(m.decode())).meta
            for m in await svc.client.zrange(svc.keys.user_index(APP, "many"), 0, -1)
        ]
        after = await _bytes(svc.client, metas) + await _bytes(svc.client, _index_keys(svc))
        out["bytes_per_session"] = round((after - before) / 1000, 1)
    finally:
        log(f"  cleanup: {await drop_prefix(svc.client, f'{prefix}:*')} keys")
        await svc.close()
    return out


def _index_keys(svc: RedisSessionService) -> list[str]:
    k, u = svc.keys, "many"
    return [k.user_index(APP, u), k.user_created_index(APP, u), k.app_index(APP), k.app_created_index(APP)]


def scale_markdown(scale: dict[str, Any]) -> str:
    lines = [
        "| session length | get_session, full | ADK InMemory, full | last 10 events | append_event "
        "| Redis bytes / event | event JSON bytes | ratio |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for n in SCALE_EVENTS:
        r = scale[str(n)]
        lines.append(
            f"| {n:,} events | {fmt(r['get_full']['p50_us'])} | {fmt(r['memory_get_full']['p50_us'])} "
            f"| {fmt(r['get_recent']['p50_us'])} "
            f"| {fmt(r['append']['p50_us'])} | {r['redis_bytes_per_event']:.0f} "
            f"| {r['json_bytes_per_event']:.0f} "
            f"| {r['redis_bytes_per_event'] / r['json_bytes_per_event']:.2f}× |"
        )
    r = scale[str(SCALE_EVENTS[0])]
    if "format1_bytes_per_event" in r:
        lines.append(
            f"\nFormat 1 (events HASH + timestamps ZSET, before 0.13), same events: "
            f"{r['format1_bytes_per_event']:.0f} bytes / event "
            f"({r['format1_bytes_per_event'] / r['json_bytes_per_event']:.2f}× the JSON). "
            f"A session with two state keys and no events: {scale['bytes_per_session']:.0f} bytes "
            "(record and index entries)."
        )
    return "\n".join(lines)


# -- report ----------------------------------------------------------------------------------


def fmt(us: float) -> str:
    if us >= 10_000:
        return f"{us / 1000:,.0f} ms" if us >= 100_000 else f"{us / 1000:.1f} ms"
    if us >= 1_000:
        return f"{us / 1000:.2f} ms"
    return f"{us:.0f} µs"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}×" if b else "n/a"


def markdown(report: dict[str, Any]) -> str:
    floor = report["floor"]
    kinds = [k for k in SERVICES if k in report["services"]]
    head = ["operation (p50 / p99)", *(SERVICES[k] for k in kinds)]
    if "ours" in kinds:
        head.append("adk_redis ÷ round trip (p50)¹")
        if "adk_redis" in kinds:
            head.append("ADK Redis ÷ adk_redis (p50)")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["--:"] * (len(head) - 1)) + "|"]
    rtt = f"{fmt(floor['p50_us'])} / {fmt(floor['p99_us'])}"
    cells = ["bare round trip: EVALSHA `return 1`", *(rtt if k == "ours" else "" for k in kinds)]
    cells += ["1.0×" if i == 0 else "" for i in range(len(head) - len(cells))]
    lines.append("| " + " | ".join(cells) + " |")
    for op, label in OPS:
        cells = [label]
        for k in kinds:
            s = report["services"][k][op]
            cells.append(f"{fmt(s['p50_us'])} / {fmt(s['p99_us'])}")
        if "ours" in kinds:
            ours = report["services"]["ours"][op]["p50_us"]
            interleaved = report["services"]["ours"][op]["floor_p50_us"]
            cells.append(f"{ratio(ours, floor['p50_us'])} ({ratio(ours, interleaved)})")
            if "adk_redis" in kinds:
                cells.append(ratio(report["services"]["adk_redis"][op]["p50_us"], ours))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(
        "\n¹ against the first row (a tight loop of bare round trips: the strict floor); in parentheses, "
        "against the round trips interleaved with that operation's calls (one just before each call)."
    )
    return "\n".join(lines)


def verdicts(report: dict[str, Any]) -> list[dict[str, Any]]:
    if "ours" not in report["services"]:
        return []
    svc = report["services"]["ours"]
    ours = {op: svc[op]["p50_us"] for op, _ in OPS}
    rtt = {op: svc[op]["floor_p50_us"] for op, _ in OPS}
    block = report["floor"]["p50_us"]
    out = [
        {
            "target": "append_event p50 <= 2x round trip",
            "value": ours["append_empty"] / block,
            "vs_interleaved": ours["append_empty"] / rtt["append_empty"],
            "limit": 2.0,
        },
        {
            "target": f"append_event on {BIG:,} events within 1.2x of empty",
            "value": ours["append_big"] / ours["append_empty"],
            "limit": 1.2,
        },
        {
            "target": f"get_session(num_recent_events=10) on {BIG:,} events <= 3x round trip",
            "value": ours["get_recent"] / block,
            "vs_interleaved": ours["get_recent"] / rtt["get_recent"],
            "limit": 3.0,
        },
    ]
    services = report["services"]
    if "memory" in services:
        out.append(
            {
                "target": f"get_session, {BIG:,} events, full <= ADK InMemory",
                "value": ours["get_full"] / services["memory"]["get_full"]["p50_us"],
                "limit": 1.0,
            }
        )
    if "sqlite" in services:
        out.append(
            {
                "target": f"list_sessions of {LIST_SIZE} <= ADK Sqlite",
                "value": ours["list"] / services["sqlite"]["list"]["p50_us"],
                "limit": 1.0,
            }
        )
    scale = report.get("scale")
    if scale:
        out.append(
            {
                "target": "get_session of 10,000 events < 300 ms (value in ms)",
                "value": scale["10000"]["get_full"]["p50_us"] / 1000,
                "limit": 300.0,
            }
        )
        big = scale["1000"]
        out.append(
            {
                "target": "Redis memory per event <= 1.2x its JSON",
                "value": big["redis_bytes_per_event"] / big["json_bytes_per_event"],
                "limit": 1.2,
            }
        )
    if "adk_redis" in report["services"]:
        for op, label in OPS:
            theirs = report["services"]["adk_redis"][op]["p50_us"]
            value = ours[op] / theirs
            out.append({"target": f"faster than ADK Redis: {label}", "value": value, "limit": 1.0})
    for v in out:
        v["value"] = round(v["value"], 2)
        if "vs_interleaved" in v:
            v["vs_interleaved"] = round(v["vs_interleaved"], 2)
        v["ok"] = v["value"] <= v["limit"]
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    kinds = [k.strip() for k in args.services.split(",") if k.strip()]
    unknown = set(kinds) - set(SERVICES)
    if unknown:
        choices = ", ".join(SERVICES)
        raise SystemExit(f"unknown services: {', '.join(sorted(unknown))} (choose from {choices})")
    run_id = uuid.uuid4().hex[:10]
    started = time.perf_counter()
    report: dict[str, Any] = {
        "url": args.url,
        "iterations": args.iterations,
        "budget_s": args.budget,
        "python": sys.version.split()[0],
        "services": {},
    }
    # The floor client is built exactly like adk_redis builds its own (pool, retry, parser settings).
    floor_client = create_client(RedisSettings(), args.url)
    probe = floor_client.register_script("return 1")
    try:
        log("bare round trips ...")
        report["floor"] = await run_floor(probe, args.iterations * 4, args.budget)
        with tempfile.TemporaryDirectory(prefix="adk-redis-bench-") as tmp:
            for kind in kinds:
                log(f"{SERVICES[kind]} ...")
                async with open_service(kind, args.url, run_id, tmp) as svc:
                    report["services"][kind] = await run_service(
                        kind, svc, args.iterations, args.budget, probe
                    )
        if "ours" in kinds and not args.no_scale:
            log("scale: long sessions, Redis memory ...")
            report["scale"] = await run_scale(args.url, run_id, args.iterations, args.budget)
    finally:
        await floor_client.aclose()
    report["verdicts"] = verdicts(report)
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--iterations", type=int, default=300, help="max samples per (service, operation)")
    parser.add_argument("--budget", type=float, default=3.0, help="max seconds per (service, operation)")
    parser.add_argument("--services", default=",".join(SERVICES), help=f"subset of {','.join(SERVICES)}")
    parser.add_argument(
        "--json", action="store_true", help="print the JSON report on stdout (the table goes to stderr)"
    )
    parser.add_argument("--no-concurrency", action="store_true", help="skip the concurrent-writers scenario")
    parser.add_argument("--no-scale", action="store_true", help="skip the long-session and memory rows")
    parser.add_argument("--concurrency-deadline", type=float, default=60.0, help="seconds per service")
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    if not args.no_concurrency:  # issue 9: concurrent writers on one session (bench/concurrency.py)
        import concurrency

        kinds = [k for k in concurrency.KINDS if k.startswith("ours_") or k in args.services.split(",")]
        report["concurrency"] = asyncio.run(
            concurrency.run(args.url, kinds, args.iterations, args.concurrency_deadline)
        )
    table = markdown(report)
    if "scale" in report:
        table += "\n\n" + scale_markdown(report["scale"])
    if "concurrency" in report:
        table += "\n\n" + concurrency.markdown(report["concurrency"])
    lines = [table, ""]
    for v in report["verdicts"]:
        extra = f"; {v['vs_interleaved']} against interleaved round trips" if "vs_interleaved" in v else ""
        verdict = "PASS" if v["ok"] else "MISS"
        lines.append(f"- [{verdict}] {v['target']}: {v['value']} (limit {v['limit']}{extra})")
    lines.append(f"\n{report['elapsed_s']} s total; samples per cell and setup times are in --json output.")
    if args.json:
        log("\n".join(lines))
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
