"""Durable writes: a write, then ``WAIT`` (and ``WAITAOF``) for it, on one connection, in one round trip.

Redis replicates asynchronously: a primary acknowledges a write before any replica has it, and a
primary killed at that moment loses it when a replica is promoted.  With ``REDIS_WAIT_REPLICAS=n``
the session and memory services send every acknowledged write as one pipeline on one connection::

    EVALSHA <write script> ...        (or the write's commands)
    SET <prefix>:wait:{<slot tag>} 1 PX 60000
    WAIT n <REDIS_WAIT_TIMEOUT_MS>
    WAITAOF 1 0 <REDIS_WAIT_TIMEOUT_MS>   (Redis >= 7.2 with appendonly yes, REDIS_WAIT_AOF)

``WAIT`` counts the replicas that acknowledged the connection's last *propagated* write.  A write
that changed nothing (an idempotent retry of an append the primary already has, maybe not its
replicas) propagates nothing, so the small barrier ``SET`` in the same hash slot moves the
connection's offset past the data whatever the script did.  When fewer than ``n`` replicas answer
within the timeout, :class:`~adk_redis.errors.DurabilityError` is raised: the write is on the
primary, not confirmed on replicas; retrying the same call is safe and confirms it.

On a Cluster the batch goes to the primary owning the key's slot (one connection of that node),
following ``MOVED`` / ``ASK`` (with ``ASKING``) / ``TRYAGAIN`` / ``CLUSTERDOWN`` itself, since a
``WAIT`` answered by another connection or node than the write's would confirm nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    NoScriptError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..config import RedisSettings
from ..errors import DurabilityError, RedisOutcomeUnknownError, RedisUnavailableError
from ..keys import KeySchema
from .connection import LoopLocalClient, _within, is_cluster, typed_error, unavailable_kind

logger = logging.getLogger("adk_redis.durability")

#: Lifetime of a barrier key (it is rewritten by every durable write of its slot).
BARRIER_TTL_MS = 60_000
_REDIRECTS = (MovedError, AskError, TryAgainError, ClusterDownError)
_MAX_REDIRECTS = 32  # per call; each TRYAGAIN / CLUSTERDOWN waits first (the deadline bounds the rest)


class Call:
    """One command of a durable batch (``args`` as sent); ``source``: the script of an ``EVALSHA``."""

    __slots__ = ("args", "source")

    def __init__(self, args: tuple[Any, ...], source: str | bytes | None = None) -> None:
        self.args = args
        self.source = source


class Recorder:
    """Stands in for a client when a redis-py script is called with ``client=recorder``: the
    ``EVALSHA`` is recorded as a :class:`Call` (for :meth:`Durability.execute`), not sent."""

    def __init__(self, *scripts: Any) -> None:
        self._sources = {script.sha: script.script for script in scripts}
        self.calls: list[Call] = []

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> None:
        self.calls.append(Call(("EVALSHA", sha, numkeys, *keys_and_args), self._sources.get(sha)))


class Durability:
    """The replica wait of one service's writes (``REDIS_WAIT_REPLICAS``, ``REDIS_WAIT_TIMEOUT_MS``,
    ``REDIS_WAIT_AOF``); :attr:`enabled` is False with the default ``REDIS_WAIT_REPLICAS=0``."""

    def __init__(self, client: Any, settings: RedisSettings, keys: KeySchema) -> None:
        self.client = client
        self.keys = keys
        self.replicas = settings.redis_wait_replicas
        self.timeout_ms = settings.redis_wait_timeout_ms
        self.wait_aof = settings.redis_wait_aof
        self.deadline = settings.redis_operation_timeout or None
        self.attempts = settings.redis_retry_attempts + 1
        #: WAITAOF usable, per server ("" = the standalone / Sentinel client's server); decided by the
        #: first reply (an error reply: not supported, or appendonly is off).
        self._aof: dict[str, bool] = {}
        #: Counters: writes confirmed, DurabilityErrors raised, redirects followed, batches resent.
        self.stats = {"confirmed": 0, "unconfirmed": 0, "redirects": 0, "resent": 0}

    @property
    def enabled(self) -> bool:
        return self.replicas > 0

    @staticmethod
    def script(script: Any, keys: Sequence[Any], args: Sequence[Any]) -> Call:
        """An ``EVALSHA`` of a registered redis-py script (loaded again on ``NOSCRIPT``)."""
        return Call(("EVALSHA", script.sha, len(keys), *keys, *args), script.script)

    @staticmethod
    def command(*args: Any) -> Call:
        return Call(args)

    async def execute(self, calls: Sequence[Call], *, route_key: str, what: str) -> list[Any]:
        """Run ``calls`` (keys of one hash slot, that of ``route_key``), then the replica wait.

        Returns one reply per call, error replies as exception instances (the caller raises them; no
        replica wait is judged then).

        Raises:
          DurabilityError: every call succeeded but fewer replicas than asked confirmed them.
        """
        barrier = self.keys.wait_barrier(route_key)
        if is_cluster(self.client):
            cluster = self.client.current if isinstance(self.client, LoopLocalClient) else self.client
            sent = _Sent()
            try:
                return await _within(
                    self._cluster(cluster, calls, route_key, barrier, what, sent), self.deadline
                )
            except DurabilityError:
                raise
            except Exception as exc:
                # The batch was sent to the slot owner by hand (not through the proxy's typed errors): a
                # failure is an outage, and the write's outcome unknown when a batch may have been
                # applied (lost on the wire, or cut by the deadline in flight); a batch every node
                # refused (CLUSTERDOWN, TRYAGAIN) or never sent (no slot map) was not applied.
                typed = typed_error(exc, what=what)
                known = isinstance(typed, RedisOutcomeUnknownError)
                if isinstance(typed, RedisUnavailableError) and not known and sent.maybe_applied:
                    typed = RedisOutcomeUnknownError(
                        f"{typed}; the write may have landed, and retrying the same call is safe",
                        kind=typed.kind,
                    )
                if typed is exc:
                    raise
                raise typed from exc
        return await self._single(calls, barrier, what)

    async def confirm(self, *route_keys: str, what: str) -> None:
        """The replica wait alone, for writes already acknowledged by the primary (multi-step
        operations: ``forget_user``, deleting a user-context document): the barrier ``SET`` and ``WAIT``
        on the primary of each ``route_keys``' slot (one on a standalone or Sentinel primary).

        A primary's replication stream is ordered, so replicas that acknowledge the barrier also have
        every write it answered before; one round trip per primary.  No-op unless :attr:`enabled`.

        Raises:
          DurabilityError: fewer replicas than asked confirmed them.
        """
        if not self.enabled or not route_keys:
            return
        if not is_cluster(self.client):
            await self.execute([], route_key=route_keys[0], what=what)
            return
        from redis.crc import key_slot

        seen: set[int] = set()
        for key in route_keys:
            slot = key_slot(key.encode())
            if slot not in seen:
                seen.add(slot)
                await self.execute([], route_key=key, what=what)

    # -- the replica wait's commands and their replies -------------------------------------------
    def _tail(self, barrier: str, server: str) -> list[tuple[Any, ...]]:
        tail: list[tuple[Any, ...]] = [
            ("SET", barrier, "1", "PX", BARRIER_TTL_MS),
            ("WAIT", self.replicas, self.timeout_ms),
        ]
        if self.wait_aof and self._aof.get(server, True):
            tail.append(("WAITAOF", 1, 0, self.timeout_ms))
        return tail

    def _judge(self, results: Sequence[Any], tail: Sequence[Any], server: str, what: str) -> None:
        """Raise DurabilityError unless the tail's replies confirm the (successful) calls."""
        if any(isinstance(r, Exception) for r in results):
            return  # the write itself failed: the caller raises its error
        barrier, waited, *aof = tail
        if isinstance(barrier, Exception) or isinstance(waited, Exception):
            self.stats["unconfirmed"] += 1
            failed = barrier if isinstance(barrier, Exception) else waited
            raise DurabilityError(
                f"{what}: applied on the primary, but the replica wait failed ({failed}); "
                "retrying the same call is safe",
                requested=self.replicas,
            )
        acknowledged = int(waited)
        fsynced = True
        if aof:
            reply = aof[0]
            if isinstance(reply, Exception):  # no WAITAOF (Redis < 7.2) or appendonly off: decided once
                if self._aof.get(server, True):
                    logger.info("WAITAOF not used on %s: %s", server or "the server", reply)
                self._aof[server] = False
            else:
                fsynced = int(reply[0]) >= 1
        if acknowledged < self.replicas or not fsynced:
            self.stats["unconfirmed"] += 1
            detail = (
                f"{acknowledged} of {self.replicas} replica(s) confirmed it within {self.timeout_ms} ms"
                if acknowledged < self.replicas
                else f"the primary did not fsync its AOF within {self.timeout_ms} ms"
            )
            raise DurabilityError(
                f"{what}: applied on the primary, but {detail} (REDIS_WAIT_REPLICAS); it may be lost "
                "if the primary fails now. Retrying the same call is safe and confirms it.",
                requested=self.replicas,
                acknowledged=acknowledged,
                fsynced=fsynced,
            )
        self.stats["confirmed"] += 1

    # -- standalone and Sentinel: a redis-py pipeline (one connection) -----------------------------
    async def _single(self, calls: Sequence[Call], barrier: str, what: str) -> list[Any]:
        for _ in range(3):  # NOSCRIPT: load, send again (the script did not run)
            tail = self._tail(barrier, "")
            pipe = self.client.pipeline(transaction=False)
            for call in calls:
                pipe.execute_command(*call.args)
            for command in tail:
                pipe.execute_command(*command)
            # redis-py resends the whole pipeline after a connection error: safe, every call is
            # idempotent, and the barrier makes the WAIT cover what the first attempt wrote.
            replies = await pipe.execute(raise_on_error=False)
            results = list(replies[: len(calls)])
            missing = {c.source for c, r in zip(calls, results) if isinstance(r, NoScriptError) and c.source}
            if missing:
                for source in missing:
                    await self.client.script_load(source)
                continue
            self._judge(results, replies[len(calls) :], "", what)
            return results
        raise NoScriptError(f"{what}: the script is not loaded (SCRIPT LOAD did not stick)")

    # -- Redis Cluster: the slot owner's connection, redirects followed here -------------------
    async def _cluster(
        self, cluster: Any, calls: Sequence[Call], route_key: str, barrier: str, what: str, sent: _Sent
    ) -> list[Any]:
        if not cluster.nodes_manager.slots_cache:
            await cluster.initialize()
        results: list[Any] = [None] * len(calls)
        pending = list(range(len(calls)))  # calls not yet confirmed
        node = cluster.get_node_from_key(route_key)
        asking = False
        failures = redirects = 0
        while True:
            tail = self._tail(barrier, node.name)
            batch: list[tuple[Any, ...]] = []
            for command in [calls[i].args for i in pending] + tail[:1]:
                if asking:
                    batch.append(("ASKING",))
                batch.append(command)
            batch += tail[1:]
            sent.in_flight = True
            try:
                replies = await _send(node, batch)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                # Outcome unknown (unless the connection was refused): send every pending call again
                # (idempotent) once routing is fresh.
                found = unavailable_kind(exc)
                sent.lost = sent.lost or found is None or found[0] != "refused"
                sent.in_flight = False
                failures += 1
                if failures >= self.attempts:
                    raise
                self.stats["resent"] += 1
                await asyncio.sleep(min(2.0, 0.05 * 2**failures))
                await _resync(cluster, route_key)
                node, asking = cluster.get_node_from_key(route_key), False
                continue
            sent.in_flight = False
            if asking:
                replies = [r for n, r in enumerate(replies) if n % 2 == 1 or n >= 2 * (len(pending) + 1)]
            got = replies[: len(pending)]
            tail_replies = replies[len(pending) :]
            redirect = next((r for r in [*got, tail_replies[0]] if isinstance(r, _REDIRECTS)), None)
            if not calls and redirect is None:  # confirm(): the barrier and the WAIT alone
                self._judge([], tail_replies, node.name, what)
                return results
            unloaded = {calls[i].source for i, r in zip(pending, got) if isinstance(r, NoScriptError)}
            ran = [i for i, r in zip(pending, got) if not isinstance(r, (*_REDIRECTS, NoScriptError))]
            for i, r in zip(pending, got):
                if i in ran:
                    results[i] = r
            if ran:
                if isinstance(tail_replies[0], _REDIRECTS):
                    # The calls ran here but the barrier went elsewhere (its slot is being migrated):
                    # the WAIT cannot vouch for a call that changed nothing.
                    self.stats["unconfirmed"] += 1
                    raise DurabilityError(
                        f"{what}: applied on the primary, but its slot is being migrated and the "
                        "replica wait could not be confirmed; retrying the same call is safe",
                        requested=self.replicas,
                    )
                self._judge([results[i] for i in ran], tail_replies, node.name, what)
            pending = [i for i in pending if i not in ran]
            if not pending and calls:
                return results
            for source in unloaded:
                if source:
                    (loaded,) = await _send(node, [("SCRIPT", "LOAD", source)])
                    if isinstance(loaded, Exception):
                        raise loaded
            if redirect is None:
                continue  # NOSCRIPT only: same node
            redirects += 1
            self.stats["redirects"] += 1
            if redirects > _MAX_REDIRECTS:
                raise redirect
            if isinstance(redirect, AskError):
                target = cluster.get_node(host=redirect.host, port=redirect.port)
                if target is not None:
                    node, asking = target, True
                    continue
            if isinstance(redirect, (TryAgainError, ClusterDownError)):
                await asyncio.sleep(min(0.5, 0.02 * redirects))
            if isinstance(redirect, (MovedError, AskError, ClusterDownError)):
                await _resync(cluster, route_key)  # redis-py follows MOVED and updates its slot map
            node, asking = cluster.get_node_from_key(route_key), False


class _Sent:
    """Whether a cluster write's batch may have been applied: a batch's replies were lost (``lost``) or
    one was awaiting its replies when the deadline cut it (``in_flight``)."""

    __slots__ = ("in_flight", "lost")

    def __init__(self) -> None:
        self.lost = False
        self.in_flight = False

    @property
    def maybe_applied(self) -> bool:
        return self.lost or self.in_flight


async def _send(node: Any, batch: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Send ``batch`` on one connection of cluster ``node``; replies, error replies as instances.

    A connection that fails (or is cancelled) mid-batch is dropped, never reused with unread replies.
    """
    conn = node.acquire_connection()
    try:
        await conn.send_packed_command(conn.pack_commands(batch))
        replies: list[Any] = []
        for _ in batch:
            try:
                replies.append(await conn.read_response())
            except ResponseError as exc:
                replies.append(exc)
        return replies
    except BaseException:
        with contextlib.suppress(Exception):
            await asyncio.shield(conn.disconnect())
        raise
    finally:
        node.release(conn)


async def _resync(cluster: Any, route_key: str) -> None:
    """Let redis-py bring its slot map up to date for ``route_key`` (a keyed read: it follows MOVED,
    refreshes after connection errors); its failure is left to the next attempt."""
    with contextlib.suppress(Exception):
        await cluster.execute_command("EXISTS", route_key)
