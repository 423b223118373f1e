"""Memory generation across processes and failures: kill -9 of a worker mid-job, Redis restarted."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

from google.adk.events.event import Event
from google.genai import types

from adk_redis.memory import MemoryGenerator, RedisMemoryService
from adk_redis.testing import FactReplayModel
from tests.memory_helpers import drop_prefix
from tests.servers import RedisServer

APP = "gen"


def ev(eid: str, said: str, ts: float) -> Event:
    return Event(
        id=eid,
        author="user",
        invocation_id=eid,
        timestamp=ts,
        content=types.Content(role="user", parts=[types.Part(text=said)]),
    )


async def queue_jobs(svc: RedisMemoryService, jobs: int, users: int) -> list[str]:
    """``jobs`` jobs of two events each, spread over ``users`` users; returns the expected fact texts."""
    expected: list[str] = []
    for n in range(jobs):
        user = f"u{n % users}"
        events = [
            ev(f"j{n}e{k}", f"job {n} event {k} topic{n}x{k}", 1_700_000_000 + n * 10 + k) for k in range(2)
        ]
        await svc.add_events_to_memory(app_name=APP, user_id=user, session_id=f"s{n}", events=events)
        expected += [f"user said: job {n} event {k} topic{n}x{k}" for k in range(2)]
    return expected


async def all_fact_texts(svc: RedisMemoryService, users: int) -> list[str]:
    out: list[str] = []
    for u in range(users):
        for f in await svc.list_facts(app_name=APP, user_id=f"u{u}"):
            assert f.content is not None and f.content.parts
            out.append(f.content.parts[0].text or "")
    return out


def worker(url: str, prefix: str, name: str, idle_exit: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adk_redis.admin.cli",
            "memory",
            "worker",
            "--url",
            url,
            "--prefix",
            prefix,
            "--model-factory",
            "tests.memgen_models:slow_replay",
            "--visibility-timeout",
            "1.5",
            "--lock-ttl",
            "3",
            "--consumer",
            name,
            "--idle-exit",
            str(idle_exit),
            "--embedder-factory",
            "tests.memgen_models:hashing_embedder",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )


async def test_two_worker_processes_one_killed_mid_job(redis_url: str, prefix: str) -> None:
    gen = MemoryGenerator(FactReplayModel())
    svc = RedisMemoryService(redis_url, key_prefix=prefix, generator=gen, generator_worker=False)
    users, jobs = 4, 10
    try:
        expected = await queue_jobs(svc, jobs, users)
        a = worker(redis_url, prefix, "A", 30)
        b = worker(redis_url, prefix, "B", 3)
        try:
            # kill A while it holds a job (pending under its consumer name, not yet acknowledged)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                rows = await svc.client.xpending_range(svc.keys.generation_jobs(), "generators", "-", "+", 10)
                if any(r["consumer"] in (b"A-0", "A-0") for r in rows):
                    stats = await svc.generation_stats()
                    if stats.get("jobs_done", 0) >= 1:
                        break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("worker A never took a job")
            a.send_signal(signal.SIGKILL)
            a.wait(10)
            out, err = await asyncio.to_thread(b.communicate, timeout=90)
            assert b.returncode == 0, err.decode()[-2000:]
        finally:
            for p in (a, b):
                if p.poll() is None:
                    p.kill()
                    p.wait(10)
        texts = await all_fact_texts(svc, users)
        assert sorted(texts) == sorted(expected)  # every job applied, no fact twice
        stats = await svc.generation_stats()
        assert stats["queued_now"] == 0 and stats["pending"] == 0 and stats["dead_now"] == 0
        assert stats["jobs_done"] == jobs  # each job's actions applied exactly once
        assert stats["jobs_reclaimed"] >= 1  # B took over the job A was killed in
        for u in range(users):
            ik = svc.keys.user_memory_index(APP, f"u{u}")
            for f in await svc.list_facts(app_name=APP, user_id=f"u{u}"):
                assert (f.custom_metadata or {})["revision"] == 1
                # the workers' --embedder-factory gave every fact a vector
                assert await svc.client.hexists(ik.vectors, f.id) or await svc.client.exists(ik.vector_set)
    finally:
        await drop_prefix(svc.client, prefix)
        await svc.close()


async def test_jobs_resume_after_a_redis_restart(prefix: str) -> None:
    server = RedisServer(args=["--appendonly", "yes", "--appendfsync", "always"]).start()
    try:
        gen = MemoryGenerator(FactReplayModel(delay=0.05), backoff=0.05)
        svc = RedisMemoryService(server.url, key_prefix=prefix, generator=gen)
        try:
            expected = await queue_jobs(svc, 12, 3)
            deadline = time.monotonic() + 20
            while (await svc.generation_stats()).get("jobs_done", 0) < 2:
                assert time.monotonic() < deadline, "no job done before the restart"
                await asyncio.sleep(0.02)
            await asyncio.to_thread(server.restart)
            assert await svc.flush(timeout=40)
            assert sorted(await all_fact_texts(svc, 3)) == sorted(expected)
            stats = await svc.generation_stats()
            assert stats["queued_now"] == 0 and stats["dead_now"] == 0
        finally:
            await svc.close()
    finally:
        server.kill()
        server.stop()
