"""append_event throughput from several processes: a 3-master Redis Cluster vs one node, in one run.

Run: ``.venv/bin/python bench/cluster.py [--procs 4] [--concurrency 16] [--seconds 5] [--json]``

Both topologies are started on free loopback ports for the run (redis-server
on PATH) and stopped afterwards.  Each worker process owns ``concurrency``
sessions (one per user, so they spread over the cluster's slots) and appends
small events with a state delta as fast as it can for ``seconds``.
Also measured: the breaker's switch-over and recovery times of
FallbackSessionService when its server is killed and restarted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import time
import uuid
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from google.adk.events.event import Event  # noqa: E402
from google.adk.events.event_actions import EventActions  # noqa: E402

from adk_redis import RedisSessionService, load_settings  # noqa: E402
from adk_redis.resilience._fallback import BreakerState, FallbackSessionService  # noqa: E402
from tests.servers import RedisServer, redis_cluster  # noqa: E402


async def _worker(url: str, prefix: str, concurrency: int, seconds: float) -> int:
    svc = RedisSessionService(url, key_prefix=prefix)
    sessions = [
        await svc.create_session(app_name="bench", user_id=f"u{os.getpid()}-{i}") for i in range(concurrency)
    ]
    done = 0
    deadline = time.monotonic() + seconds

    async def loop(s: Any) -> None:
        nonlocal done
        n = 0
        while time.monotonic() < deadline:
            ev = Event(author="agent", invocation_id="i", actions=EventActions(state_delta={"n": n}))
            await svc.append_event(s, ev)
            n += 1
        done += n

    await asyncio.gather(*(loop(s) for s in sessions))
    await svc.close()
    return done


def _run_worker(args: tuple[str, str, int, float]) -> int:
    return asyncio.run(_worker(*args))


def throughput(url: str, procs: int, concurrency: int, seconds: float) -> float:
    prefix = f"bc{uuid.uuid4().hex[:6]}"
    with mp.get_context("spawn").Pool(procs) as pool:
        t0 = time.monotonic()
        counts = pool.map(_run_worker, [(url, prefix, concurrency, seconds)] * procs)
        elapsed = time.monotonic() - t0
    del elapsed
    return sum(counts) / seconds


async def breaker_times() -> dict[str, float]:
    """Kill the server under a FallbackSessionService, then restart it; time both switches."""
    server = RedisServer(args=["--appendonly", "yes", "--appendfsync", "always"]).start()
    try:
        settings = load_settings(redis_connect_timeout=0.2, redis_socket_timeout=0.5, redis_retry_attempts=1)
        svc = FallbackSessionService(
            RedisSessionService(server.url, settings=settings, key_prefix="brk"), health_check_interval=0.05
        )
        sessions = [await svc.create_session(app_name="a", user_id=f"u{i}") for i in range(20)]
        server.kill()
        t0 = time.monotonic()
        i = 0
        while svc.state is not BreakerState.OPEN:
            s = sessions[i % len(sessions)]
            await svc.append_event(s, Event(author="x", invocation_id="i"))
            i += 1
        opened = time.monotonic() - t0
        t1 = time.monotonic()
        await svc.append_event(sessions[0], Event(author="x", invocation_id="i"))
        open_op = time.monotonic() - t1
        t2 = time.monotonic()
        server.start()
        restarted = time.monotonic() - t2
        ok = await svc.wait_closed(30)
        recovered = time.monotonic() - t2
        await svc.close()
        assert ok
        return {
            "breaker_open_after_s": opened,
            "ops_until_open": i,
            "op_while_open_ms": open_op * 1000,
            "server_restart_s": restarted,
            "closed_after_restart_s": recovered,
            "written_back": svc.written_back,
        }
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    single = RedisServer(args=["--appendonly", "no"]).start()
    try:
        single_rate = throughput(single.url, a.procs, a.concurrency, a.seconds)
    finally:
        single.stop()
    with redis_cluster(3) as nodes:
        cluster_rate = throughput(
            f"redis+cluster://127.0.0.1:{nodes[0].port}", a.procs, a.concurrency, a.seconds
        )
    result: dict[str, Any] = {
        "procs": a.procs,
        "concurrency_per_proc": a.concurrency,
        "cpus": os.cpu_count(),
        "single_node_appends_per_s": round(single_rate),
        "cluster_3_masters_appends_per_s": round(cluster_rate),
        "cluster_over_single": round(cluster_rate / single_rate, 2),
        "breaker": {k: round(v, 4) for k, v in asyncio.run(breaker_times()).items()},
    }
    if a.json:
        print(json.dumps(result, indent=2))
        return
    for k, v in result.items():
        print(f"{k:34} {v}")


if __name__ == "__main__":
    main()
