"""Writers appending under a fault (failover, resharding): the load of tests/test_failover.py and
bench/faults.py.

Each writer owns one session (its own user id, so on a Cluster the sessions spread over slots) and its
own service, and appends ``appends`` events one after the other.  A failed append is retried with the
*same* event (appends are idempotent per event id) until it is acknowledged or ``give_up_s`` passes.
Afterwards a fresh service reads every session: acknowledged / stored / lost are counted per event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis
from google.adk.errors._stale_session_error import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions

from adk_redis import RedisSessionService
from adk_redis.errors import AdkRedisError

from .servers import RedisServer, SentinelTopology, cluster_node_id

APP = "failover"


def event(writer: int, n: int) -> Event:
    return Event(
        id=f"w{writer}-e{n}",
        author="agent",
        invocation_id=f"inv{n}",
        actions=EventActions(state_delta={"n": n, f"w{writer}": n}),
    )


@dataclass
class LoadResult:
    writers: int
    appends: int
    acknowledged: set[str] = field(default_factory=set)
    ack_times: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, event id)
    errors: Counter[str] = field(default_factory=Counter)  # exception class name -> count
    raw_errors: Counter[str] = field(default_factory=Counter)  # not an adk_redis error
    error_objects: list[BaseException] = field(default_factory=list)  # the first 200
    sessions_lost: int = 0  # a writer's session vanished (SessionNotFoundError): it stopped
    stale_reloads: int = 0  # StaleSessionError after a failover lost acknowledged appends: reloaded
    gave_up: int = 0  # appends never acknowledged within give_up_s
    stored: set[str] = field(default_factory=set)
    duplicates: int = 0
    fault_at: float | None = None
    recovered_at: float | None = None  # every writer had an acknowledgement after the fault
    first_ack_after_fault: float | None = None
    elapsed_s: float = 0.0
    max_gap_s: float = 0.0  # longest time without any acknowledgement
    fault_done_at: float | None = None

    @property
    def acks_after_fault_done(self) -> int:
        """Acknowledgements after the fault ended (the load outlasted it when > 0)."""
        done = self.fault_done_at
        return 0 if done is None else sum(1 for t, _ in self.ack_times if t > done)

    @property
    def lost(self) -> set[str]:
        return self.acknowledged - self.stored

    def summary(self) -> dict[str, Any]:
        fault = self.fault_at
        return {
            "writers": self.writers,
            "appends_per_writer": self.appends,
            "acknowledged": len(self.acknowledged),
            "stored": len(self.stored),
            "lost": len(self.lost),
            "stored_not_acknowledged": len(self.stored - self.acknowledged),
            "duplicates": self.duplicates,
            "gave_up": self.gave_up,
            "sessions_lost": self.sessions_lost,
            "stale_reloads": self.stale_reloads,
            "errors": dict(self.errors),
            "errors_not_from_adk_redis": dict(self.raw_errors),
            "first_ack_after_fault_s": None
            if fault is None or self.first_ack_after_fault is None
            else round(self.first_ack_after_fault - fault, 3),
            "all_writers_recovered_after_s": None
            if fault is None or self.recovered_at is None
            else round(self.recovered_at - fault, 3),
            "longest_gap_without_acks_s": round(self.max_gap_s, 3),
            "fault_took_s": None
            if fault is None or self.fault_done_at is None
            else round(self.fault_done_at - fault, 3),
            "acks_after_fault_done": self.acks_after_fault_done,
            "elapsed_s": round(self.elapsed_s, 2),
        }


async def run_load(
    make_service: Callable[[], RedisSessionService],
    *,
    writers: int,
    appends: int,
    fault: Callable[[list[str]], Awaitable[Any]],
    fault_after: int,
    give_up_s: float = 60.0,
    pause_s: float = 0.0,
) -> LoadResult:
    """``writers`` x ``appends``; ``fault(user_ids)`` is started once the writers acknowledged
    ``fault_after`` appends in total (it runs concurrently with them); returns the counts once
    everything is read back."""
    result = LoadResult(writers, appends)
    user_ids = [f"user{i}-{uuid.uuid4().hex[:6]}" for i in range(writers)]
    services = [make_service() for _ in range(writers)]
    session_ids: list[str | None] = [None] * writers
    last_ack = [0.0] * writers
    start = time.monotonic()
    fault_task: asyncio.Task[Any] | None = None

    def note_error(exc: BaseException) -> None:
        name = type(exc).__name__
        result.errors[name] += 1
        if not isinstance(exc, AdkRedisError):
            result.raw_errors[name] += 1
        if len(result.error_objects) < 200:
            result.error_objects.append(exc)

    async def timed_fault() -> Any:
        try:
            return await fault(user_ids)
        finally:
            result.fault_done_at = time.monotonic()

    def acknowledged(i: int, eid: str) -> None:
        nonlocal fault_task
        now = time.monotonic()
        result.acknowledged.add(eid)
        if result.ack_times:
            result.max_gap_s = max(result.max_gap_s, now - result.ack_times[-1][0])
        last_ack[i] = now
        if fault_task is None and len(result.acknowledged) >= fault_after:
            result.fault_at = now
            fault_task = asyncio.ensure_future(timed_fault())
        result.ack_times.append((now, eid))
        fault_at = result.fault_at
        if fault_at is not None and now > fault_at:
            if result.first_ack_after_fault is None:
                result.first_ack_after_fault = now
            if result.recovered_at is None and all(t > fault_at for t in last_ack):
                result.recovered_at = now

    async def writer(i: int) -> None:
        svc = services[i]
        deadline = time.monotonic() + give_up_s
        session = None
        token = f"s{i}-{uuid.uuid4().hex[:8]}"
        while session is None:
            try:
                session = await svc.create_session(app_name=APP, user_id=user_ids[i], session_id=token)
            except AlreadyExistsError:  # an earlier attempt of ours stored it: read it back
                with contextlib.suppress(Exception):
                    session = await svc.get_session(app_name=APP, user_id=user_ids[i], session_id=token)
                if session is None:
                    await asyncio.sleep(0.05)
            except Exception as exc:  # noqa: BLE001 - counted; retried
                note_error(exc)
                if time.monotonic() > deadline:
                    result.gave_up += appends
                    return
                await asyncio.sleep(0.05)
        session_ids[i] = session.id
        for n in range(appends):
            ev = event(i, n)
            deadline = time.monotonic() + give_up_s
            while True:
                try:
                    await svc.append_event(session, ev)
                    acknowledged(i, ev.id)
                    break
                except SessionNotFoundError as exc:  # its creation was lost in the failover
                    note_error(exc)
                    result.sessions_lost += 1
                    result.gave_up += appends - n
                    return
                except StaleSessionError as exc:
                    # Storage is behind the object: acknowledged appends were lost in the failover.
                    # What an application does: reload, and append the event unless it is stored.
                    note_error(exc)
                    result.stale_reloads += 1
                    fresh = None
                    with contextlib.suppress(Exception):
                        fresh = await svc.get_session(
                            app_name=APP, user_id=user_ids[i], session_id=session.id
                        )
                    if fresh is None:
                        await asyncio.sleep(0.05)
                        continue
                    session = fresh
                    if any(e.id == ev.id for e in fresh.events):
                        acknowledged(i, ev.id)
                        break
                except Exception as exc:  # noqa: BLE001 - counted; retried with the same event
                    note_error(exc)
                    if time.monotonic() > deadline:
                        result.gave_up += 1
                        break
                    await asyncio.sleep(0.05)
            if pause_s:
                await asyncio.sleep(pause_s)

    try:
        await asyncio.gather(*(writer(i) for i in range(writers)))
        if fault_task is not None:
            await fault_task
        result.elapsed_s = time.monotonic() - start
    finally:
        for svc in services:
            await svc.close()
    # Read back (after the fault settled) with a fresh service.
    check = make_service()
    try:
        for i, sid in enumerate(session_ids):
            if sid is None:
                continue
            for _ in range(100):
                try:
                    got = await check.get_session(app_name=APP, user_id=user_ids[i], session_id=sid)
                    break
                except Exception:  # noqa: BLE001 - the topology may still be settling
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("could not read the sessions back")
            if got is None:
                continue
            ids = [e.id for e in got.events]
            result.stored.update(ids)
            result.duplicates += len(ids) - len(set(ids))
    finally:
        await check.close()
    return result


# -- topologies' faults (shared by tests/test_failover.py and bench/faults.py) --------------------------
def load_settings_for(url: str, wait: int, **kw: Any) -> Any:
    """Settings of the writers: short socket timeouts (a dead primary is noticed fast), 3 s deadline."""
    from adk_redis import load_settings

    values: dict[str, Any] = {
        "redis_url": url,
        "redis_socket_timeout": 1.0,
        "redis_connect_timeout": 0.5,
        "redis_operation_timeout": 3.0,
        "redis_retry_attempts": 3,
        "redis_wait_replicas": wait,
        "redis_wait_timeout_ms": 500,
        **kw,
    }
    return load_settings(**values)


@contextlib.contextmanager
def replica_cut_off(primary: RedisServer, replica: RedisServer) -> Iterator[None]:
    """A lagging replica: frozen (SIGSTOP) and its link dropped by the primary (CLIENT KILL TYPE
    replica), so what the primary acknowledges meanwhile exists only there (a frozen replica alone
    would still get it: the kernel buffers the stream).  Resumed at the end; it reconnects."""
    assert replica.proc is not None
    os.kill(replica.proc.pid, signal.SIGSTOP)
    try:
        with primary.client() as c:
            c.execute_command("CLIENT", "KILL", "TYPE", "replica")
        yield
    finally:
        os.kill(replica.proc.pid, signal.SIGCONT)


async def sentinel_kill(
    topology: SentinelTopology,
    *,
    wait: int,
    writers: int,
    appends: int,
    lag_s: float = 0.0,
    rejoin: str = "replicaof",
    give_up_s: float = 60.0,
    pause_s: float = 0.0,
    fault_at: float = 1 / 3,
) -> tuple[LoadResult, dict[str, float]]:
    """kill -9 of the primary ``fault_at`` into the load; with ``lag_s`` its replica is cut off that
    long first (:func:`replica_cut_off`: writes acknowledged meanwhile never reach it).  The killed
    node is restarted once the sentinels promoted the replica: as a replica of the new primary
    (``rejoin="replicaof"``, as a supervisor with the sentinels' rewritten config does) or as it
    was, left to the sentinels to reconfigure (``"sentinel"``)."""
    prefix = f"fo{uuid.uuid4().hex[:6]}"
    settings = load_settings_for(topology.redis_url, wait)
    timings: dict[str, float] = {}

    async def kill_primary(_users: list[str]) -> None:
        old = topology.primary_port()
        victim = topology.server(old)
        replica = next(s for s in topology.servers if s.port != old)
        t0 = time.monotonic()
        if lag_s:
            with replica_cut_off(victim, replica):
                await asyncio.sleep(lag_s)
                victim.kill()
        else:
            victim.kill()
        t_kill = time.monotonic()
        new = await asyncio.to_thread(topology.wait_failover, old)
        timings["promoted_after_kill_s"] = time.monotonic() - t_kill
        if rejoin == "replicaof":
            victim.args = [*victim.args, "--replicaof", "127.0.0.1", str(new)]
        await asyncio.to_thread(victim.start)
        await asyncio.to_thread(topology.wait_replicas, 1, 60)
        timings["replica_back_after_kill_s"] = time.monotonic() - t_kill
        timings["fault_started_s_before_kill"] = t_kill - t0

    result = await run_load(
        lambda: RedisSessionService(settings=settings, key_prefix=prefix),
        writers=writers,
        appends=appends,
        fault=kill_primary,
        fault_after=int(writers * appends * fault_at),
        give_up_s=give_up_s,
        pause_s=pause_s,
    )
    return result, {k: round(v, 3) for k, v in timings.items()}


def user_slot(user: str) -> int:
    """The hash slot of every key of ``user``'s sessions in the load's app."""
    from redis.crc import key_slot

    from adk_redis.keys import KeySchema

    return key_slot(KeySchema("x").session(APP, user, "s").meta.encode())


def alive(nodes: list[RedisServer]) -> RedisServer:
    return next(n for n in nodes if n.proc is not None)


def owner(nodes: list[RedisServer], slot: int) -> RedisServer:
    """The primary serving ``slot`` (CLUSTER SLOTS of a live node)."""
    with alive(nodes).client() as c:
        for start, end, primary, *_ in c.execute_command("CLUSTER", "SLOTS"):
            if int(start) <= slot <= int(end):
                return next(n for n in nodes if n.port == int(primary[1]))
    raise AssertionError(f"slot {slot} is not covered")


def primaries(nodes: list[RedisServer]) -> list[RedisServer]:
    out = []
    for n in nodes:
        if n.proc is None:
            continue
        with n.client() as c:
            if c.info("replication").get("role") == "master":
                out.append(n)
    return out


def replica_of(nodes: list[RedisServer], primary: RedisServer) -> RedisServer:
    with primary.client() as c:
        info = c.info("replication")
    port = int(info["slave0"]["port"])
    return next(n for n in nodes if n.port == port)


def migrate_slot(nodes: list[RedisServer], slot: int, target: RedisServer, key_pause: float = 0.01) -> int:
    """Move ``slot`` to ``target`` as ``redis-cli --cluster reshard`` does (SETSLOT IMPORTING /
    MIGRATING, MIGRATE, SETSLOT NODE everywhere), one key at a time with ``key_pause`` between keys
    (a long window of ASK / TRYAGAIN); returns the keys moved."""
    source = owner(nodes, slot)
    if source is target:
        return 0
    src_id, dst_id = cluster_node_id(source), cluster_node_id(target)
    moved = 0
    with source.client(socket_timeout=10) as src, target.client(socket_timeout=10) as dst:
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        while True:
            keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1)
            if not keys:
                break
            src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
            moved += len(keys)
            time.sleep(key_pause)
        dst.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
    for n in nodes:
        if n.proc is not None and n not in (source, target):
            with n.client() as c, contextlib.suppress(redis.ResponseError):  # replicas learn by gossip
                c.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
    return moved


def _wait_until(cond: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except (redis.RedisError, StopIteration, AssertionError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError("timed out")


def _linked_replica(node: RedisServer) -> bool:
    with node.client() as c:
        info = c.info("replication")
    return info.get("role") == "slave" and info.get("master_link_status") == "up"


def _cluster_service(nodes: list[RedisServer], wait: int, services: list[RedisSessionService]) -> Any:
    prefix = f"fc{uuid.uuid4().hex[:6]}"
    settings = load_settings_for(f"redis+cluster://127.0.0.1:{alive(nodes).port}", wait)

    def make() -> RedisSessionService:
        svc = RedisSessionService(settings=settings, key_prefix=prefix)
        services.append(svc)
        return svc

    return make


async def cluster_kill(
    nodes: list[RedisServer],
    *,
    wait: int,
    writers: int,
    appends: int,
    lag_s: float = 0.0,
    give_up_s: float = 60.0,
    pause_s: float = 0.0,
    fault_at: float = 1 / 4,
) -> tuple[LoadResult, dict[str, float]]:
    """kill -9 of the primary serving the first writer's session, ``fault_at`` into the load (its replica
    cut off ``lag_s`` first); the replica is promoted after ``cluster-node-timeout``; the killed node is
    restarted and rejoins as a replica (its nodes.conf)."""
    timings: dict[str, float] = {}
    services: list[RedisSessionService] = []

    async def kill(users: list[str]) -> None:
        slot = user_slot(users[0])
        victim = owner(nodes, slot)
        replica = replica_of(nodes, victim)
        timings["sessions_on_victim"] = sum(1 for u in users if owner(nodes, user_slot(u)) is victim)
        if lag_s:
            with replica_cut_off(victim, replica):
                await asyncio.sleep(lag_s)
                victim.kill()
        else:
            victim.kill()
        t_kill = time.monotonic()
        await asyncio.to_thread(_wait_until, lambda: owner(nodes, slot) is not victim, 60)
        timings["promoted_after_kill_s"] = time.monotonic() - t_kill
        await asyncio.to_thread(victim.start)
        await asyncio.to_thread(_wait_until, lambda: _linked_replica(victim), 60)
        timings["replica_back_after_kill_s"] = time.monotonic() - t_kill

    result = await run_load(
        _cluster_service(nodes, wait, services),
        writers=writers,
        appends=appends,
        fault=kill,
        fault_after=int(writers * appends * fault_at),
        give_up_s=give_up_s,
        pause_s=pause_s,
    )
    return result, {k: round(v, 3) for k, v in timings.items()}


async def cluster_reshard(
    nodes: list[RedisServer],
    *,
    wait: int,
    writers: int,
    appends: int,
    key_pause: float = 0.02,
    pause_s: float = 0.01,
    give_up_s: float = 60.0,
) -> tuple[LoadResult, dict[str, Any]]:
    """Every writer's slot migrated to the next primary, key by key, while the writers append."""
    services: list[RedisSessionService] = []
    moved: list[int] = []

    async def reshard(users: list[str]) -> None:
        for slot in sorted({user_slot(u) for u in users}):
            prim = primaries(nodes)
            source = owner(nodes, slot)
            target = prim[(prim.index(source) + 1) % len(prim)]
            moved.append(await asyncio.to_thread(migrate_slot, nodes, slot, target, key_pause))

    result = await run_load(
        _cluster_service(nodes, wait, services),
        writers=writers,
        appends=appends,
        fault=reshard,
        fault_after=writers * 5,
        give_up_s=give_up_s,
        pause_s=pause_s,
    )
    info = {
        "slots_moved": len(moved),
        "keys_moved": sum(moved),
        "durable_redirects_followed": sum(s.durability.stats["redirects"] for s in services),
    }
    return result, info
