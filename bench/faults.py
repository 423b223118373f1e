"""Faults: a stalled server (DEBUG SLEEP) and a killed one, with and without fallback; write-back volume.

Run: ``.venv/bin/python bench/faults.py [--deadline 1.0] [--threshold 3] [--stall 6] [--sessions 1000]``
(``--json`` for machine-readable output).

Every scenario runs against its own throw-away redis-server on a loopback port (never a shared server).
For each fault it reports: the time from the fault until the breaker opened, latency of the calls made
during the fault (p50 / p99 / max; a steady stream of ``get_session`` + ``append_event`` from 8 tasks,
5 ms apart),
with fallback (``FallbackSessionService``) and without (the bare ``RedisSessionService``, whose calls
fail), the time from the server's return until everything was written back and the breaker closed, and
the records written back / conflicted / failed.  Then: write-back time of ``--sessions`` sessions
created (with two events each) while the server was down.

Conflicting write-back (issue 17): ``--sessions`` sessions taken over by memory during an outage (two
events each), ``--conflicts`` of them changed meanwhile by another writer on a key an outage event also
writes; 8 writer tasks keep appending while the write-back runs.  Reports the time from the first health
round after the restart until the breaker closed, conflicts recorded (each once), the RSS peak above the
level before the restart (sampled every 5 ms) and, in a second run under ``tracemalloc``, the peak of
Python allocations during the recovery.  The same for one session with ``--session-conflicts``
conflicting events (the issue's 600 recorded 1,199 times, 6.8 GB).

Targets (issue 10): with fallback no call waits longer than deadline x threshold; 1,000 pending
sessions written back in under 2 s.  Issue 17: 1,000 pending sessions with 400 conflicts written back,
breaker closed, in under 5 s while writers continue.

Shared key (issue 17 item 4): ``--processes`` processes append ``--appends`` events each to one session
during an outage, every one writing ``user:last``; after the restart each writes back.  Reported per
policy (merge, lww): acknowledged / stored / reported as conflicts / lost.

``--only conflicts`` / ``--only shared-key`` runs only those scenarios.

sessions written back in under 2 s.

Failover without loss (issue 17; ``--only wait-cost`` / ``sentinel`` / ``cluster`` / ``failover``):

- ``wait_cost``: append latency with ``REDIS_WAIT_REPLICAS=1`` against the default (0) on a primary with
  one replica, one writer, ``--cost-appends`` appends per setting in interleaved batches: p50 / p99 and
  the p50 ratio; also on Redis 8 with AOF (``appendfsync always`` and ``everysec``) with and without
  ``WAITAOF`` (``REDIS_WAIT_AOF``).
- ``sentinel``: 3 sentinels, a primary and a replica; ``--writers`` x ``--failover-appends`` appends
  (each writer its own session and service, a failed append retried with the same event); kill -9 of
  the primary a third into the load, plainly and after cutting its replica off for ``--lag`` s (the
  replication window); the killed node restarted as it was (the sentinels make it a replica).  With
  and without the replica wait: acknowledged / stored / lost, errors by type, time to recover.
- ``cluster``: 3 primaries with a replica each, same load: kill -9 of a primary (``cluster-node-timeout``
  1 s), and every writer's slot migrated key by key during the load (``CLUSTER SETSLOT`` / ``MIGRATE``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import random
import statistics
import sys
import threading
import time
import tracemalloc
import uuid
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from google.adk.events.event import Event  # noqa: E402
from google.adk.events.event_actions import EventActions  # noqa: E402

from adk_redis import RedisSessionService, load_settings  # noqa: E402
from adk_redis.resilience._fallback import BreakerState, FallbackSessionService  # noqa: E402
from tests.servers import RedisServer  # noqa: E402

APP = "bench"


def ev(**delta: Any) -> Event:
    return Event(author="agent", invocation_id="i", actions=EventActions(state_delta=delta))


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def settings(server: RedisServer, deadline: float) -> Any:
    return load_settings(
        redis_url=server.url,
        redis_operation_timeout=deadline,
        redis_socket_timeout=5.0,  # the defaults: the deadline is what ends a stall
        redis_connect_timeout=2.0,
        redis_retry_attempts=3,
    )


def stall(server: RedisServer, seconds: float) -> threading.Thread:
    def run() -> None:
        with server.client(socket_timeout=seconds + 10) as c:
            c.execute_command("DEBUG", "SLEEP", seconds)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.05)
    return thread


async def fault_run(
    kind: str, fallback: bool, deadline: float, threshold: int, duration: float
) -> dict[str, Any]:
    server = RedisServer(args=["--enable-debug-command", "yes", "--appendonly", "no"]).start()
    prefix = f"bf{uuid.uuid4().hex[:6]}"
    redis = RedisSessionService(settings=settings(server, deadline), key_prefix=prefix)
    svc: Any = (
        FallbackSessionService(redis, failure_threshold=threshold, health_check_interval=0.25)
        if fallback
        else redis
    )
    sessions = [await svc.create_session(app_name=APP, user_id=f"u{i}") for i in range(8)]
    latencies: list[float] = []
    errors = 0
    opened_after: float | None = None
    t_fault = time.monotonic()
    end = t_fault + duration

    async def worker(i: int) -> None:
        nonlocal errors
        s = sessions[i]
        n = 0
        while time.monotonic() < end:
            for call in (
                lambda: svc.get_session(app_name=APP, user_id=s.user_id, session_id=s.id),
                lambda n=n: svc.append_event(s, ev(n=n)),
            ):
                t0 = time.monotonic()
                try:
                    await call()
                except Exception:
                    errors += 1
                    if not fallback:
                        await asyncio.sleep(0.05)  # a caller would back off
                latencies.append(time.monotonic() - t0)
                await asyncio.sleep(0.005)  # a steady stream: served from memory, a call never yields
            n += 1

    async def watch() -> None:
        nonlocal opened_after
        while time.monotonic() < end and fallback:
            if svc.state is BreakerState.OPEN and opened_after is None:
                opened_after = time.monotonic() - t_fault
            await asyncio.sleep(0.005)

    thread = None
    if kind == "stall":
        thread = stall(server, duration)
        t_fault = time.monotonic()
    else:
        server.kill()
        t_fault = time.monotonic()
    end = t_fault + duration
    await asyncio.gather(*(worker(i) for i in range(8)), watch())
    if thread is not None:
        await asyncio.to_thread(thread.join)
    else:
        server.start()
    t_back = time.monotonic()
    result: dict[str, Any] = {
        "calls": len(latencies),
        "errors": errors,
        "p50_ms": round(pct(latencies, 50) * 1000, 1),
        "p99_ms": round(pct(latencies, 99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
    }
    if fallback:
        closed = await svc.wait_closed(30)
        stats = svc.get_redis_stats()
        result.update(
            breaker_open_after_s=None if opened_after is None else round(opened_after, 3),
            write_back_s=round(time.monotonic() - t_back, 3) if closed else None,
            written_back=stats["written_back"],
            conflicts=stats["conflicts"],
            failed=stats["failed"],
            within_target=max(latencies) <= deadline * threshold + 0.05,
        )
    await svc.close()
    server.stop()
    return result


async def write_back_volume(sessions: int, deadline: float) -> dict[str, Any]:
    server = RedisServer(args=["--appendonly", "no"]).start()
    prefix = f"bw{uuid.uuid4().hex[:6]}"
    redis = RedisSessionService(settings=settings(server, deadline), key_prefix=prefix)
    svc = FallbackSessionService(redis, failure_threshold=1, health_check_interval=3600, start_open=True)
    server.kill()
    for i in range(sessions):
        s = await svc.create_session(app_name=APP, user_id=f"u{i % 50}", state={"i": i})
        await svc.append_event(s, ev(a=i))
        await svc.append_event(s, ev(b=i))
    server.start()
    t0 = time.monotonic()
    closed = await svc.core.check()  # one health round: PING, replay the journal, close
    took = time.monotonic() - t0
    stats = svc.get_redis_stats()
    check = RedisSessionService(settings=settings(server, deadline), key_prefix=prefix)
    listed = 0
    for u in range(50):
        listed += len((await check.list_sessions(app_name=APP, user_id=f"u{u}")).sessions)
    await check.close()
    await svc.close()
    server.stop()
    return {
        "pending_sessions": sessions,
        "write_back_s": round(took, 3),
        "closed": closed,
        "written_back": stats["written_back"],
        "conflicts": stats["conflicts"],
        "failed": stats["failed"],
        "in_redis_after": listed,
        "within_target": took < 2.0,
    }


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def conflicting_write_back(
    sessions: int, conflicts: int, deadline: float, *, per_session: int = 1, trace: bool = False
) -> dict[str, Any]:
    """``sessions`` sessions taken over by memory, ``conflicts`` conflicting outage events (spread over
    ``conflicts // per_session`` sessions), 8 writers appending during the recovery (see the docstring)."""
    server = RedisServer(args=["--appendonly", "yes", "--appendfsync", "everysec"]).start()
    prefix = f"bc{uuid.uuid4().hex[:6]}"
    redis = RedisSessionService(settings=settings(server, deadline), key_prefix=prefix)
    svc = FallbackSessionService(redis, failure_threshold=1, health_check_interval=3600)
    objs = [await svc.create_session(app_name=APP, user_id=f"u{i % 50}") for i in range(sessions)]
    for s in objs:
        await svc.append_event(s, ev(k=0))
    with server.client() as c:  # everything on disk before the kill
        c.execute_command("BGREWRITEAOF")
        while c.info("persistence")["aof_rewrite_in_progress"]:
            time.sleep(0.05)
    server.kill()
    clashing = conflicts // per_session
    acked_ids: list[str] = []
    for i, s in enumerate(objs):
        n = per_session if i < clashing else 1
        for j in range(n):  # "k": the other writer changes it too
            acked_ids.append((await svc.append_event(s, ev(k=j + 1, pad="x" * 200))).id)
        acked_ids.append((await svc.append_event(s, ev(**{f"own{i}": i}))).id)
    server.start()
    other = RedisSessionService(settings=settings(server, deadline), key_prefix=prefix)
    for s in objs[:clashing]:
        theirs = await other.get_session(app_name=APP, user_id=s.user_id, session_id=s.id)
        assert theirs is not None
        await other.append_event(theirs, ev(k=-1))
    gc.collect()
    base_rss = peak_rss = rss_bytes()
    acked = 0
    stop = False

    async def writer(w: int) -> None:
        nonlocal acked
        rnd = random.Random(w)
        mine = objs[w::writers]  # one task per session object, as one invocation per session
        while not stop:
            s = mine[rnd.randrange(len(mine))]
            # every other append also writes "k": in a session still memory's it conflicts too
            e = await svc.append_event(s, ev(**{f"w{w}": acked}) if acked % 2 else ev(k=acked))
            acked_ids.append(e.id)
            acked += 1
            await asyncio.sleep(0.002)

    async def sample() -> None:
        nonlocal peak_rss
        while not stop:
            peak_rss = max(peak_rss, rss_bytes())
            await asyncio.sleep(0.005)

    if trace:
        tracemalloc.start()
    writers = min(8, sessions)
    tasks = [asyncio.create_task(writer(w)) for w in range(writers)] + [asyncio.create_task(sample())]
    t0 = time.monotonic()
    rounds = 1
    while not await svc.core.check():  # health rounds, 50 ms apart (as health_check_interval=0.05)
        rounds += 1
        await asyncio.sleep(0.05)
    took = time.monotonic() - t0
    traced_peak = tracemalloc.get_traced_memory()[1] if trace else None
    await asyncio.sleep(0.5)  # the writers go on against Redis
    stop = True
    await asyncio.gather(*tasks)
    if trace:
        tracemalloc.stop()
    stats = svc.get_redis_stats()
    ids = [c.event.id for c in await svc.read_conflicts(app_name=APP, limit=10**6) if c.event]
    stored: set[str] = set()
    for s in objs:
        got = await other.get_session(app_name=APP, user_id=s.user_id, session_id=s.id)
        stored |= {e.id for e in got.events} if got else set()
    result: dict[str, Any] = {
        "pending_sessions": sessions,
        "conflicting_events": conflicts,
        "close_s": round(took, 3),
        "health_rounds": rounds,
        "breaker": stats["breaker_state"],
        "conflicts_recorded": stats["conflicts"],
        "recorded_once": len(ids) == len(set(ids)),
        "written_back": stats["written_back"],
        "failed": stats["failed"],
        "writer_appends": acked,
        "acknowledged": len(acked_ids),
        "lost": len(set(acked_ids) - stored - set(ids)),
        "stored_and_reported": len(stored & set(ids)),
        "rss_peak_above_base_mb": round((peak_rss - base_rss) / 2**20, 1),
    }
    if trace:
        result["traced_peak_mb"] = round((traced_peak or 0) / 2**20, 1)
    await other.close()
    await svc.close()
    server.stop()
    return result


def _shared_key_writer(args: tuple[str, str, int, str, str, int]) -> dict[str, Any]:
    """One process of :func:`shared_key_outage`: ``appends`` outage appends, each writing ``user:last``."""
    url, prefix, wid, sync, policy, appends = args
    logging.getLogger("adk_redis").setLevel(logging.CRITICAL)

    def wait_for(name: str) -> None:
        while not os.path.exists(os.path.join(sync, name)):
            time.sleep(0.01)

    async def run() -> dict[str, Any]:
        st = load_settings(
            redis_url=url, redis_operation_timeout=1.0, redis_connect_timeout=0.2, redis_retry_attempts=1
        )
        redis = RedisSessionService(settings=st, key_prefix=prefix, stale_policy=policy)
        svc = FallbackSessionService(redis, failure_threshold=1, health_check_interval=0.1)
        session = await svc.get_session(app_name=APP, user_id="u", session_id="shared")
        assert session is not None
        open(os.path.join(sync, f"ready{wid}"), "w").close()
        await asyncio.to_thread(wait_for, "down")
        acked = []
        for j in range(appends):
            e = await svc.append_event(session, ev(**{f"w{wid}": j, "user:last": f"{wid}-{j}"}))
            acked.append(e.id)
        open(os.path.join(sync, f"done{wid}"), "w").close()
        await asyncio.to_thread(wait_for, "up")
        t0 = time.monotonic()
        closed = await svc.wait_closed(120)
        out = {
            "acked": acked,
            "conflicts": [c.event.id for c in await svc.read_conflicts(app_name=APP, limit=10**6) if c.event],
            "closed": closed,
            "close_s": time.monotonic() - t0,
        }
        await svc.close()
        return out

    return asyncio.run(run())


def shared_key_outage(policy: str, processes: int, appends: int) -> dict[str, Any]:
    """Issue 17 item 4: ``processes`` processes on one session, ``appends`` outage appends each, every one
    writing ``user:last``; reports acknowledged / stored / reported as conflicts / lost."""
    import multiprocessing as mp
    import tempfile

    server = RedisServer(args=["--appendonly", "yes", "--appendfsync", "always"]).start()
    prefix = f"bs{uuid.uuid4().hex[:6]}"

    async def setup() -> None:
        svc = RedisSessionService(server.url, key_prefix=prefix)
        await svc.create_session(app_name=APP, user_id="u", session_id="shared")
        await svc.close()

    asyncio.run(setup())
    with tempfile.TemporaryDirectory() as sync, mp.get_context("spawn").Pool(processes) as pool:
        pending = pool.map_async(
            _shared_key_writer, [(server.url, prefix, w, sync, policy, appends) for w in range(processes)]
        )
        while sum(os.path.exists(os.path.join(sync, f"ready{w}")) for w in range(processes)) < processes:
            time.sleep(0.02)
        server.kill()
        open(os.path.join(sync, "down"), "w").close()
        while sum(os.path.exists(os.path.join(sync, f"done{w}")) for w in range(processes)) < processes:
            time.sleep(0.02)
        server.start()
        open(os.path.join(sync, "up"), "w").close()
        results = pending.get(timeout=300)

    async def stored() -> tuple[set[str], Any]:
        svc = RedisSessionService(server.url, key_prefix=prefix)
        got = await svc.get_session(app_name=APP, user_id="u", session_id="shared")
        await svc.close()
        assert got is not None
        return {e.id for e in got.events}, got.state.get("user:last")

    ids, last = asyncio.run(stored())
    server.stop()
    acked = [i for r in results for i in r["acked"]]
    conflicted = {i for r in results for i in r["conflicts"]}
    return {
        "policy": policy,
        "acknowledged": len(acked),
        "stored": len(set(acked) & ids),
        "reported_as_conflicts": len(conflicted),
        "lost": len(set(acked) - ids - conflicted),
        "all_closed": all(r["closed"] for r in results),
        "max_close_s": round(max(r["close_s"] for r in results), 3),
        "user_last": last,
    }


async def wait_cost(appends: int, batch: int = 100) -> dict[str, Any]:
    """p50 / p99 append latency per replica-wait setting, batches interleaved (same servers, same run)."""
    from tests.servers import redis8_binary, replicas_acknowledge, replicas_online

    setups: list[tuple[str, str | None, list[str], list[tuple[str, dict[str, Any]]]]] = [
        (
            "redis7_no_aof",
            None,
            ["--appendonly", "no"],
            [("default", {}), ("wait_replicas_1", {"redis_wait_replicas": 1})],
        ),
        (
            "redis8_aof_always",
            redis8_binary(),
            ["--appendonly", "yes", "--appendfsync", "always"],
            [
                ("default", {}),
                ("wait_replicas_1_no_waitaof", {"redis_wait_replicas": 1, "redis_wait_aof": False}),
                ("wait_replicas_1_waitaof", {"redis_wait_replicas": 1, "redis_wait_aof": True}),
            ],
        ),
        (
            "redis8_aof_everysec",
            redis8_binary(),
            ["--appendonly", "yes", "--appendfsync", "everysec"],
            [
                ("default", {}),
                ("wait_replicas_1_no_waitaof", {"redis_wait_replicas": 1, "redis_wait_aof": False}),
                ("wait_replicas_1_waitaof", {"redis_wait_replicas": 1, "redis_wait_aof": True}),
            ],
        ),
    ]
    out: dict[str, Any] = {"appends_per_setting": appends}
    for name, binary, args, variants in setups:
        kw: dict[str, Any] = {} if binary is None else {"binary": binary}
        base = ["--repl-diskless-sync-delay", "0", *args]
        primary = RedisServer(args=base, **kw).start()
        replica = RedisServer(args=[*base, "--replicaof", "127.0.0.1", str(primary.port)], **kw)
        try:
            replica.start()
            while replicas_online(primary) < 1:
                await asyncio.sleep(0.02)
            replicas_acknowledge(primary, 1)
            services = {}
            sessions = {}
            for label, extra in variants:
                st = load_settings(redis_url=primary.url, redis_wait_timeout_ms=2000, **extra)
                svc = RedisSessionService(settings=st, key_prefix=f"wc{uuid.uuid4().hex[:6]}")
                services[label] = svc
                sessions[label] = await svc.create_session(app_name=APP, user_id="u")
                for n in range(20):  # warm-up: scripts loaded, WAITAOF decided
                    await svc.append_event(sessions[label], ev(w=n))
            lat: dict[str, list[float]] = {label: [] for label, _ in variants}
            # WAITAOF with appendfsync everysec waits for the next fsync (up to 1 s): few samples
            slow = {"wait_replicas_1_waitaof"} if "everysec" in name else set()
            for start in range(0, appends, batch):
                for label, _ in variants:
                    svc, s = services[label], sessions[label]
                    count = max(1, batch // 20) if label in slow else batch
                    for n in range(start, min(appends, start + count)):
                        e = ev(n=n)
                        t0 = time.perf_counter()
                        await svc.append_event(s, e)
                        lat[label].append(time.perf_counter() - t0)
            base_p50 = pct(lat["default"], 50)
            row: dict[str, Any] = {}
            for label, _ in variants:
                row[label] = {
                    "p50_ms": round(pct(lat[label], 50) * 1000, 3),
                    "p99_ms": round(pct(lat[label], 99) * 1000, 3),
                    "p50_ratio_to_default": round(pct(lat[label], 50) / base_p50, 2),
                }
                if services[label].durability.enabled:
                    row[label]["waitaof_used"] = services[label].durability._aof.get("", True) and bool(
                        services[label].settings.redis_wait_aof
                    )
                await services[label].close()
            out[name] = row
        finally:
            replica.stop()
            primary.stop()
    return out


async def failover_scenarios(a: argparse.Namespace, which: set[str]) -> dict[str, Any]:
    from tests.failover_load import cluster_kill, cluster_reshard, sentinel_kill
    from tests.servers import SentinelTopology, redis_cluster

    out: dict[str, Any] = {"writers": a.writers, "appends_per_writer": a.failover_appends, "lag_s": a.lag}
    waits = [int(w) for w in a.waits.split(",")]
    if "sentinel" in which:
        for wait in waits:
            for lag in (0.0, a.lag):
                topology = SentinelTopology(sentinels=3, replicas=1)
                try:
                    result, timings = await sentinel_kill(
                        topology,
                        wait=wait,
                        writers=a.writers,
                        appends=a.failover_appends,
                        lag_s=lag,
                        rejoin="sentinel",
                        give_up_s=120,
                    )
                finally:
                    topology.stop()
                out[f"sentinel_kill_wait{wait}_lag{lag:g}"] = {**result.summary(), **timings}
                log(f"sentinel wait={wait} lag={lag}: {out[f'sentinel_kill_wait{wait}_lag{lag:g}']}")
    if "cluster" in which:
        for wait in waits:
            with redis_cluster(3, replicas=1, node_timeout_ms=1000) as nodes:
                result, info = await cluster_reshard(
                    nodes,
                    wait=wait,
                    writers=a.writers,
                    appends=a.failover_appends,
                    pause_s=0.0,
                    give_up_s=120,
                )
                out[f"cluster_reshard_wait{wait}"] = {**result.summary(), **info}
                log(f"cluster reshard wait={wait}: {out[f'cluster_reshard_wait{wait}']}")
                for lag in (0.0, a.lag):
                    result, timings = await cluster_kill(
                        nodes,
                        wait=wait,
                        writers=a.writers,
                        appends=a.failover_appends,
                        lag_s=lag,
                        give_up_s=120,
                    )
                    out[f"cluster_kill_wait{wait}_lag{lag:g}"] = {**result.summary(), **timings}
                    log(f"cluster kill wait={wait} lag={lag}: {out[f'cluster_kill_wait{wait}_lag{lag:g}']}")
    return out


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def main_async(a: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"deadline_s": a.deadline, "failure_threshold": a.threshold, "fault_s": a.stall}
    if a.only in (None, "faults"):
        for kind in ("stall", "kill"):
            for fallback in (True, False):
                name = f"{kind}_{'fallback' if fallback else 'no_fallback'}"
                out[name] = await fault_run(kind, fallback, a.deadline, a.threshold, a.stall)
        out["write_back"] = await write_back_volume(a.sessions, a.deadline)
    if a.only in (None, "conflicts"):
        row = await conflicting_write_back(a.sessions, a.conflicts, a.deadline)
        row["within_target"] = row["close_s"] < 5.0
        out["conflicting_write_back"] = row
        out["conflicting_write_back_traced"] = await conflicting_write_back(
            a.sessions, a.conflicts, a.deadline, trace=True
        )
        out["one_session_conflicts"] = await conflicting_write_back(
            1, a.session_conflicts, a.deadline, per_session=a.session_conflicts, trace=True
        )
    if a.only in (None, "shared-key"):
        for policy in ("merge", "lww"):
            out[f"shared_key_{policy}"] = await asyncio.to_thread(
                shared_key_outage, policy, a.processes, a.appends
            )
    if a.only in (None, "wait-cost"):
        out["wait_cost"] = await wait_cost(a.cost_appends)
        log(f"wait_cost: {out['wait_cost']}")
    failover = {"sentinel", "cluster"} if a.only in (None, "failover") else {a.only} & {"sentinel", "cluster"}
    if failover:
        out["failover"] = await failover_scenarios(a, failover)
    return out


def main() -> None:
    logging.getLogger("adk_redis").setLevel(logging.CRITICAL)  # the conflicts are logged one by one
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deadline", type=float, default=1.0, help="REDIS_OPERATION_TIMEOUT for the run")
    ap.add_argument("--threshold", type=int, default=3, help="REDIS_FAILURE_THRESHOLD for the run")
    ap.add_argument("--stall", type=float, default=6.0, help="seconds of DEBUG SLEEP / downtime")
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--conflicts", type=int, default=400, help="conflicting sessions of the write-back")
    ap.add_argument("--session-conflicts", type=int, default=600, help="conflicting events in one session")
    ap.add_argument("--processes", type=int, default=4, help="processes of the shared-key run")
    ap.add_argument("--appends", type=int, default=500, help="outage appends per process (shared key)")
    ap.add_argument(
        "--only",
        choices=["faults", "conflicts", "shared-key", "wait-cost", "sentinel", "cluster", "failover"],
        default=None,
    )
    ap.add_argument("--cost-appends", type=int, default=2000, help="appends per setting (wait-cost)")
    ap.add_argument("--writers", type=int, default=8, help="failover scenarios: writers")
    ap.add_argument("--failover-appends", type=int, default=500, help="failover: appends per writer")
    ap.add_argument("--waits", default="0,1", help="REDIS_WAIT_REPLICAS values of the failover scenarios")
    ap.add_argument("--lag", type=float, default=1.0, help="seconds the replica is cut off before a kill")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    result = asyncio.run(main_async(a))
    if a.json:
        print(json.dumps(result, indent=2))
        return
    for k, v in result.items():
        print(f"{k:22} {v}")


if __name__ == "__main__":
    main()
