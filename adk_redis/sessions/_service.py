"""RedisSessionService: ADK sessions, events and app/user/temp state on Redis."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import secrets
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Literal, ParamSpec, TypeVar, get_args

from google.adk.errors import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.platform import time as platform_time
from google.adk.platform import uuid as platform_uuid
from google.adk.sessions.base_session_service import (
    BaseSessionService,
    GetSessionConfig,
    ListSessionsResponse,
)
from google.adk.sessions.session import Session
from google.adk.sessions.state import State
from redis.exceptions import NoScriptError, ResponseError
from typing_extensions import override

from .. import telemetry
from .._core import codec
from .._core.codec import text
from .._core.connection import create_client, is_cluster, read_script
from .._core.durability import Durability
from .._core.kwargs import strict
from .._core.lifecycle import RedisClientOwner
from .._core.ttl import ttl_ms
from ..config import RedisSettings, resolve_settings
from ..errors import CorruptedDataError, MergeConflictError, RedisOutcomeUnknownError, server_error
from ..keys import KeySchema, SessionKeys
from ..memory._docs import session_range
from ..memory._search import DELETE_RANGE, delete_range
from ..security import PERMISSIVE_POLICY, IdPolicy
from . import _layout as layout
from . import _pages as session_pages
from . import _scripts as scripts
from ._pages import PageOrder, SessionPage

logger = logging.getLogger("adk_redis.sessions")

_STALE = (
    "The session has been modified in storage since it was loaded. "
    "Please reload the session before appending more events."
)
_STATE_FIELD = layout.STATE_PREFIX
_MAX_UNCONFIRMED = 10_000  # creation tokens kept for retries of creates whose outcome is unknown

StalePolicy = Literal["reject", "merge", "lww"]
STALE_POLICIES: tuple[str, ...] = get_args(StalePolicy)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _data_errors(
    fn: Callable[_P, Coroutine[Any, Any, _R]],
) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """Turn Redis error replies into typed errors naming the session (see :func:`errors.server_error`)."""

    @functools.wraps(fn)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await fn(*args, **kwargs)
        except ResponseError as exc:
            session = next((a for a in args if isinstance(a, Session)), None)
            sid = kwargs.get("session_id", session.id if session else None)
            user = kwargs.get("user_id", session.user_id if session else None)
            app = kwargs.get("app_name", session.app_name if session else None)
            where = f"{fn.__name__} of session {sid!r} of user {user!r} in app {app!r}"
            err = server_error(exc, where)
            if err is exc:
                raise
            raise err from None

    return wrapper


def _wrong_type(reply: Any, what: str) -> CorruptedDataError:
    """The error of a write that met a key of the wrong Redis type (the scripts' ``{-4, key, type}``)."""
    key, kind = text(reply[1]), text(reply[2])
    return CorruptedDataError(
        f"{what}: Redis key {key!r} has the wrong type ({kind}); nothing was written. Delete or repair "
        "that key (it is not one adk_redis wrote in this form)"
    )


def _strip_id(session_id: Any) -> Any:
    """Strip a session id; TypeError for anything but str / None."""
    if isinstance(session_id, str):
        return session_id.strip()
    if session_id is None:
        return None
    raise TypeError(f"session_id must be str, got {type(session_id).__name__}")


def _score(timestamp: float) -> str:
    """A timestamp as stored for ordering and filtering (exact ``repr``; never ``inf``/``nan``,
    which Lua's ``tonumber`` does not read)."""
    if math.isfinite(timestamp):
        return repr(float(timestamp))
    if math.isnan(timestamp):
        return "0"
    return "1e999" if timestamp > 0 else "-1e999"


def _ok(reply: Any) -> Any:
    """A pipeline reply, or an empty hash in place of an error reply (logged)."""
    if isinstance(reply, Exception):
        logger.warning("Ignoring unreadable state hash: %s", reply)
        return {}
    return reply


_LIST_CHUNK = 500  # sessions per LIST_SUMMARIES call (bounds one script's run time)
_ENVELOPE_HEADS = (b"2:", "2:")  # codec envelopes (compressed / encrypted values)
_json_decode = json.JSONDecoder().decode
_SCALARS: dict[bytes | str, Any] = {}  # decoded small immutable JSON values (listings repeat them)
_SCALAR_TYPES = (str, int, float, bool, type(None))
_MISS = object()


def _plain_json(raw: bytes | str) -> Any:
    """``json.loads(raw)``; small scalar results are cached (immutable, so sharing them is safe)."""
    hit = _SCALARS.get(raw, _MISS)
    if hit is not _MISS:
        return hit
    value = _json_decode(raw.decode() if isinstance(raw, bytes) else raw)
    if type(value) in _SCALAR_TYPES and len(raw) <= 64:
        if len(_SCALARS) >= 4096:
            _SCALARS.clear()
        _SCALARS[raw] = value
    return value


_STATE_LEN = len(_STATE_FIELD)
_LISTED_FIELDS_SET = frozenset(Session.model_fields)


def _listed_session(
    session_id: str, app_name: str, user_id: str, state: dict[str, Any], update_time: float, marker: str
) -> Session:
    """A listing's Session, equal to ``Session(id=..., ..., events=[])`` with the marker set.

    Built without re-validating values that are already of their types (a listing builds
    hundreds): the same fields, fields-set and private attributes as the validated
    model (tests/test_session_pages.py compares the two).
    """
    session = Session.__new__(Session)
    object.__setattr__(
        session,
        "__dict__",
        {
            "id": session_id,
            "app_name": app_name,
            "user_id": user_id,
            "state": state,
            "events": [],
            "last_update_time": update_time,
        },
    )
    object.__setattr__(session, "__pydantic_fields_set__", set(_LISTED_FIELDS_SET))
    object.__setattr__(session, "__pydantic_extra__", None)
    object.__setattr__(session, "__pydantic_private__", {"_storage_update_marker": marker})
    return session


def _merge(app: dict[str, Any], user: dict[str, Any], session: dict[str, Any]) -> dict[str, Any]:
    merged = dict(session)
    merged.update({State.APP_PREFIX + k: v for k, v in app.items()})
    merged.update({State.USER_PREFIX + k: v for k, v in user.items()})
    return merged


class RedisSessionService(RedisClientOwner, BaseSessionService):
    """A persistent, multi-process ADK session service backed by Redis.

    Args:
      uri: any redis-py URL (``redis://``, ``rediss://``, ``unix://``) or
        ``redis+cluster://``; defaults to ``REDIS_URL``.
      client: an injected ``redis.asyncio`` client (fakeredis, a cluster
        client, ...); it is not closed by :meth:`close`.
      settings: explicit settings; otherwise read from the environment.
      key_prefix: overrides ``REDIS_KEY_PREFIX`` (default ``vana``).
      session_ttl_hours: sliding TTL refreshed on every write; ``None``
        (the default) keeps sessions until deleted.
      agents_dir: accepted and ignored (ADK's service registry passes it).  Any other unknown
        keyword raises ``TypeError`` naming the accepted ones.
      id_policy: session id validation (:class:`adk_redis.security.IdPolicy`);
        the default rejects only control characters and over-long ids.
      stale_policy: what an append through a session object that is behind
        storage gets. ``"reject"`` (default, ``SESSION_STALE_POLICY``):
        StaleSessionError, as DatabaseSessionService. ``"merge"``: the append
        is stored unless an event stored after the object's marker wrote a
        state key this event writes (then :class:`~adk_redis.errors.MergeConflictError`,
        a StaleSessionError naming the keys); the events it missed are added
        to the object before the new event.  ``"lww"`` (last writer wins): every
        append is stored, a stale one too (its missed events are added as
        under merge); per state key the value of the write with the later
        event timestamp is kept (ties: the later-stored one), so a write of a
        key whose last write has a later timestamp is dropped from the state
        (the event is stored with its delta) and from the caller's object.
        Read-modify-write updates (counters, lists) lose updates under lww:
        keep ``reject``/``merge`` for them.  Writes of ``user:``/``app:`` keys
        are compared with the writes made through this session only.
    """

    @strict
    def __init__(
        self,
        uri: str | None = None,
        *,
        client: Any = None,
        settings: RedisSettings | None = None,
        key_prefix: str | None = None,
        session_ttl_hours: float | None = None,
        agents_dir: str | None = None,
        id_policy: IdPolicy | None = None,
        stale_policy: StalePolicy | None = None,
    ) -> None:
        del agents_dir
        self.id_policy = id_policy or PERMISSIVE_POLICY
        overrides = {
            "redis_key_prefix": key_prefix,
            "session_ttl_hours": session_ttl_hours,
            "session_stale_policy": stale_policy,
        }
        # the environment (or settings), then REDIS_URL's / uri's ?key_prefix= etc., then the arguments
        settings = resolve_settings(settings, uri, **overrides)
        self.settings = settings
        self.stale_policy: StalePolicy = settings.session_stale_policy
        #: Records left out instead of failing a whole call (undecodable state values, unreadable
        #: sessions and index members in listings), newest last; ``adk-redis doctor`` reports them.
        self.skipped_records: deque[str] = deque(maxlen=1000)
        self.keys = KeySchema(settings.redis_key_prefix)
        self.codec = codec.PayloadCodec.from_settings(settings)
        self._use_client(client, lambda: create_client(settings, uri))
        self._cluster = is_cluster(self.client)
        ttl = settings.session_ttl_hours
        self._ttl = str(ttl_ms(ttl)) if ttl else "0"
        self._create = self.client.register_script(scripts.CREATE_SESSION)
        self._append = self.client.register_script(scripts.APPEND_EVENT)
        self._get = read_script(self.client, scripts.GET_SESSION)
        self._delete = self.client.register_script(scripts.DELETE_SESSION)
        self._delete_memories = self.client.register_script(DELETE_RANGE)
        self._app_touch = self.client.register_script(scripts.APP_TOUCH)
        self._restore = self.client.register_script(scripts.RESTORE_SESSION)
        self._upgrade = self.client.register_script(scripts.UPGRADE_SESSION)
        self._page = read_script(self.client, scripts.PAGE_INDEX)
        self._list_script = read_script(self.client, scripts.LIST_SUMMARIES)
        #: Creation tokens of creates whose outcome is unknown (RedisOutcomeUnknownError), oldest first.
        self._unconfirmed_creates: dict[tuple[str, str, str], str] = {}
        #: REDIS_WAIT_REPLICAS: every write also waits for replicas, in its own round trip.
        self.durability = Durability(self.client, settings, self.keys)

    async def _write(self, script: Any, keys: list[str], args: list[Any], what: str) -> Any:
        """Run a write script; with ``REDIS_WAIT_REPLICAS``, with the replica wait in the same round trip
        (:class:`~adk_redis.errors.DurabilityError` when replicas do not confirm it)."""
        if not self.durability.enabled:
            return await script(keys=keys, args=args)
        durable = self.durability
        (reply,) = await durable.execute([durable.script(script, keys, args)], route_key=keys[0], what=what)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def _write_commands(self, commands: list[tuple[Any, ...]], what: str) -> None:
        """Plain write commands on one slot's keys (the first command's key), pipelined; durable as
        :meth:`_write`."""
        if not self.durability.enabled:
            pipe = self.client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            await pipe.execute()
            return
        calls = [self.durability.command(*c) for c in commands]
        replies = await self.durability.execute(calls, route_key=str(commands[0][1]), what=what)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply

    # -- helpers -----------------------------------------------------------
    def _app_keys(self, app_name: str) -> list[str]:
        return [self.keys.app_state(app_name), self.keys.app_index(app_name)]

    async def _touch_app(
        self, app_name: str, score: str, member: str, app_pairs: list[str], *, created: bool = False
    ) -> None:
        """Cluster only: the app-slot half of a write (``created``: also the app's creation index)."""
        keys = self._app_keys(app_name)
        if created:
            keys.append(self.keys.app_created_index(app_name))
        await self._write(self._app_touch, keys, [score, member, self._ttl, *app_pairs], f"app {app_name!r}")

    def _build_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        meta: dict[str, Any],
        app_state: dict[str, Any],
        user_state: dict[str, Any],
        events: list[Event],
        where: str,
    ) -> Session:
        try:
            update_time = float(meta[layout.UPDATED])
            marker = text(meta[layout.REVISION])
        except (KeyError, ValueError, TypeError):
            raise CorruptedDataError(f"{where}: session metadata is incomplete") from None
        session = Session(
            id=session_id,
            app_name=app_name,
            user_id=user_id,
            state=_merge(app_state, user_state, self._session_state(meta, where)),
            events=events,
            last_update_time=update_time,
        )
        session._storage_update_marker = marker
        return session

    def _session_state(self, meta: dict[str, Any], where: str) -> dict[str, Any]:
        """The ``s.`` fields of a meta hash, decoded (undecodable values skipped, see :meth:`_state`)."""
        return self._state(
            {k[len(_STATE_FIELD) :]: v for k, v in meta.items() if k.startswith(_STATE_FIELD)}, where, ""
        )

    def _state(self, raw: Any, where: str, scope: str, key: str = "") -> dict[str, Any]:
        """Decode a state hash; a value that does not decode fails only itself.

        Containment: one bad value (foreign JSON, an unknown encryption key id)
        must not make every session of the app unreadable.  The key is left out
        with a warning; ``adk-redis doctor`` names such values.  A whole app or user
        state ``key`` of the wrong Redis type (the scripts' mark ``'!'``) is left out
        the same way, its name logged: it fails only the writes into it.
        """
        out: dict[str, Any] = {}
        if isinstance(raw, (bytes, str)):  # the scripts' mark: the state key has the wrong Redis type
            note = f"{scope or 'session '}state key {key!r} has the wrong Redis type (not a hash)"
            logger.warning("Leaving out the %sstate of %s: %s", scope, where, note)
            self.skipped_records.append(f"{note}, left out of {where}")
            return out
        for key, value in self._pairs_to_dict(raw).items():
            try:
                out[key] = self.codec.decode_value(value, where=where)
            except CorruptedDataError as exc:
                logger.warning("Leaving out state key %r: %s", scope + key, exc)
                self.skipped_records.append(f"state value {scope + key!r} of {where}")
        return out

    @staticmethod
    def _pairs_to_dict(reply: Any) -> dict[str, Any]:
        if isinstance(reply, dict):
            return {text(k): v for k, v in reply.items()}
        return {text(k): v for k, v in zip(reply[::2], reply[1::2])}

    # -- BaseSessionService ----------------------------------------------------
    @override
    @_data_errors
    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        """Create a session (``state`` split by scope: app, user, session); AlreadyExistsError if taken."""
        session_id = _strip_id(session_id) or None
        explicit_id = session_id is not None
        session_id = session_id or platform_uuid.new_uuid()
        self.id_policy.check(session_id)
        deltas = codec.json_safe(state or {})
        now = repr(platform_time.get_time())
        sk = self.keys.session(app_name, user_id, session_id)
        member = self.keys.app_index_member(user_id, session_id)
        keys = [
            sk.meta,
            self.keys.user_state(app_name, user_id),
            self.keys.user_index(app_name, user_id),
            self.keys.user_created_index(app_name, user_id),
        ]
        if not self._cluster:
            keys += [*self._app_keys(app_name), self.keys.app_created_index(app_name)]
        app_pairs = self.codec.flatten(deltas["app"])
        args = [
            now,
            self._ttl,
            self.keys.session_member(session_id),
            member,
            len(deltas["session"]),
            len(deltas["user"]),
            len(deltas["app"]),
            # Creation token: when redis-py retries this call after a lost reply, the script finds
            # the session it created itself and answers as if it had just created it.  After a
            # RedisOutcomeUnknownError the token is kept (per app, user and session id), so the
            # application's own retry of the create gets the session instead of AlreadyExistsError.
            secrets.token_hex(8),
            *self.codec.flatten(deltas["session"], _STATE_FIELD),
            *self.codec.flatten(deltas["user"]),
            *app_pairs,
        ]
        pending = (app_name, user_id, session_id)
        if explicit_id and pending in self._unconfirmed_creates:
            args[7] = self._unconfirmed_creates[pending]  # this create's earlier attempt: the same token
        try:
            res = await self._write(self._create, keys, args, f"create of session {session_id!r}")
        except RedisOutcomeUnknownError:
            if explicit_id:  # a retry of this call (same ids) must recognise the session it may have stored
                self._unconfirmed_creates[pending] = str(args[7])
                while len(self._unconfirmed_creates) > _MAX_UNCONFIRMED:
                    self._unconfirmed_creates.pop(next(iter(self._unconfirmed_creates)))
            raise
        self._unconfirmed_creates.pop(pending, None)
        if int(res[0]) == 0:
            raise AlreadyExistsError(f"Session with id {session_id} already exists.")
        if int(res[0]) == -4:
            raise _wrong_type(res, f"create_session of session {session_id!r}")
        where = f"session {session_id!r}"
        if self._cluster:
            await self._touch_app(app_name, now, member, app_pairs, created=True)
            app_raw = await self.client.hgetall(self.keys.app_state(app_name))
        else:
            app_raw = res[2]
        session = Session(
            id=session_id,
            app_name=app_name,
            user_id=user_id,
            state=_merge(
                self._state(app_raw, where, State.APP_PREFIX, self.keys.app_state(app_name)),
                self._state(res[1], where, State.USER_PREFIX, self.keys.user_state(app_name, user_id)),
                deltas["session"],
            ),
            last_update_time=float(now),
        )
        session._storage_update_marker = "0"
        return session

    @override
    @_data_errors
    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        """The session with its events (``config`` limits them), or None when it does not exist."""
        session_id = _strip_id(session_id)
        if not self.id_policy.allows(session_id):
            return None
        sk = self.keys.session(app_name, user_id, session_id)
        keys = [*sk.script_keys, self.keys.user_state(app_name, user_id)]
        if not self._cluster:
            keys.append(self.keys.app_state(app_name))
        recent = "" if config is None or config.num_recent_events is None else str(config.num_recent_events)
        after = "" if config is None or config.after_timestamp is None else _score(config.after_timestamp)
        res = await self._get(keys=keys, args=[recent, after])
        if not res:
            return None
        where = f"session {session_id!r} of app {app_name!r}"
        if self._cluster:
            app_raw = await self.client.hgetall(self.keys.app_state(app_name))
        else:
            app_raw = res[3]
        events = self.codec.decode_events(res[1], where=where)
        return self._build_session(
            app_name=app_name,
            user_id=user_id,
            session_id=session_id,
            meta=self._pairs_to_dict(res[0]),
            app_state=self._state(app_raw, where, State.APP_PREFIX, self.keys.app_state(app_name)),
            user_state=self._state(res[2], where, State.USER_PREFIX, self.keys.user_state(app_name, user_id)),
            events=events,
            where=where,
        )

    @override
    @_data_errors
    async def list_sessions(self, *, app_name: str, user_id: str | None = None) -> ListSessionsResponse:
        """Every session of the app (``user_id=None``) or of one user, without events, oldest update first."""
        pairs: list[tuple[str, str]] = []
        index = self.keys.app_index(app_name) if user_id is None else self.keys.user_index(app_name, user_id)
        for m in await self.client.zrange(index, 0, -1):
            pair = self._index_pair(app_name, user_id, m)
            if pair is not None:
                pairs.append(pair)
        sessions = await self._summaries(app_name, pairs)
        sessions.sort(key=lambda x: (x.last_update_time, x.user_id, x.id))
        return ListSessionsResponse(sessions=sessions)

    @_data_errors
    async def list_sessions_page(
        self,
        *,
        app_name: str,
        user_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        order: PageOrder = "created",
    ) -> SessionPage:
        """One page of the sessions of an app (``user_id=None``) or of one user.

        Sessions are as :meth:`list_sessions` returns them (no events, state merged).
        ``order="created"``: oldest first; a traversal returns every session that existed
        when it began and still exists exactly once, whatever happens meanwhile.
        ``order="updated"``: most recent first; a session updated during a traversal
        moves to the front (it may be missed, or seen twice).  Pass the page's
        ``next_cursor`` to get the next page (None: no more).  ``limit`` is 1..1000;
        a cursor of another listing raises :class:`~adk_redis.errors.InvalidCursorError`.
        """
        return await self._read_page(
            app_name=app_name, user_id=user_id, limit=limit, cursor=cursor, order=order
        )

    async def _read_page(
        self,
        *,
        app_name: str,
        user_id: str | None,
        limit: int,
        cursor: str | None,
        order: str,
    ) -> SessionPage:
        """One page from Redis: the index page (one script, one slot), then the records (one pipeline)."""
        session_pages.check_args(limit, order)
        score, text_member = (
            ("", "") if cursor is None else session_pages.decode_cursor(cursor, app_name, user_id, order)
        )
        member = text_member.encode("utf-8", "surrogateescape")  # the index member's exact bytes
        keys = self.keys
        listing = keys.app_index(app_name) if user_id is None else keys.user_index(app_name, user_id)
        if order == "created":
            index = (
                keys.app_created_index(app_name)
                if user_id is None
                else keys.user_created_index(app_name, user_id)
            )
            args = ["asc", score, member, limit]
            reply = await self._page(keys=[index, listing], args=args)
            if reply and isinstance(reply[0], list):  # the creation index expired (TTL) or never existed
                await self._rebuild_created_index(app_name, user_id)
                reply = await self._page(keys=[index, listing], args=args)
                if reply and isinstance(reply[0], list):  # nothing to index: every session is gone
                    reply = []
        else:
            reply = await self._page(keys=[listing], args=["desc", score, member, limit])
        # a member that is not UTF-8 (a foreign write) stays escaped: skipped below (logged), and a cursor
        # after it carries it exactly (surrogateescape round-trips the bytes)
        entries = [
            (m.decode("utf-8", "surrogateescape") if type(m) is bytes else m, text(v))
            for m, v in zip(reply[::2], reply[1::2])
        ]
        more = len(entries) > limit
        entries = entries[:limit]
        pairs: list[tuple[str, str]] = []
        for m, _ in entries:
            pair = self._index_pair(app_name, user_id, m)
            if pair is not None:
                pairs.append(pair)
        sessions = await self._summaries(app_name, pairs)
        next_cursor = None
        if more:
            last_member, last_score = entries[-1]
            next_cursor = session_pages.encode_cursor(app_name, user_id, order, last_score, last_member)
        return SessionPage(sessions=sessions, next_cursor=next_cursor)

    async def _rebuild_created_index(self, app_name: str, user_id: str | None) -> int:
        """Rebuild a missing creation index from the listing index and each session's creation time.

        Needed once when the index expired (a sliding TTL refreshes it at creates only) or was never
        written; O(sessions of the listing), then pages are O(limit) again.  Returns the entries added.
        """
        keys = self.keys
        listing = keys.app_index(app_name) if user_id is None else keys.user_index(app_name, user_id)
        index = (
            keys.app_created_index(app_name)
            if user_id is None
            else keys.user_created_index(app_name, user_id)
        )
        members = [text(m) for m in await self.client.zrange(listing, 0, -1)]
        found: dict[str, float] = {}
        for i in range(0, len(members), 1000):
            chunk: list[tuple[str, tuple[str, str]]] = []
            for m in members[i : i + 1000]:
                pair = self._index_pair(app_name, user_id, m)
                if pair is not None:
                    chunk.append((m, pair))
            pipe = self.client.pipeline(transaction=False)
            for _, (u, s) in chunk:
                pipe.hget(keys.session_meta(app_name, u, s), layout.CREATED)
            for (m, _), created in zip(chunk, await pipe.execute(raise_on_error=False), strict=True):
                try:
                    found[m] = float(text(created))
                except (TypeError, ValueError, AttributeError):  # gone, or unreadable: not indexed
                    continue
        if not found:
            return 0
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(index, found, nx=True)
        if int(self._ttl) > 0:
            pipe.pexpire(index, int(self._ttl))
        return int((await pipe.execute())[0])

    def _index_pair(self, app_name: str, user_id: str | None, member: bytes | str) -> tuple[str, str] | None:
        """(user, session) of a member of a user (``user_id``) or app (None) index; None if undecodable."""
        try:
            m = member.decode("utf-8") if isinstance(member, bytes) else member
            if not m.isascii():
                m.encode("utf-8")  # UnicodeEncodeError (a ValueError): an undecodable member, escaped
            if user_id is None:
                return self.keys.parse_app_index_member(m)
            return user_id, self.keys.parse_session_member(m)
        except (ValueError, UnicodeDecodeError):  # containment: a foreign index member
            logger.warning("Skipping undecodable index member %r of app %r", member, app_name)
            self.skipped_records.append(f"index member {member!r} of app {app_name!r}")
            return None

    async def _summaries(self, app_name: str, pairs: Sequence[tuple[str, str]]) -> list[Session]:
        """The sessions ``pairs`` (user, session) name, as listings return them, in that order.

        No events; app, user and session state merged; the revision marker set.  One
        pipeline: the app state, and per user (one slot) one ``LIST_SUMMARIES`` script
        that returns only the fields a listing needs.  Unreadable sessions are skipped
        (logged); expired ones are skipped and their index entries dropped (:meth:`_forget`).
        """
        if not pairs:
            return []
        groups: dict[str, list[str]] = {}
        for u, s in pairs:
            groups.setdefault(u, []).append(s)
        calls: list[tuple[str, list[str]]] = []  # (user, session ids) per script call
        for u, sids in groups.items():
            calls += [(u, sids[i : i + _LIST_CHUNK]) for i in range(0, len(sids), _LIST_CHUNK)]
        replies = await self._list_pipeline(app_name, calls)
        app_state = self._state(_ok(replies[0]), f"app {app_name!r}", State.APP_PREFIX)
        app_scoped = {State.APP_PREFIX + k: v for k, v in app_state.items()}
        scoped: dict[str, dict[str, Any]] = {}  # per user: the app: and user: keys, as _merge orders them
        found: dict[tuple[str, str], Any] = {}
        for (u, sids), reply in zip(calls, replies[1:]):
            if isinstance(reply, Exception):  # e.g. a key of another type in the slot: skip the group
                for s in sids:
                    found[(u, s)] = reply
                continue
            if u not in scoped:
                user_raw = reply[0]
                if user_raw[:1] == [b"!"] or user_raw[:1] == ["!"]:
                    user_raw = _ok(ResponseError(text(user_raw[1])))
                user_state = self._state(user_raw, f"user {u!r}", State.USER_PREFIX)
                scoped[u] = {**app_scoped, **{State.USER_PREFIX + k: v for k, v in user_state.items()}}
            for s, record in zip(sids, reply[1:]):
                found[(u, s)] = record
        decode = self.codec.decode_value
        sessions: list[Session] = []
        gone: list[tuple[str, str]] = []
        for u, s in pairs:
            record = found[(u, s)]
            if not record:
                gone.append((u, s))
                continue
            if isinstance(record, Exception) or record[0] in (b"!", "!"):
                where = f"session {s!r} of user {u!r}"
                reason = record if isinstance(record, Exception) else text(record[1])
                logger.warning("Skipping unreadable session in listing: %s: %s", where, reason)
                self.skipped_records.append(f"{where} ({reason})")
                continue
            upd, rev = record[0], record[1]
            try:
                update_time = float(upd)
                if rev is None:
                    raise TypeError
            except (ValueError, TypeError):
                exc = CorruptedDataError(f"session {s!r} of user {u!r}: session metadata is incomplete")
                logger.warning("Skipping corrupted session in listing: %s", exc)
                self.skipped_records.append(str(exc))
                continue
            state: dict[str, Any] = {}
            for i in range(2, len(record), 2):
                field = record[i]
                key = field[_STATE_LEN:].decode() if type(field) is bytes else field[_STATE_LEN:]
                value = record[i + 1]
                try:
                    if value[:2] in _ENVELOPE_HEADS:
                        state[key] = decode(value, where=f"session {s!r} of user {u!r}")
                    else:  # plain JSON (what decode does for it, minus json.loads' encoding sniffing)
                        try:
                            state[key] = _plain_json(value)
                        except ValueError:  # the codec's error for it
                            state[key] = decode(value, where=f"session {s!r} of user {u!r}")
                except CorruptedDataError as exc:
                    logger.warning("Leaving out state key %r: %s", key, exc)
                    self.skipped_records.append(f"state value {key!r} of session {s!r} of user {u!r}")
            state.update(scoped[u])
            marker = rev.decode() if type(rev) is bytes else rev
            sessions.append(_listed_session(s, app_name, u, state, update_time, marker))
        if gone:
            await self._forget(app_name, gone)
        return sessions

    async def _list_pipeline(self, app_name: str, calls: list[tuple[str, list[str]]]) -> list[Any]:
        """Replies of ``_summaries``' pipeline: app state, then one ``LIST_SUMMARIES`` reply per call."""
        if self._cluster:  # no scripts in a cluster pipeline: the calls run concurrently instead
            calls_done = await asyncio.gather(
                self.client.hgetall(self.keys.app_state(app_name)),
                *(
                    self._list_script(
                        keys=[
                            self.keys.user_state(app_name, u),
                            *(self.keys.session_meta(app_name, u, s) for s in sids),
                        ]
                    )
                    for u, sids in calls
                ),
                return_exceptions=True,
            )
            for r in calls_done:  # error replies are contained like the pipeline's; the rest raise
                if isinstance(r, BaseException) and not isinstance(r, ResponseError):
                    raise r
            return list(calls_done)
        if len(calls) == 1:  # one user's sessions: one script reads the app state too
            u, sids = calls[0]
            keys = [self.keys.user_state(app_name, u), self.keys.app_state(app_name)]
            keys += [self.keys.session_meta(app_name, u, s) for s in sids]
            try:
                reply = await self._list_script(keys=keys, args=["app"])
            except ResponseError as exc:  # contained as in the pipeline below
                return [exc, exc]
            app_raw = reply[1]
            if app_raw[:1] == [b"!"] or app_raw[:1] == ["!"]:
                app_raw = ResponseError(text(app_raw[1]))
            return [app_raw, [reply[0], *reply[2:]]]
        sha = self._list_script.sha
        for attempt in (1, 2):
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(self.keys.app_state(app_name))
            for u, sids in calls:
                keys = [self.keys.user_state(app_name, u)]
                keys += [self.keys.session_meta(app_name, u, s) for s in sids]
                pipe.evalsha(sha, len(keys), *keys)
            # Containment: a key of another type answers WRONGTYPE for itself only.
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            if attempt == 1 and any(isinstance(r, NoScriptError) for r in replies):
                await self.client.script_load(scripts.LIST_SUMMARIES)  # on every node of a cluster
                continue
            break
        return replies

    async def _forget(self, app_name: str, gone: Sequence[tuple[str, str]]) -> None:
        """Drop index entries of sessions that expired (lazy cleanup)."""
        pipe = self.client.pipeline(transaction=False)
        for u, s in gone:
            pipe.zrem(self.keys.user_index(app_name, u), self.keys.session_member(s))
            pipe.zrem(self.keys.app_index(app_name), self.keys.app_index_member(u, s))
            pipe.zrem(self.keys.user_created_index(app_name, u), self.keys.session_member(s))
            pipe.zrem(self.keys.app_created_index(app_name), self.keys.app_index_member(u, s))
        await pipe.execute()

    @override
    @_data_errors
    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        """Delete the session and its events (nothing happens when it does not exist)."""
        session_id = _strip_id(session_id)
        if not self.id_policy.allows(session_id):
            return
        sk = self.keys.session(app_name, user_id, session_id)
        keys = [*sk.script_keys, self.keys.user_index(app_name, user_id)]
        member = self.keys.app_index_member(user_id, session_id)
        user_created = self.keys.user_created_index(app_name, user_id)
        if self._cluster:
            what = f"delete of session {session_id!r}"
            await self._write(
                self._delete, [*keys, user_created], [self.keys.session_member(session_id), member], what
            )
            await self._write_commands(
                [
                    ("ZREM", self.keys.app_index(app_name), member),
                    ("ZREM", self.keys.app_created_index(app_name), member),
                ],
                what,
            )
        else:
            keys += [self.keys.app_index(app_name), user_created, self.keys.app_created_index(app_name)]
            await self._write(
                self._delete,
                keys,
                [self.keys.session_member(session_id), member],
                f"delete of session {session_id!r}",
            )
        if self.settings.delete_memories_with_session:
            # the turn memories ingested from it (same slot as the session; tombstoned, so re-ingesting
            # a stale copy of the session does not bring them back); a TTL expiry keeps them
            lo, hi = session_range(session_id)
            what = f"delete of the memories of session {session_id!r}"

            async def run(*, keys: list[str], args: list[Any]) -> Any:  # with REDIS_WAIT_REPLICAS: durable
                return await self._write(self._delete_memories, keys, args, what)

            await delete_range(
                self.client,
                self.keys.user_memory_index(app_name, user_id),
                lo,
                hi,
                tombstone_ttl_ms=int(self.settings.history_ttl_hours * 3_600_000),
                script=run,
            )

    @override
    @_data_errors
    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        """The user's ``user:``-scoped state, without the prefix."""
        key = self.keys.user_state(app_name, user_id)
        try:
            reply = await self.client.hgetall(key)
        except ResponseError as exc:
            if "WRONGTYPE" not in str(exc):
                raise
            # the one read whose whole answer is that key: typed, naming it (not left out)
            wrong = f"user state key {key!r} has the wrong Redis type (not a hash): {str(exc)[:80]}"
            raise CorruptedDataError(wrong) from None
        return self._state(reply, f"user state of {user_id!r}", State.USER_PREFIX, key)

    @override
    @_data_errors
    async def append_event(
        self, session: Session, event: Event, *, stale_policy: StalePolicy | None = None
    ) -> Event:
        """Store ``event`` and add it to ``session`` (one atomic script, one round trip).

        ``stale_policy`` overrides the service's policy for this call (the
        fallback's write-back merges, or applies lww when that is the service's policy).
        """
        if event.partial:
            return event
        policy = stale_policy or self.stale_policy
        if policy not in STALE_POLICIES:
            raise ValueError(f"stale_policy must be one of {STALE_POLICIES}, got {policy!r}")
        temp = {
            k: v
            for k, v in ((event.actions.state_delta or {}) if event.actions else {}).items()
            if k.startswith(State.TEMP_PREFIX)
        }
        event = self._trim_temp_delta_state(event)
        delta = event.actions.state_delta if event.actions and event.actions.state_delta else {}
        deltas = codec.json_safe(delta)
        app_name, user_id = session.app_name, session.user_id
        sk: SessionKeys = self.keys.session(app_name, user_id, session.id)
        keys = [
            *sk.script_keys,
            self.keys.user_state(app_name, user_id),
            self.keys.user_index(app_name, user_id),
        ]
        if not self._cluster:
            keys += self._app_keys(app_name)
        marker = session._storage_update_marker or ""
        ts = _score(event.timestamp)
        member = self.keys.app_index_member(user_id, session.id)
        app_pairs = self.codec.flatten(deltas["app"])
        args = [
            marker,
            repr(session.last_update_time),
            session.events[-1].id if session.events else "",
            event.id,
            # Deterministic even when encrypted (derived nonce, see adk_redis._core.crypto): the script
            # recognises a re-delivery by comparing this payload with the stored one.
            self.codec.encode_event(event),
            ts,
            self._ttl,
            self.keys.session_member(session.id),
            member,
            len(deltas["session"]),
            len(deltas["user"]),
            len(deltas["app"]),
            policy,
            *self.codec.flatten(deltas["session"], _STATE_FIELD),
            *self.codec.flatten(deltas["user"]),
            *app_pairs,
        ]
        res = await self._write(self._append, keys, args, f"append to session {session.id!r}")
        code = int(res[0])
        if code == -1:
            raise SessionNotFoundError(f"Session {session.id} not found.")
        if code == -4:
            raise _wrong_type(res, f"append_event to session {session.id!r}")
        if code == -2:
            raise StaleSessionError(_STALE)
        if code == -3:
            conflicting = tuple(text(k) for k in res[1:])
            raise MergeConflictError(
                f"Session {session.id} was modified in storage since it was loaded and the other "
                f"writer(s) changed state key(s) {', '.join(map(repr, conflicting))} that this event "
                "also writes. Reload the session and retry.",
                conflicting,
            )
        rev = text(res[1])
        missed = res[3] if len(res) > 3 else None
        lost = tuple(text(k) for k in res[4:])  # lww: the delta's keys a later-timestamped write keeps
        if code == 2:
            if missed is not None:  # merge: our own earlier attempt stored it; catch up to storage
                self._catch_up(session, missed, own=event)
                session.state.update(temp)
                session.last_update_time = float(text(res[2]))
                session._storage_update_marker = rev
                return event
            # Already stored. A retried call of our own (the reply was lost)
            # lands here with storage one revision past our marker: finish it.
            own_retry = marker != "" and int(rev) == int(marker) + 1
            if not own_retry:
                return event
        if self._cluster:  # also on our own retry: the app step may be what failed (idempotent)
            if lost:
                pairs = list(zip(app_pairs[::2], app_pairs[1::2]))
                app_pairs = [x for k, v in pairs if State.APP_PREFIX + k not in lost for x in (k, v)]
            await self._touch_app(app_name, ts, member, app_pairs)
        if missed is not None:
            self._catch_up(session, missed)
        # temp: state lives only in this session object, and only once the write succeeded.
        session.state.update(temp)
        session.last_update_time = float(text(res[2]))
        session._storage_update_marker = rev
        if not lost:
            return self._commit_event_to_session(session, event)
        kept = {k: session.state[k] for k in lost if k in session.state}
        committed = self._commit_event_to_session(session, event)
        for k in lost:  # storage kept the later-timestamped value: so does the object
            if k in kept:
                session.state[k] = kept[k]
            else:
                session.state.pop(k, None)
        return committed

    def _catch_up(self, session: Session, missed: Any, own: Event | None = None) -> None:
        """Bring a stale session object up to storage after a merged append.

        ``missed`` is the script's report: the payloads of the events stored since
        the object's marker, then the session meta, user state and app state.
        The missed events are appended in storage order (``own``, when it is among
        them, as the caller's object) and the state is storage's, plus the
        object's ``temp:`` keys.
        """
        payloads, meta_raw, user_raw, app_raw = missed
        where = f"session {session.id!r} of app {session.app_name!r}"
        for payload in payloads:
            if payload is None:
                logger.warning("%s: a missed event record is missing", where)
                continue
            try:
                other = self.codec.decode_event(payload, where=where)
            except CorruptedDataError as exc:
                logger.warning("Not adding an undecodable missed event: %s", exc)
                continue
            # Events after the object's marker are never in it already; ``own`` (a retry of
            # an append whose reply was lost) is kept as the caller's object.
            session.events.append(own if own is not None and other.id == own.id else other)
        if self._cluster:  # app state lives in another slot: keep the object's app: values
            app_state = {
                k[len(State.APP_PREFIX) :]: v
                for k, v in session.state.items()
                if k.startswith(State.APP_PREFIX)
            }
        else:
            app_state = self._state(app_raw, where, State.APP_PREFIX, self.keys.app_state(session.app_name))
        temp = {k: v for k, v in session.state.items() if k.startswith(State.TEMP_PREFIX)}
        user_key = self.keys.user_state(session.app_name, session.user_id)
        session.state = _merge(
            app_state,
            self._state(user_raw, where, State.USER_PREFIX, user_key),
            self._session_state(self._pairs_to_dict(meta_raw), where),
        )
        session.state.update(temp)

    async def restore_session(self, session: Session, *, created: float | None = None) -> bool:
        """Write a whole session as it is (import, migrate, backup restore); never overwrites.

        Ids, events, session-scoped state and both timestamps are kept;
        ``app:``/``user:`` keys in ``session.state`` are not written (they are
        not the session's).  Returns False when the session already exists.
        """
        deltas = codec.json_safe(session.state)
        sk = self.keys.session(session.app_name, session.user_id, session.id)
        keys = [*sk.script_keys, self.keys.user_index(session.app_name, session.user_id)]
        if not self._cluster:
            keys.append(self.keys.app_index(session.app_name))
        keys.append(self.keys.user_created_index(session.app_name, session.user_id))
        if not self._cluster:
            keys.append(self.keys.app_created_index(session.app_name))
        args: list[Any] = [
            repr(created if created is not None else session.last_update_time),
            repr(session.last_update_time),
            self._ttl,
            self.keys.session_member(session.id),
            self.keys.app_index_member(session.user_id, session.id),
            len(deltas["session"]),
            len(session.events),
            *self.codec.flatten(deltas["session"], _STATE_FIELD),
        ]
        for event in session.events:
            args += [event.id, self.codec.encode_event(event), _score(event.timestamp)]
        try:
            written = bool(await self._write(self._restore, keys, args, f"restore of session {session.id!r}"))
        except ResponseError as exc:
            err = server_error(exc, f"restore of session {session.id!r}")
            if err is exc:
                raise
            raise err from None
        if written and self._cluster:
            member = self.keys.app_index_member(session.user_id, session.id)
            await self._write_commands(
                [
                    ("ZADD", self.keys.app_index(session.app_name), repr(session.last_update_time), member),
                    ("ZADD", self.keys.app_created_index(session.app_name), args[0], member),
                ],
                f"restore of session {session.id!r}",
            )
        return written

    async def upgrade_record(self, *, app_name: str, user_id: str, session_id: str) -> bool:
        """Rewrite a session stored in an older record format in the current one (``adk-redis
        migrate``; reads and appends also do it on first touch).  False when it does not exist."""
        sk = self.keys.session(app_name, user_id, session_id)
        return bool(await self._upgrade(keys=sk.script_keys, args=[]))

    # -- lifecycle: ping, close, async with (RedisClientOwner) ---------------------


# OpenTelemetry spans/metrics (adk_redis.telemetry); a no-op check while no SDK is configured.
telemetry.traced_methods(
    RedisSessionService,
    "session",
    ("create_session", "get_session", "list_sessions", "delete_session", "get_user_state", "append_event"),
)
