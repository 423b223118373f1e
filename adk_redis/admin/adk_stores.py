"""Schema migration and foreign imports into adk_redis's key layout.

Format history ("version 0" is the layout adk_redis upgrades from):

* **v0: ADK's own Redis integration** (``google.adk.integrations.redis.RedisSessionService``):
  one STRING per session, ``<key_prefix><app>:<user>:<session>`` (default key
  prefix ``adk:session:``) holding ``Session.model_dump_json()`` with *all*
  events and the session-scoped state; app state in the STRING
  ``<key_prefix>app_state:<app>`` and user state in
  ``<key_prefix>user_state:<app>:<user>``, each one JSON object.  Every append
  rewrites the whole session document.
* **v1: adk_redis** (:mod:`adk_redis.keys`, :mod:`adk_redis.sessions._scripts`): a meta
  HASH per session (``_v`` = ``"1"``), events in a HASH as ``"1:" + JSON`` with
  an id index and a timestamp ZSET, per-key HASHes for app and user state,
  user and app session indexes.

:func:`migrate_adk_redis` upgrades v0 records on the same server, resumably:
its SCAN cursor and counters live in :meth:`KeySchema.migration` under our
prefix, so an interrupted run (or one stopped by ``limit``) continues where it
stopped.  Every session is written by :meth:`RedisSessionService.restore_session`
(one script: all of it or nothing; the writer ``adk-redis import`` uses too),
an existing session is skipped and state is only filled in where a key is
missing, so re-running is idempotent.  :func:`import_sessions` copies from
any :class:`SessionRecord` source (ADK's SQL services, another server running
ADK's Redis integration) with the same writer.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from google.adk.events.event import Event
from google.adk.sessions import _session_util
from google.adk.sessions.session import Session
from google.adk.sessions.state import State
from pydantic import ValidationError

from .._core import codec
from .._core.codec import text
from ..sessions._service import RedisSessionService

ADK_REDIS_DEFAULT_PREFIX = "adk:session:"


@dataclass
class SessionRecord:
    """One session read from a source: session-scoped state only, events in order."""

    app_name: str
    user_id: str
    id: str
    state: dict[str, Any]
    events: list[Event]
    last_update_time: float
    created: float | None = None


@dataclass
class ImportStats:
    """Counters of an import or migration run."""

    imported: int = 0
    skipped_existing: int = 0
    invalid: int = 0
    state_fields: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "skipped_existing": self.skipped_existing,
            "invalid": self.invalid,
            "state_fields": self.state_fields,
            "errors": self.errors[:20],
        }


class SessionWriter:
    """Writes whole sessions (through :meth:`RedisSessionService.restore_session`, the one session
    writer) and fills app/user state in adk_redis's layout (never overwrites)."""

    def __init__(self, svc: RedisSessionService) -> None:
        self.svc = svc
        self.codec: Any = getattr(svc, "codec", codec)  # the service's payload codec when it has one

    async def write_session(self, rec: SessionRecord) -> bool:
        """Store ``rec`` atomically; False (and nothing written) when the session exists."""
        session = Session(
            id=rec.id,
            app_name=rec.app_name,
            user_id=rec.user_id,
            state=codec.json_safe(rec.state)["session"],
            events=rec.events,
            last_update_time=float(rec.last_update_time),
        )
        return await self.svc.restore_session(session, created=rec.created)

    async def fill_state(self, key: str, state: dict[str, Any]) -> int:
        """HSETNX every field of a (prefix-less) app or user state; returns fields added."""
        added = 0
        for k, v in codec.json_safe(state)["session"].items():
            added += int(await self.svc.client.hsetnx(key, k, self.codec.encode_value(v)))
        return added

    async def fill_app_state(self, app_name: str, state: dict[str, Any]) -> int:
        return await self.fill_state(self.svc.keys.app_state(app_name), state)

    async def fill_user_state(self, app_name: str, user_id: str, state: dict[str, Any]) -> int:
        return await self.fill_state(self.svc.keys.user_state(app_name, user_id), state)


# -- v0: ADK's Redis integration -----------------------------------------------------------


def _escape_glob(value: str) -> str:
    return re.sub(r"([\\*?\[\]])", r"\\\1", value)


def parse_adk_session(raw: bytes | str) -> SessionRecord | None:
    """A session document written by ADK's Redis integration (None: not one)."""
    try:
        s = Session.model_validate_json(raw)
    except (ValidationError, ValueError):
        return None
    state = {k: v for k, v in s.state.items() if not k.startswith(State.TEMP_PREFIX)}
    return SessionRecord(s.app_name, s.user_id, s.id, state, list(s.events), s.last_update_time)


class AdkRedisSource:
    """Reads the records of ADK's ``google.adk.integrations.redis`` session service.

    Session keys are found with SCAN (admin use only); their app/user state by
    exact key.  State of users without any session left is not found.
    """

    def __init__(self, client: Any, key_prefix: str = ADK_REDIS_DEFAULT_PREFIX) -> None:
        self.client = client
        self.key_prefix = key_prefix
        self._states: set[str] = set()

    def app_state_key(self, app_name: str) -> str:
        return f"{self.key_prefix}app_state:{app_name}"

    def user_state_key(self, app_name: str, user_id: str) -> str:
        return f"{self.key_prefix}user_state:{app_name}:{user_id}"

    async def scan_page(self, cursor: int, count: int = 100) -> tuple[int, list[str]]:
        """One SCAN step over the key prefix: (next cursor, keys)."""
        nxt, keys = await self.client.scan(cursor, match=_escape_glob(self.key_prefix) + "*", count=count)
        return int(nxt), [text(k) for k in keys]

    async def load(self, keys: list[str]) -> list[tuple[str, SessionRecord | None]]:
        """GET each key (non-string keys and non-session documents give None)."""
        if not keys:
            return []
        pipe = self.client.pipeline(transaction=False)
        for k in keys:
            pipe.get(k)
        replies = await pipe.execute(raise_on_error=False)
        out: list[tuple[str, SessionRecord | None]] = []
        for k, raw in zip(keys, replies):
            rec = parse_adk_session(raw) if isinstance(raw, (bytes, str)) else None
            out.append((k, rec))
        return out

    async def state(self, key: str) -> dict[str, Any]:
        raw = await self.client.get(key)
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    async def records(self) -> AsyncIterator[tuple[str, SessionRecord | None]]:
        cursor = 0
        while True:
            cursor, keys = await self.scan_page(cursor)
            for item in await self.load(keys):
                yield item
            if cursor == 0:
                return


async def _copy_states(
    writer: SessionWriter, source: AdkRedisSource, rec: SessionRecord, stats: ImportStats
) -> list[str]:
    """Fill the app and user state of ``rec``'s app/user (once per run); the legacy keys read."""
    read: list[str] = []
    app_key = source.app_state_key(rec.app_name)
    if app_key not in source._states:
        source._states.add(app_key)
        stats.state_fields += await writer.fill_app_state(rec.app_name, await source.state(app_key))
        read.append(app_key)
    user_key = source.user_state_key(rec.app_name, rec.user_id)
    if user_key not in source._states:
        source._states.add(user_key)
        state = await source.state(user_key)
        stats.state_fields += await writer.fill_user_state(rec.app_name, rec.user_id, state)
        read.append(user_key)
    return read


@dataclass
class MigrationProgress:
    """Persistent progress of :func:`migrate_adk_redis` (a HASH under our prefix)."""

    cursor: int = 0
    migrated: int = 0
    skipped_existing: int = 0
    invalid: int = 0
    done: bool = False
    run: ImportStats = field(default_factory=ImportStats)

    def as_dict(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "cursor": self.cursor,
            "migrated_total": self.migrated,
            "skipped_existing_total": self.skipped_existing,
            "invalid_total": self.invalid,
            "this_run": self.run.as_dict(),
        }


def progress_name(legacy_prefix: str) -> str:
    return f"adk-redis-v0:{legacy_prefix}"


async def migrate_adk_redis(
    svc: RedisSessionService,
    *,
    legacy_prefix: str = ADK_REDIS_DEFAULT_PREFIX,
    limit: int | None = None,
    restart: bool = False,
    delete_legacy: bool = False,
    batch: int = 100,
    progress: Callable[[int], None] | None = None,
) -> MigrationProgress:
    """Upgrade ADK-Redis-integration (v0) records on ``svc``'s server into adk_redis's layout.

    Resumable: the SCAN cursor is saved after every batch under our prefix;
    ``limit`` stops after that many sessions were written (the partly done
    batch is scanned again next time: already migrated sessions are skipped).
    ``delete_legacy`` removes each legacy session key (and state key) once its
    data is stored in the new layout.  A finished migration is not rescanned
    unless ``restart``.  ``progress(n)`` is called as keys are processed.
    """
    pkey = svc.keys.migration(progress_name(legacy_prefix))
    # unreadable keys as a set: a re-scanned batch must not count one twice
    invalid_key = svc.keys.migration_invalid(progress_name(legacy_prefix))
    saved = {text(k): text(v) for k, v in (await svc.client.hgetall(pkey)).items()}
    prog = MigrationProgress(
        cursor=int(saved.get("cursor", 0)),
        migrated=int(saved.get("migrated", 0)),
        skipped_existing=int(saved.get("skipped_existing", 0)),
        invalid=int(saved.get("invalid", 0)),
        done=saved.get("done") == "1",
    )
    if restart:
        prog.cursor, prog.done = 0, False
        await svc.client.delete(invalid_key)
    if prog.done:
        return prog
    source = AdkRedisSource(svc.client, legacy_prefix)
    writer = SessionWriter(svc)
    stats = prog.run
    while True:
        next_cursor, keys = await source.scan_page(prog.cursor, batch)
        stopped = False
        invalid: list[str] = []
        for key, rec in await source.load(keys):
            if progress is not None:
                progress(1)
            if limit is not None and stats.imported >= limit:
                stopped = True
                break
            if rec is None:  # a state document, one of our own keys (overlapping prefixes), or junk
                states = (f"{legacy_prefix}app_state:", f"{legacy_prefix}user_state:")
                # our own keys (should the two prefixes overlap, e.g. REDIS_KEY_PREFIX=adk) are not junk
                if not key.startswith(states) and svc.keys.parse_key(key) is None:
                    invalid.append(key)
                continue
            legacy_states = await _copy_states(writer, source, rec, stats)
            if await writer.write_session(rec):
                stats.imported += 1
            else:
                stats.skipped_existing += 1
            if delete_legacy:
                await svc.client.delete(key, *legacy_states)
        if not stopped:
            prog.cursor = next_cursor
            prog.done = next_cursor == 0
        if invalid:
            await svc.client.sadd(invalid_key, *invalid)
        stats.invalid = int(await svc.client.scard(invalid_key)) - prog.invalid
        await svc.client.hset(
            pkey,
            mapping={
                "cursor": str(prog.cursor),
                "migrated": str(prog.migrated + stats.imported),
                "skipped_existing": str(prog.skipped_existing + stats.skipped_existing),
                "invalid": str(prog.invalid + stats.invalid),
                "done": "1" if prog.done else "0",
                "legacy_prefix": legacy_prefix,
                "updated": repr(time.time()),
            },
        )
        if stopped or prog.done:
            break
    prog.migrated += stats.imported
    prog.skipped_existing += stats.skipped_existing
    prog.invalid += stats.invalid
    return prog


# -- foreign sources (adk-redis import --from) ---------------------------------------------


async def adk_redis_records(
    client: Any, key_prefix: str
) -> AsyncIterator[tuple[SessionRecord, dict[str, Any], dict[str, Any]]]:
    """(session, app state, user state) of every session ADK's Redis integration stored."""
    source = AdkRedisSource(client, key_prefix)
    apps: dict[str, dict[str, Any]] = {}
    users: dict[tuple[str, str], dict[str, Any]] = {}
    async for _, rec in source.records():
        if rec is None:
            continue
        if rec.app_name not in apps:
            apps[rec.app_name] = await source.state(source.app_state_key(rec.app_name))
        if (rec.app_name, rec.user_id) not in users:
            users[rec.app_name, rec.user_id] = await source.state(
                source.user_state_key(rec.app_name, rec.user_id)
            )
        yield rec, apps[rec.app_name], users[rec.app_name, rec.user_id]


def sql_app_names(db_path: str) -> list[str]:
    """App names in an ADK SQLite session database (read directly: ADK's services need them)."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT DISTINCT app_name FROM sessions ORDER BY app_name").fetchall()
    return [str(r[0]) for r in rows]


def sql_flavour(db_path: str) -> str:
    """``sqlite`` (ADK SqliteSessionService) or ``database`` (DatabaseSessionService) for a SQLite file."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "sessions" not in tables:
            raise ValueError(f"{db_path} has no ADK sessions table")
        if "adk_internal_metadata" in tables:
            return "database"
        columns = {r[1] for r in conn.execute("PRAGMA table_info(events)")}
    return "sqlite" if "event_data" in columns else "database"


def split_state(merged: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(app, user, session) parts of a merged session state (``temp:`` dropped)."""
    parts = _session_util.extract_state_delta(merged)
    session = {k: v for k, v in parts["session"].items() if not k.startswith(State.TEMP_PREFIX)}
    return parts["app"], parts["user"], session


async def sql_records(url: str) -> AsyncIterator[tuple[SessionRecord, dict[str, Any], dict[str, Any]]]:
    """Read an ADK SQL session database through ADK's own services.

    ``sqlite:///path`` opens the file with whichever ADK service wrote it
    (SqliteSessionService or DatabaseSessionService); any other SQLAlchemy
    async URL (``sqlite+aiosqlite://``, ``postgresql+asyncpg://``, ...) uses
    DatabaseSessionService.
    """
    from google.adk.sessions.base_session_service import BaseSessionService

    svc: BaseSessionService
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        flavour = sql_flavour(path)
        apps = sql_app_names(path)
        if flavour == "sqlite":
            from google.adk.sessions.sqlite_session_service import SqliteSessionService

            svc = SqliteSessionService(path)
        else:
            from google.adk.sessions.database_session_service import DatabaseSessionService

            svc = DatabaseSessionService(f"sqlite+aiosqlite:///{path}")
    else:
        from google.adk.sessions.database_session_service import DatabaseSessionService
        from sqlalchemy import text as sql

        db = DatabaseSessionService(url)
        async with db.db_engine.connect() as conn:
            rows = await conn.execute(sql("SELECT DISTINCT app_name FROM sessions ORDER BY app_name"))
            apps = [str(r[0]) for r in rows]
        svc = db
    try:
        for app in apps:
            listed = await svc.list_sessions(app_name=app, user_id=None)
            for brief in listed.sessions:
                full = await svc.get_session(app_name=app, user_id=brief.user_id, session_id=brief.id)
                if full is None:
                    continue
                app_state, user_state, session_state = split_state(full.state)
                rec = SessionRecord(
                    app, full.user_id, full.id, session_state, list(full.events), full.last_update_time
                )
                yield rec, app_state, user_state
    finally:
        close = getattr(svc, "close", None)
        if close is not None:
            await close()


async def import_sessions(
    svc: RedisSessionService,
    records: AsyncIterator[tuple[SessionRecord, dict[str, Any], dict[str, Any]]],
    *,
    app: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportStats:
    """Write every record (skipping existing sessions) and fill missing app/user state."""
    writer = SessionWriter(svc)
    stats = ImportStats()
    seen_apps: set[str] = set()
    seen_users: set[tuple[str, str]] = set()
    async for rec, app_state, user_state in records:
        if progress is not None:
            progress(1)
        if app is not None and rec.app_name != app:
            continue
        if rec.app_name not in seen_apps:
            seen_apps.add(rec.app_name)
            stats.state_fields += await writer.fill_app_state(rec.app_name, app_state)
        if (rec.app_name, rec.user_id) not in seen_users:
            seen_users.add((rec.app_name, rec.user_id))
            stats.state_fields += await writer.fill_user_state(rec.app_name, rec.user_id, user_state)
        try:
            if await writer.write_session(rec):
                stats.imported += 1
            else:
                stats.skipped_existing += 1
        except (ValueError, TypeError) as exc:
            stats.invalid += 1
            stats.errors.append(f"{rec.app_name}/{rec.user_id}/{rec.id}: {exc}")
    return stats
