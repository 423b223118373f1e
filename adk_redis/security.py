"""Security: session id policy, enumeration detection and redacted access logging.

* :class:`IdPolicy` validates session ids (length, control characters, an
  optional regex).  ``RedisSessionService(id_policy=...)`` applies it; its
  default, :data:`PERMISSIVE_POLICY`, only rejects control characters and ids
  longer than the key scheme allows (every id is escaped anyway).
* :class:`EnumerationGuard` counts failed lookups (a ``get_session`` that
  found nothing) per user and per client address in a sliding window kept in
  Redis (one ZSET per source), flags sources above a threshold and can
  refuse them.
* :class:`GuardedSessionService` wraps any session service with both, and
  logs every access on the ``adk_redis.access`` logger with ids hashed.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import re
import time
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from google.adk.events.event import Event
from google.adk.sessions.base_session_service import (
    BaseSessionService,
    GetSessionConfig,
    ListSessionsResponse,
)
from google.adk.sessions.session import Session
from typing_extensions import override

from ._core.codec import text
from .errors import AccessRefusedError, InvalidSessionIdError  # defined in adk_redis.errors
from .keys import MAX_ID_LENGTH, KeySchema

access_logger = logging.getLogger("adk_redis.access")
logger = logging.getLogger("adk_redis.security")


@dataclass(frozen=True)
class IdPolicy:
    """Which session ids are acceptable.

    The defaults accept ADK's uuid4 ids and typical slugs (``user-42_chat.1``)
    and reject empty ids, ids over 256 characters and any control/format
    character.  ``pattern`` (a regex that must match the whole id) tightens it.
    """

    max_length: int = 256
    pattern: str | None = None
    allow_control_chars: bool = False

    def problem(self, session_id: object) -> str | None:
        """Why ``session_id`` is rejected, or None when it is acceptable."""
        if not isinstance(session_id, str):
            return f"must be a string, got {type(session_id).__name__}"
        if not session_id:
            return "must not be empty"
        if len(session_id) > self.max_length:
            return f"is {len(session_id)} characters long; at most {self.max_length} are allowed"
        if not session_id.isascii() and any("\ud800" <= c <= "\udfff" for c in session_id):
            return "contains a lone surrogate (not valid Unicode text)"
        if not self.allow_control_chars and any(unicodedata.category(c) in ("Cc", "Cf") for c in session_id):
            return "contains control characters"
        if self.pattern is not None and not re.fullmatch(self.pattern, session_id):
            return "does not match the configured pattern"
        return None

    def allows(self, session_id: object) -> bool:
        return self.problem(session_id) is None

    def check(self, session_id: object) -> None:
        """Raise :class:`InvalidSessionIdError` for an unacceptable id (the id is not echoed)."""
        why = self.problem(session_id)
        if why is not None:
            raise InvalidSessionIdError(f"Invalid session id ({redact(str(session_id))}): {why}")


#: RedisSessionService's default: anything the key scheme can store, minus control characters.
PERMISSIVE_POLICY = IdPolicy(max_length=MAX_ID_LENGTH)
#: A strict policy: ``[A-Za-z0-9_.-]``, 1-128 characters (uuid4 ids pass).
STRICT_POLICY = IdPolicy(max_length=128, pattern=r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def redact(value: str, salt: str = "") -> str:
    """A short, stable, non-reversible tag for an id in logs (``h:`` + 12 hex digits)."""
    return "h:" + hashlib.sha256((salt + value).encode("utf-8", "surrogatepass")).hexdigest()[:12]


_client_address: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "adk_redis_client_address", default=None
)


@contextlib.contextmanager
def client_address(address: str | None) -> Iterator[None]:
    """Attribute the session lookups made inside the block to ``address`` (e.g. in web middleware)."""
    token = _client_address.set(address)
    try:
        yield
    finally:
        _client_address.reset(token)


def current_client_address() -> str | None:
    return _client_address.get()


# KEYS: window zset, total counter, flagged zset
# ARGV: now_ms, window_ms, member, threshold, source
_RECORD = r"""
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
local n = redis.call('ZCARD', KEYS[1])
return n
"""


class EnumerationGuard:
    """Sliding-window counter of failed session lookups per source, stored in Redis.

    A *source* is ``user`` (app + user id) or ``addr`` (client address).
    More than ``threshold`` failures inside ``window_seconds`` flags the
    source (kept in a ZSET for ``flag_ttl_seconds``); with ``refuse=True``
    flagged sources get :class:`AccessRefusedError` on lookups.
    """

    def __init__(
        self,
        client: Any,
        keys: KeySchema,
        *,
        threshold: int = 20,
        window_seconds: float = 60.0,
        refuse: bool = False,
        flag_ttl_seconds: float = 3600.0,
    ) -> None:
        self.client = client
        self.keys = keys
        self.threshold = threshold
        self.window_ms = int(window_seconds * 1000)
        self.refuse = refuse
        self.flag_ttl_ms = int(flag_ttl_seconds * 1000)
        self._record = client.register_script(_RECORD)

    @staticmethod
    def sources(app_name: str, user_id: str, address: str | None) -> list[tuple[str, str]]:
        out = [("user", f"{app_name}\x00{user_id}")]
        if address:
            out.append(("addr", address))
        return out

    @staticmethod
    def _label(kind: str, ident: str) -> str:
        return f"{kind}:{redact(ident)}"

    async def record_failure(self, app_name: str, user_id: str, address: str | None = None) -> list[str]:
        """Count one failed lookup; return the labels of sources flagged by it."""
        now = int(time.time() * 1000)
        flagged: list[str] = []
        await self.client.incr(self.keys.security_total_failures())
        for kind, ident in self.sources(app_name, user_id, address):
            n = int(
                await self._record(
                    keys=[self.keys.security_window(kind, ident)],
                    args=[now, self.window_ms, f"{now}-{uuid.uuid4().hex[:8]}"],
                )
            )
            if n > self.threshold:
                label = self._label(kind, ident)
                pipe = self.client.pipeline(transaction=False)
                pipe.zadd(self.keys.security_flagged(), {label: now})
                pipe.zremrangebyscore(self.keys.security_flagged(), "-inf", now - self.flag_ttl_ms)
                await pipe.execute()
                flagged.append(label)
                logger.warning(
                    "Possible session enumeration: %s failed lookups in %.0f s from %s",
                    n,
                    self.window_ms / 1000,
                    label,
                )
        return flagged

    async def is_flagged(self, app_name: str, user_id: str, address: str | None = None) -> bool:
        now = int(time.time() * 1000)
        pipe = self.client.pipeline(transaction=False)
        for kind, ident in self.sources(app_name, user_id, address):
            pipe.zscore(self.keys.security_flagged(), self._label(kind, ident))
        scores = await pipe.execute()
        return any(s is not None and float(s) > now - self.flag_ttl_ms for s in scores)

    async def check(self, app_name: str, user_id: str, address: str | None = None) -> None:
        """Raise :class:`AccessRefusedError` for a flagged source when refusal is on."""
        if self.refuse and await self.is_flagged(app_name, user_id, address):
            raise AccessRefusedError("Too many failed session lookups; try again later.")

    async def get_security_stats(self) -> dict[str, Any]:
        """``total_failed_attempts`` and ``flagged_sources`` (labels with hashed ids)."""
        now = int(time.time() * 1000)
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.keys.security_total_failures())
        pipe.zrangebyscore(self.keys.security_flagged(), now - self.flag_ttl_ms, "+inf")
        total, flagged = await pipe.execute()
        return {
            "total_failed_attempts": int(total or 0),
            "flagged_sources": sorted(text(f) for f in flagged),
            "threshold": self.threshold,
            "window_seconds": self.window_ms / 1000,
        }

    async def reset(self, app_name: str, user_id: str, address: str | None = None) -> None:
        """Forget a source's failures and flag (e.g. after an operator review)."""
        pipe = self.client.pipeline(transaction=False)
        for kind, ident in self.sources(app_name, user_id, address):
            pipe.delete(self.keys.security_window(kind, ident))
            pipe.zrem(self.keys.security_flagged(), self._label(kind, ident))
        await pipe.execute()


class GuardedSessionService(BaseSessionService):
    """Wraps a session service with an id policy, enumeration detection and access logging.

    The client address is taken from :func:`client_address` (a context
    variable), so the ADK-facing signatures stay unchanged.
    """

    def __init__(
        self,
        inner: BaseSessionService,
        guard: EnumerationGuard,
        *,
        id_policy: IdPolicy | None = None,
        log_salt: str = "",
    ) -> None:
        self.inner = inner
        self.guard = guard
        self.id_policy = id_policy or IdPolicy()
        self.log_salt = log_salt

    def _log(
        self,
        op: str,
        outcome: str,
        app_name: str,
        user_id: str | None,
        session_id: str | None,
        started: float,
    ) -> None:
        fields = {
            "op": op,
            "outcome": outcome,
            "app": app_name,
            "user": redact(user_id, self.log_salt) if user_id is not None else None,
            "session": redact(session_id, self.log_salt) if session_id is not None else None,
            "client": redact(a, self.log_salt) if (a := current_client_address()) else None,
            "ms": round((time.perf_counter() - started) * 1000, 2),
        }
        access_logger.info(
            "%s %s app=%s user=%s session=%s client=%s %.2fms",
            op,
            outcome,
            app_name,
            fields["user"],
            fields["session"],
            fields["client"],
            fields["ms"],
            extra={"adk_redis": fields},
        )

    @override
    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        t = time.perf_counter()
        if session_id is not None and session_id.strip():
            try:
                self.id_policy.check(session_id.strip())
            except InvalidSessionIdError:
                self._log("create_session", "invalid_id", app_name, user_id, session_id, t)
                raise
        s = await self.inner.create_session(
            app_name=app_name, user_id=user_id, state=state, session_id=session_id
        )
        self._log("create_session", "ok", app_name, user_id, s.id, t)
        return s

    @override
    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        t = time.perf_counter()
        address = current_client_address()
        try:
            await self.guard.check(app_name, user_id, address)
        except AccessRefusedError:
            self._log("get_session", "refused", app_name, user_id, session_id, t)
            raise
        found: Session | None = None
        if self.id_policy.allows(session_id.strip() if isinstance(session_id, str) else session_id):
            found = await self.inner.get_session(
                app_name=app_name, user_id=user_id, session_id=session_id, config=config
            )
        if found is None:
            await self.guard.record_failure(app_name, user_id, address)
        self._log("get_session", "hit" if found else "miss", app_name, user_id, session_id, t)
        return found

    @override
    async def list_sessions(self, *, app_name: str, user_id: str | None = None) -> ListSessionsResponse:
        t = time.perf_counter()
        out = await self.inner.list_sessions(app_name=app_name, user_id=user_id)
        self._log("list_sessions", f"n={len(out.sessions)}", app_name, user_id, None, t)
        return out

    @override
    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        t = time.perf_counter()
        await self.inner.delete_session(app_name=app_name, user_id=user_id, session_id=session_id)
        self._log("delete_session", "ok", app_name, user_id, session_id, t)

    @override
    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        return await self.inner.get_user_state(app_name=app_name, user_id=user_id)

    @override
    async def append_event(self, session: Session, event: Event) -> Event:
        t = time.perf_counter()
        out = await self.inner.append_event(session, event)
        self._log("append_event", "ok", session.app_name, session.user_id, session.id, t)
        return out

    async def get_security_stats(self) -> dict[str, Any]:
        """See :meth:`EnumerationGuard.get_security_stats`."""
        return await self.guard.get_security_stats()
