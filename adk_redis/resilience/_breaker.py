"""The resilience core: what "Redis is unavailable" means, a circuit breaker with a call API, one ordered
write-back journal and one health loop.

Every fallback in adk_redis is built from it (the session and memory services in
:mod:`adk_redis.resilience._fallback`, the design API's store in :mod:`adk_redis.store._fallback`);
none of them catches connection errors itself::

    core = Resilience(redis.ping, failure_threshold=3, health_check_interval=5.0)
    value = await core.call("get_session", lambda: redis.get(...), lambda: memory.get(...))
    core.defer(key, "append", replay)      # a write served by memory, replayed on Redis later

Routing (:meth:`Resilience.call`):

* breaker **closed**: the Redis function runs; an *unavailable* error (:data:`UNAVAILABLE_ERRORS`: a
  refused or reset connection, a timeout, a deadline expired in :mod:`adk_redis._core.connection`) is counted
  and the memory function serves the call instead;
* ``failure_threshold`` consecutive failures **open** the breaker: every call is served by memory at once;
* the health loop PINGs Redis every ``health_check_interval`` seconds while the breaker is not closed or
  writes wait; when Redis answers the breaker is **half-open** while the journal is replayed in order,
  then it **closes**.

Write-back never stops on a record: an entry whose replay raises anything but an unavailable error is set
aside in :attr:`Resilience.failed` with the reason (and, when the writer provides one, the record, e.g. the
memory copy of a session), logged, and the replay goes on with the next entry.  The health loop survives
any error of its own; every such restart is counted in the stats (``health_restarts``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import socket
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..errors import RedisUnavailableError

logger = logging.getLogger("adk_redis.resilience")

T = TypeVar("T")

#: The one definition of "Redis is unavailable" (everything else is an answer, and propagates).
#: ``RedisUnavailableError`` (a deadline expired in :mod:`adk_redis._core.connection`) is a ConnectionError.
#: Deliberately not ``OSError`` as a whole: a ``PermissionError`` (NOPERM, a wrong user in the design
#: API) or a missing file is an answer, not an outage.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    RedisClusterException,
    ConnectionError,
    TimeoutError,
    asyncio.TimeoutError,
    socket.gaierror,
)

#: Consecutive unavailable errors of one journal entry, right after Redis answered a PING, after which the
#: entry is set aside (a record too big to write within the deadline must not block the others forever).
MAX_ENTRY_ATTEMPTS = 5

#: Journal entries of distinct records written back at the same time.
REPLAY_PARALLELISM = 32


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means Redis could not be reached (or did not answer within the deadline)."""
    return isinstance(exc, UNAVAILABLE_ERRORS)


async def reachable(probe: Callable[[], Awaitable[Any]]) -> bool:
    """Run ``probe`` (a PING); False when Redis is unavailable."""
    try:
        await probe()
    except UNAVAILABLE_ERRORS:
        return False
    return True


class BreakerState(str, enum.Enum):
    """State of a :class:`CircuitBreaker`."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    """Counts consecutive failures; opens at ``failure_threshold``."""

    failure_threshold: int = 3
    state: BreakerState = BreakerState.CLOSED
    consecutive_failures: int = 0
    times_opened: int = 0
    opened_at: float | None = None
    closed_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None

    def record_success(self) -> None:
        self.consecutive_failures = 0

    def record_failure(self, exc: BaseException) -> bool:
        """Count a failure; True when this failure opened the breaker."""
        self.consecutive_failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        self.last_error_at = time.time()
        if self.state is not BreakerState.OPEN and self.consecutive_failures >= self.failure_threshold:
            self.open()
            return True
        return False

    def open(self) -> None:
        if self.state is not BreakerState.OPEN:
            if self.state is BreakerState.CLOSED:
                self.times_opened += 1
                self.opened_at = time.monotonic()
            self.state = BreakerState.OPEN

    def half_open(self) -> None:
        self.state = BreakerState.HALF_OPEN

    def close(self) -> None:
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.closed_at = time.monotonic()


@dataclass
class JournalEntry:
    """One write served by memory, to be replayed on Redis."""

    key: Hashable
    """The record it writes (per-record pending checks, de-duplication, reports)."""
    op: str
    replay: Callable[[], Awaitable[Any]]
    set_aside: Callable[[BaseException], Any] | None = None
    """Called when the replay failed for good: drop memory's copy, return the record to report."""
    attempts: int = 0


@dataclass
class FailedWrite:
    """A journal entry that could not be written back (set aside; the replay went on)."""

    key: Hashable
    op: str
    reason: str
    record: Any = field(default=None, repr=False)
    at: float = field(default_factory=time.time)


class Journal:
    """Writes waiting for Redis, in the order they were made."""

    def __init__(self) -> None:
        self._entries: deque[JournalEntry] = deque()
        self._keys: Counter[Hashable] = Counter()

    def add(self, entry: JournalEntry, *, once: bool = False) -> bool:
        """Queue ``entry``; with ``once``, not when an entry for the same record waits already."""
        if once and self._keys[entry.key]:
            return False
        self._entries.append(entry)
        self._keys[entry.key] += 1
        return True

    def discard(self, key: Hashable) -> None:
        """Drop the waiting entries of ``key``."""
        if self._keys[key]:
            for entry in [e for e in self._entries if e.key == key]:
                self.remove(entry)

    def remove(self, entry: JournalEntry) -> None:
        try:
            self._entries.remove(entry)
        except ValueError:
            return
        self._keys[entry.key] -= 1
        if self._keys[entry.key] <= 0:
            del self._keys[entry.key]

    def head(self, limit: int) -> list[JournalEntry]:
        """The first entries, up to ``limit``, stopping before a record already among them."""
        batch: list[JournalEntry] = []
        seen: set[Hashable] = set()
        for entry in self._entries:
            if entry.key in seen or len(batch) >= limit:
                break
            seen.add(entry.key)
            batch.append(entry)
        return batch

    def pending(self, key: Hashable) -> bool:
        """True while an entry of ``key`` waits."""
        return self._keys[key] > 0

    def records(self) -> set[Hashable]:
        return set(self._keys)

    def count(self, op: str) -> int:
        return sum(1 for e in self._entries if e.op == op)

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)


class Resilience:
    """Circuit breaker + journal + health loop around one Redis (see the module docstring).

    Args:
      ping: a coroutine function that raises an unavailable error when Redis does not answer.
      failure_threshold: consecutive failures that open the breaker.
      health_check_interval: seconds between PINGs while open or while writes wait.
      name: for log messages.
    """

    def __init__(
        self,
        ping: Callable[[], Awaitable[Any]],
        *,
        failure_threshold: int = 3,
        health_check_interval: float = 5.0,
        name: str = "Redis",
    ) -> None:
        self.breaker = CircuitBreaker(failure_threshold=failure_threshold)
        self.journal = Journal()
        self.health_check_interval = health_check_interval
        self.name = name
        self.failed: list[FailedWrite] = []
        """Entries set aside during write-back, with the reason."""
        self.written_back = 0
        self.fallback_operations = 0
        self.health_restarts = 0
        self.last_recovery_seconds: float | None = None
        self._ping = ping
        self._drained: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # -- routing -------------------------------------------------------------------
    @property
    def state(self) -> BreakerState:
        return self.breaker.state

    @property
    def degraded(self) -> bool:
        """True while the breaker is not closed (every call is served by memory)."""
        return self.breaker.state is not BreakerState.CLOSED

    async def call(
        self,
        op: str,
        redis_fn: Callable[[], Awaitable[T]],
        memory_fn: Callable[[], Awaitable[T]] | None,
        *,
        local: bool = False,
    ) -> T:
        """``redis_fn()``, or ``memory_fn()`` when the breaker is open, ``local`` is true (memory holds
        the record until it is written back) or Redis turns out unavailable.

        Half-open (Redis answers, the journal is being written back): a record memory does not hold goes
        to Redis, so new work does not join the journal and the write-back ends.

        ``memory_fn=None``: the operation needs Redis; :class:`RedisUnavailableError` instead.
        """
        if not local and self.breaker.state is not BreakerState.OPEN:
            try:
                result = await redis_fn()
            except UNAVAILABLE_ERRORS as exc:
                self.failure(exc, op)
            else:
                self.breaker.record_success()
                return result
        else:
            self.ensure_health()  # e.g. opened at start-up outside any loop: probe from this one
        if memory_fn is None:
            raise RedisUnavailableError(f"{op} needs {self.name}; it is unreachable now, retry later")
        self.fallback_operations += 1
        return await memory_fn()

    def failure(self, exc: BaseException, op: str) -> None:
        """Count an unavailable error of ``op`` (opens the breaker at the threshold)."""
        if self.breaker.record_failure(exc):
            logger.warning(
                "%s unavailable (%s failed: %s); circuit breaker open, using memory", self.name, op, exc
            )
        else:
            logger.warning("%s %s failed (%s); served from memory", self.name, op, exc)
        self.ensure_health()

    def defer(
        self,
        key: Hashable,
        op: str,
        replay: Callable[[], Awaitable[Any]],
        *,
        once: bool = False,
        set_aside: Callable[[BaseException], Any] | None = None,
    ) -> None:
        """Journal a write made in memory; it is replayed on Redis, in order, when Redis answers."""
        self.journal.add(JournalEntry(key, op, replay, set_aside), once=once)
        self.ensure_health()

    def pending(self, key: Hashable | None = None) -> bool:
        """True while writes (of ``key``) wait for Redis."""
        return self.journal.pending(key) if key is not None else bool(self.journal)

    def on_drained(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (synchronously, nothing can slip in) whenever the journal has been emptied."""
        self._drained.append(callback)

    def open_at_start(self) -> None:
        """Redis did not answer at start-up: open the breaker (probing starts on the running loop)."""
        self.breaker.open()
        self.breaker.last_error = f"{self.name} unreachable at start-up"
        self.ensure_health()

    # -- write-back ----------------------------------------------------------------
    async def replay(self) -> None:
        """Replay the journal in order; an unavailable error stops it (the rest waits), any other error
        sets that entry aside and the replay goes on.

        Entries of different records at the head of the journal are replayed together (up to
        :data:`REPLAY_PARALLELISM`); the entries of one record always one after the other, in order.
        """
        while self.journal:
            batch = self.journal.head(REPLAY_PARALLELISM)
            outcomes = await asyncio.gather(*(self._replay_one(e) for e in batch))
            stopped = next((exc for exc in outcomes if exc is not None), None)
            if stopped is not None:
                raise stopped
        for callback in self._drained:  # no await since the journal emptied
            callback()

    async def _replay_one(self, entry: JournalEntry) -> BaseException | None:
        """Replay one entry; returns the unavailable error that stopped it (the entry stays queued)."""
        try:
            await entry.replay()
        except UNAVAILABLE_ERRORS as exc:
            entry.attempts += 1
            if entry.attempts < MAX_ENTRY_ATTEMPTS:
                return exc
            self._set_aside(entry, exc)
        except Exception as exc:
            self._set_aside(entry, exc)
        else:
            self.written_back += 1
        self.journal.remove(entry)
        return None

    def _set_aside(self, entry: JournalEntry, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        record = None
        if entry.set_aside is not None:
            try:
                record = entry.set_aside(exc)
            except Exception as inner:  # reporting must not stop the write-back either
                logger.exception("Setting aside %s %r failed: %s", entry.op, entry.key, inner)
        logger.error(
            "Write-back of %s %r failed (%s); set aside, going on with the rest", entry.op, entry.key, reason
        )
        self.failed.append(FailedWrite(entry.key, entry.op, reason, record))

    # -- health loop ---------------------------------------------------------------
    def ensure_health(self) -> None:
        """Start the health loop on the running event loop unless it runs already."""
        if self._closed:
            return
        task = self._task
        if task is not None and not task.done():
            try:
                if task.get_loop() is asyncio.get_running_loop():
                    return
            except RuntimeError:
                return
        try:
            self._task = asyncio.get_running_loop().create_task(self._health_loop())
        except RuntimeError:  # no running loop (constructed outside async code)
            self._task = None
            return
        self._task.add_done_callback(self._health_done)

    def _health_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._closed:
            return
        exc = task.exception()
        if exc is not None:  # died of something the loop does not catch: restart it
            self.health_restarts += 1
            logger.error("%s health loop died (%r); restarting it", self.name, exc)
            with contextlib.suppress(RuntimeError):
                self.ensure_health()

    async def _health_loop(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.health_check_interval)
            try:
                if await self.check():
                    return
            except Exception as exc:  # never die: count, log, probe again next interval
                self.health_restarts += 1
                logger.exception("%s health check failed unexpectedly (%s); retrying", self.name, exc)

    async def check(self) -> bool:
        """One health round: PING, write back, close.  True when nothing is left to do."""
        if not self.journal and not self.degraded:
            return True
        try:
            await self._ping()
        except UNAVAILABLE_ERRORS as exc:
            if self.breaker.record_failure(exc):
                logger.warning("%s unavailable (health check: %s); circuit breaker open", self.name, exc)
            if self.breaker.state is BreakerState.HALF_OPEN:
                self.breaker.open()
            return False
        was_open = self.degraded
        if was_open:
            self.breaker.half_open()
        try:
            await self.replay()
        except UNAVAILABLE_ERRORS as exc:
            logger.warning("Write-back to %s interrupted (%s); staying on memory", self.name, exc)
            if was_open:
                self.breaker.open()
            return False
        if self.journal:
            return False
        if was_open:
            opened_at = self.breaker.opened_at
            self.breaker.close()
            if opened_at is not None and self.breaker.closed_at is not None:
                self.last_recovery_seconds = self.breaker.closed_at - opened_at
            logger.info("%s is back; circuit breaker closed", self.name)
        else:
            self.breaker.record_success()
        return True

    async def wait_closed(self, timeout: float) -> bool:
        """Wait until the breaker is closed and nothing awaits write-back (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.degraded and not self.journal:
                return True
            self.ensure_health()
            await asyncio.sleep(min(0.02, self.health_check_interval))
        return False

    async def close(self) -> None:
        """Stop the health loop (pending writes stay in memory)."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            try:
                same_loop = task.get_loop() is asyncio.get_running_loop()
            except RuntimeError:
                same_loop = False
            task.cancel()
            if same_loop:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    # -- observability -------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Breaker state, failures, what serves now, pending / written-back / failed writes."""
        b = self.breaker
        return {
            "store_type": "memory" if self.degraded else "redis",  # what serves now
            "breaker_state": b.state.value,
            "consecutive_failures": b.consecutive_failures,
            "times_opened": b.times_opened,
            "last_error": b.last_error,
            "last_error_at": b.last_error_at,
            "fallback_operations": self.fallback_operations,
            "last_recovery_seconds": self.last_recovery_seconds,
            "pending_write_back": len(self.journal),
            "written_back": self.written_back,
            "failed": len(self.failed),
            "health_restarts": self.health_restarts,
        }
