"""Write-back conflicts of :class:`~adk_redis.resilience.FallbackSessionService`: each recorded once,
held in memory up to a cap, spilled past it to a durable place, never dropped.

A conflict holds the session's identity, the conflicting state keys, the reason and the one event that
was not written back (a reference to memory's event, not a copy of the session): the memory it holds
grows with the number of conflicting events, one event each.  Past ``max_held`` conflicts (setting
``REDIS_WRITEBACK_MAX_CONFLICTS``) the next ones go, as JSON records, to

1. the app's Redis LIST ``<prefix>:writeback:conflicts:<app>`` (:meth:`KeySchema.writeback_conflicts`;
   conflicts only arise while writing back, i.e. while Redis answers);
2. when Redis refuses the push, the JSON-lines file ``REDIS_WRITEBACK_CONFLICTS_FILE`` (fsync'ed);
3. when neither takes it, memory after all (logged as an error): a conflict is never dropped.

Spilled events are encoded with the service's codec (encrypted / compressed when the service is).
:meth:`ConflictLog.read` lists and :meth:`ConflictLog.drain` removes and returns them, wherever they are.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from google.adk.events.event import Event

from ..errors import CorruptedDataError

if TYPE_CHECKING:
    from ..sessions._service import RedisSessionService

logger = logging.getLogger("adk_redis.fallback")

ConflictPlace = Literal["memory", "redis", "file"]
_RECORD_VERSION = 1


@dataclass
class WriteBackConflict:
    """An event written in memory during an outage that was not written back: since memory took the
    session over, another writer changed state key(s) (``keys``) this event also writes.

    ``event`` is the event itself (apply it yourself after resolving the clash, e.g. reload the
    session and append a copy); ``place`` says where it was held when read (``memory``, ``redis``, ``file``).
    """

    app_name: str
    user_id: str
    session_id: str
    reason: str
    event: Event | None = field(default=None, repr=False)
    keys: tuple[str, ...] = ()
    at: float = field(default_factory=time.time)
    place: ConflictPlace = "memory"

    def to_record(self, service: RedisSessionService) -> str:
        """The JSON record a spilled conflict is stored as (the event encoded with the service's codec)."""
        return json.dumps(
            {
                "v": _RECORD_VERSION,
                "app": self.app_name,
                "user": self.user_id,
                "session": self.session_id,
                "reason": self.reason,
                "keys": list(self.keys),
                "at": self.at,
                "event": service.codec.encode_event(self.event) if self.event is not None else None,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_record(
        cls, raw: str | bytes, service: RedisSessionService, place: ConflictPlace
    ) -> WriteBackConflict:
        """Decode a spilled record; CorruptedDataError when it is not one."""
        try:
            data = json.loads(raw)
            payload = data["event"]
            where = "a spilled write-back conflict"
            event = None if payload is None else service.codec.decode_event(payload, where=where)
            return cls(
                app_name=str(data["app"]),
                user_id=str(data["user"]),
                session_id=str(data["session"]),
                reason=str(data["reason"]),
                event=event,
                keys=tuple(str(k) for k in data["keys"]),
                at=float(data["at"]),
                place=place,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptedDataError(f"unreadable write-back conflict record: {exc}") from None


class ConflictLog:
    """Where the conflicts of one fallback service go (see the module docstring).

    Args:
      service: the Redis session service (its client, key schema and codec).
      max_held: conflicts held in memory before spilling.
      path: the JSON-lines file used when Redis refuses a spilled conflict (None: none).
    """

    def __init__(self, service: RedisSessionService, *, max_held: int, path: str | None) -> None:
        self._service = service
        self.max_held = max_held
        self.path = path
        self.held: list[WriteBackConflict] = []
        """The conflicts held in memory, oldest first."""
        self.recorded = 0
        self.spilled_to_redis = 0
        self.spilled_to_file = 0
        self.held_over_cap = 0

    async def add(self, conflict: WriteBackConflict) -> ConflictPlace:
        """Record one conflict; returns where it went."""
        self.recorded += 1
        if len(self.held) < self.max_held:
            self.held.append(conflict)
            return "memory"
        record = conflict.to_record(self._service)
        try:
            key = self._service.keys.writeback_conflicts(conflict.app_name)
            await self._service.client.rpush(key, record)
        except Exception as exc:  # unavailable, out of memory, ...: the file, else memory
            logger.warning("Could not spill a write-back conflict to Redis (%s)", exc)
        else:
            self.spilled_to_redis += 1
            return "redis"
        if self.path:
            try:
                self._append_lines([record])
            except OSError as exc:
                logger.error("Could not spill a write-back conflict to %s (%s)", self.path, exc)
            else:
                self.spilled_to_file += 1
                return "file"
        self.held.append(conflict)
        self.held_over_cap += 1
        logger.error(
            "Write-back conflict of session %r kept in memory past the cap of %d (no spill place took it)",
            conflict.session_id,
            self.max_held,
        )
        return "memory"

    # -- reading -------------------------------------------------------------------
    async def read(self, *, app_name: str, limit: int = 1000) -> list[WriteBackConflict]:
        """Up to ``limit`` conflicts of the app, oldest first: memory's, then Redis', then the file's."""
        out = [c for c in self.held if c.app_name == app_name][:limit]
        if len(out) < limit:
            key = self._service.keys.writeback_conflicts(app_name)
            raws = await self._service.client.lrange(key, 0, limit - len(out) - 1)
            out += [self._decode(r, "redis") for r in raws]
        if len(out) < limit and self.path:
            for line in self._read_lines():
                if len(out) >= limit:
                    break
                c = self._decode(line, "file")
                if c.app_name == app_name:
                    out.append(c)
        return out

    async def drain(self, *, app_name: str, limit: int = 1000) -> list[WriteBackConflict]:
        """Remove and return up to ``limit`` conflicts of the app (memory's, then Redis', then the file's).

        A drained conflict is gone from where it was held: handle it (or keep it) yourself.
        """
        out = [c for c in self.held if c.app_name == app_name][:limit]
        if out:
            taken = {id(c) for c in out}
            self.held[:] = [c for c in self.held if id(c) not in taken]
        if len(out) < limit:
            key = self._service.keys.writeback_conflicts(app_name)
            raws = await self._service.client.lpop(key, limit - len(out))
            out += [self._decode(r, "redis") for r in raws or []]
        if len(out) < limit and self.path and os.path.exists(self.path):
            keep: list[str] = []
            for line in self._read_lines():
                c = self._decode(line, "file")
                if c.app_name == app_name and len(out) < limit:
                    out.append(c)
                else:
                    keep.append(line)
            self._rewrite(keep)
        return out

    def _decode(self, raw: str | bytes, place: ConflictPlace) -> WriteBackConflict:
        return WriteBackConflict.from_record(raw, self._service, place)

    # -- the file ------------------------------------------------------------------
    def _append_lines(self, lines: list[str]) -> None:
        assert self.path is not None
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
            f.flush()
            os.fsync(f.fileno())

    def _read_lines(self) -> list[str]:
        assert self.path is not None
        try:
            with open(self.path, encoding="utf-8") as f:
                return [line.rstrip("\n") for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def _rewrite(self, lines: list[str]) -> None:
        assert self.path is not None
        folder = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".conflicts-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def stats(self) -> dict[str, Any]:
        """Counters: recorded, held in memory, spilled to Redis / the file, held past the cap."""
        return {
            "conflicts": self.recorded,
            "conflicts_held": len(self.held),
            "conflicts_spilled_redis": self.spilled_to_redis,
            "conflicts_spilled_file": self.spilled_to_file,
            "conflicts_held_over_cap": self.held_over_cap,
        }
