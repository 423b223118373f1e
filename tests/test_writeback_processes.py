"""Write-back with the merge rule across real OS processes (issue 9): 4 processes append to one shared
session through FallbackSessionService while the server is killed and restarted.

Disjoint deltas: every acknowledged append is in Redis afterwards and nothing is reported.  Overlapping
deltas: only events writing the key another process also wrote are reported, each naming that key, and
every acknowledged event is either stored once or reported, never both, never lost.  Shared key under
``stale_policy="lww"`` (every turn writes ``user:last``, issue 17 item 4): every acknowledged append is
stored, nothing is reported, and ``user:last`` holds the value of the latest-timestamped write.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import pytest
from google.adk.errors import StaleSessionError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions

from adk_redis import FallbackSessionService, RedisSessionService, load_settings

from .servers import RedisServer

PROCESSES = 4
SECONDS = 3.0
FAST = {"redis_connect_timeout": 0.2, "redis_socket_timeout": 1.0, "redis_retry_attempts": 1}


def writer(url: str, prefix: str, wid: int, sync: str, mode: str) -> dict[str, Any]:
    """Append for SECONDS through one session object; reload only after a rejection."""

    async def main() -> dict[str, Any]:
        Path(sync, f"ready{wid}").touch()
        go = Path(sync, "go")
        while not go.exists():
            await asyncio.sleep(0.01)
        start_at = float(go.read_text() or "0")
        settings = load_settings(redis_url=url, redis_operation_timeout=0.5, **FAST)
        policy = "lww" if mode == "shared_lww" else "merge"
        redis = RedisSessionService(settings=settings, key_prefix=prefix, stale_policy=policy)
        svc = FallbackSessionService(redis, failure_threshold=1, health_check_interval=0.1)
        session = await svc.get_session(app_name="app", user_id="u", session_id="shared")
        assert session is not None
        acked: list[str] = []
        rejected = 0
        j = 0
        while time.time() < start_at + SECONDS:
            delta: dict[str, Any] = {f"w{wid}": j}
            if mode == "overlapping" and j % 4 == 0:
                delta["shared"] = f"{wid}-{j}"
            if mode == "shared_lww":
                delta["user:last"] = f"{wid}-{j}"
            event = Event(author=f"w{wid}", invocation_id="inv", actions=EventActions(state_delta=delta))
            try:
                await svc.append_event(session, event)
                acked.append(event.id)
            except StaleSessionError:  # after recovery the object may be behind storage: reload
                rejected += 1
                fresh = await svc.get_session(app_name="app", user_id="u", session_id="shared")
                assert fresh is not None
                session = fresh
            j += 1
            await asyncio.sleep(0.01)
        closed = await svc.wait_closed(20)
        out = {
            "acked": acked,
            "rejected": rejected,
            "closed": closed,
            "conflicts": [(c.event.id if c.event else None, list(c.keys)) for c in svc.conflicts],
            "failed": len(svc.failed),
            "written_back": svc.written_back,
        }
        await svc.close()
        return out

    return asyncio.run(main())


def _run(args: tuple[str, str, int, str, str]) -> dict[str, Any]:
    return writer(*args)


@pytest.mark.parametrize("mode", ["disjoint", "overlapping", "shared_lww"])
def test_processes_write_back_on_top_of_each_other(prefix: str, mode: str, tmp_path: Path) -> None:
    server = RedisServer(args=["--appendonly", "yes", "--appendfsync", "always"]).start()
    try:

        async def setup() -> None:
            svc = RedisSessionService(server.url, key_prefix=prefix)
            await svc.create_session(app_name="app", user_id="u", session_id="shared")
            await svc.close()

        asyncio.run(setup())
        ctx = mp.get_context("spawn")
        with ctx.Pool(PROCESSES) as pool:
            pending = pool.map_async(
                _run, [(server.url, prefix, w, str(tmp_path), mode) for w in range(PROCESSES)]
            )
            deadline = time.monotonic() + 60
            while len(list(tmp_path.glob("ready*"))) < PROCESSES:  # every worker has imported ADK
                assert time.monotonic() < deadline, "workers did not start"
                time.sleep(0.02)
            start_at = time.time() + 0.2
            (tmp_path / "go.tmp").write_text(repr(start_at))
            (tmp_path / "go.tmp").rename(tmp_path / "go")
            time.sleep(max(0.0, start_at - time.time()) + 0.8)
            server.kill()  # the workers fail over, each to its own memory
            time.sleep(1.0)
            server.start()
            results = pending.get(timeout=90)

        async def stored() -> tuple[list[str], dict[str, Any], str | None]:
            svc = RedisSessionService(server.url, key_prefix=prefix)
            got = await svc.get_session(app_name="app", user_id="u", session_id="shared")
            await svc.close()
            assert got is not None
            writes = [e for e in got.events if e.actions and "user:last" in (e.actions.state_delta or {})]
            latest = max(writes, key=lambda e: e.timestamp, default=None)  # ties: none in practice
            last = latest.actions.state_delta["user:last"] if latest is not None else None
            return [e.id for e in got.events], got.state, last

        ids, state, latest_last = asyncio.run(stored())
    finally:
        server.stop()
    assert all(r["closed"] and r["failed"] == 0 for r in results), results
    assert sum(r["written_back"] for r in results) >= 1, [
        (len(r["acked"]), r["rejected"], r["written_back"]) for r in results
    ]
    assert len(ids) == len(set(ids))  # nothing stored twice
    stored_ids = set(ids)
    conflicted = {eid for r in results for eid, _ in r["conflicts"]}
    acked = [eid for r in results for eid in r["acked"]]
    if mode == "shared_lww":
        assert not conflicted and all(r["rejected"] == 0 for r in results), results
        assert set(acked) <= stored_ids  # every acknowledged append stored, none parked
        assert state["user:last"] == latest_last  # the latest timestamp's value
        return
    if mode == "disjoint":
        # The objects memory served are caught up to Redis after the write-back: no rejection either.
        assert all(r["rejected"] == 0 for r in results), results
        assert not conflicted
        assert set(acked) <= stored_ids  # every acknowledged append is in Redis
        assert all(f"w{w}" in state for w, r in enumerate(results) if r["acked"])
        return
    assert conflicted  # the outage's "shared" writes of one process clash with another's
    assert all(keys == ["shared"] for r in results for _, keys in r["conflicts"])
    assert not (conflicted & stored_ids)  # reported, or stored: never both
    assert set(acked) <= stored_ids | conflicted  # and never lost
