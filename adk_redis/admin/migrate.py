"""``adk-redis migrate`` and ``import --from``: ADK's own stores into adk_redis (work: admin.adk_stores).

``migrate`` also backfills the creation indexes (``order="created"`` pages) of sessions stored
before those indexes existed: :func:`backfill_created_index`.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from .._core.codec import text
from .._core.url import redact_url as redact
from ..sessions._layout import CREATED, FORMAT_VERSION, VERSION
from ..sessions._service import RedisSessionService
from .common import EXIT_DATA, EXIT_FILE, EXIT_OK, EXIT_PROBLEM, CliError, Progress, Result, plural


async def cmd_import_from(svc: RedisSessionService, args: argparse.Namespace) -> Result:
    """``import --from``: ADK's SQL session databases or ADK's Redis integration."""
    from .._core.connection import create_client
    from .adk_stores import adk_redis_records, import_sessions, sql_records

    url: str = args.source
    scheme = urlsplit(url).scheme
    progress = Progress("import (sessions)", enabled=not args.json)
    if scheme.startswith(("redis", "rediss", "unix")):
        client = create_client(svc.settings, url)  # ConfigurationError for a malformed URL (exit 2)
        try:
            stats = await import_sessions(
                svc, adk_redis_records(client, args.legacy_prefix), app=args.app, progress=progress.advance
            )
        finally:
            await client.aclose()
        origin = f"ADK Redis integration at {redact(url)} (key prefix {args.legacy_prefix!r})"
    elif scheme.startswith(("sqlite", "postgresql", "mysql", "mariadb", "oracle", "mssql")):
        if url.startswith("sqlite:///"):
            path = url[len("sqlite:///") :]
            if not os.path.isfile(path):
                raise CliError(f"--from: no such database file {path!r}", EXIT_FILE)
            if not os.access(path, os.R_OK):
                raise CliError(f"--from: cannot read {path!r} (permission denied)", EXIT_FILE)
        try:
            stats = await import_sessions(svc, sql_records(url), app=args.app, progress=progress.advance)
        except (sqlite3.Error, ValueError) as exc:
            raise CliError(f"--from: cannot read ADK sessions from {redact(url)}: {exc}", EXIT_DATA) from None
        except Exception as exc:
            if type(exc).__module__.startswith(("sqlalchemy", "aiosqlite", "asyncpg")):
                raise CliError(f"--from: cannot read {redact(url)}: {exc}", EXIT_FILE) from None
            if isinstance(exc, ModuleNotFoundError):
                raise CliError(f"--from {scheme}: the database driver is not installed ({exc})") from None
            raise
        origin = f"ADK database {redact(url)}"
    else:
        raise CliError(f"--from: unsupported source {redact(url)!r} (use sqlite:///path.db or redis://...)")
    progress.finish()
    data = {"source": redact(url), **stats.as_dict()}
    lines = [
        f"imported {plural(stats.imported, 'session')}, skipped {stats.skipped_existing} existing, "
        f"filled {plural(stats.state_fields, 'app/user state field')} from {origin}"
    ]
    lines += [f"error: {e}" for e in stats.errors]
    return Result(data, lines, EXIT_PROBLEM if stats.invalid else EXIT_OK)


@dataclass
class BackfillStats:
    """What :func:`backfill_created_index` did: sessions looked at, index entries added, sessions
    skipped (gone: expired or deleted; unreadable: no creation time)."""

    sessions: int = 0
    added: int = 0
    gone: int = 0
    unreadable: int = 0
    upgraded: int = 0  # records rewritten from an older format (session_layout.FORMAT_VERSION)


async def backfill_created_index(
    svc: RedisSessionService, *, batch: int = 500, progress: Callable[[int], None] | None = None
) -> BackfillStats:
    """Add every session of the user indexes to the creation indexes (user and app), scored by its
    meta's creation time (``_c``), and rewrite records of an older format in the current one.
    Idempotent (``ZADD NX``): a re-run adds nothing.  The user indexes are found with SCAN: an
    admin tool."""
    from .sessions import index_tags

    stats = BackfillStats()
    _, users = await index_tags(svc)
    ttl = int(svc._ttl)
    for app in sorted(users):
        for user in sorted(users[app]):
            members = [text(m) for m in await svc.client.zrange(svc.keys.user_index(app, user), 0, -1)]
            user_created = svc.keys.user_created_index(app, user)
            app_created = svc.keys.app_created_index(app)
            for i in range(0, len(members), batch):
                chunk = members[i : i + batch]
                pipe = svc.client.pipeline(transaction=False)
                for m in chunk:
                    sid = svc.keys.parse_session_member(m)
                    pipe.hmget(svc.keys.session(app, user, sid).meta, [CREATED, VERSION])
                replies = await pipe.execute(raise_on_error=False)
                created = [r if isinstance(r, Exception) else r[0] for r in replies]
                for m, r in zip(chunk, replies, strict=True):  # records of an older format: rewrite
                    if isinstance(r, Exception) or r[0] is None or text(r[1] or "") == FORMAT_VERSION:
                        continue
                    sid = svc.keys.parse_session_member(m)
                    stats.upgraded += await svc.upgrade_record(app_name=app, user_id=user, session_id=sid)
                mine: dict[str, float] = {}
                appwide: dict[str, float] = {}
                for m, c in zip(chunk, created, strict=True):
                    stats.sessions += 1
                    if c is None:
                        stats.gone += 1
                        continue
                    try:
                        score = float(text(c)) if not isinstance(c, Exception) else None
                    except ValueError:
                        score = None
                    if score is None:
                        stats.unreadable += 1
                        continue
                    mine[m] = score
                    appwide[svc.keys.app_index_member(user, svc.keys.parse_session_member(m))] = score
                if mine:
                    pipe = svc.client.pipeline(transaction=False)
                    pipe.zadd(user_created, mine, nx=True)
                    pipe.zadd(app_created, appwide, nx=True)
                    if ttl > 0:
                        pipe.pexpire(user_created, ttl)
                        pipe.pexpire(app_created, ttl)
                    stats.added += int((await pipe.execute())[0])
                if progress is not None:
                    progress(len(chunk))
    return stats


async def cmd_migrate(svc: RedisSessionService, args: argparse.Namespace) -> Result:
    from .adk_stores import migrate_adk_redis

    if args.limit is not None and args.limit < 1:
        raise CliError("--limit must be positive")
    progress = Progress("migrate (keys)", enabled=not args.json)
    prog = await migrate_adk_redis(
        svc,
        legacy_prefix=args.legacy_prefix,
        limit=args.limit,
        restart=args.restart,
        delete_legacy=args.delete_legacy,
        batch=args.batch,
        progress=progress.advance,
    )
    progress.finish()
    backfill = await backfill_created_index(svc)
    run = prog.run
    state = "complete" if prog.done else "incomplete: run again to continue"
    lines = [
        f"migrated {plural(run.imported, 'session')} this run, skipped {run.skipped_existing} already "
        f"migrated, filled {plural(run.state_fields, 'app/user state field')}",
        f"total: {prog.migrated} migrated, {plural(prog.invalid, 'unreadable key')}; migration {state}",
        f"creation index: {plural(backfill.added, 'session')} added of {backfill.sessions} "
        f"({backfill.gone} gone, {backfill.unreadable} without a creation time); "
        f"{plural(backfill.upgraded, 'session record')} rewritten in the current format",
    ]
    return Result({**prog.as_dict(), "created_index": asdict(backfill)}, lines)
