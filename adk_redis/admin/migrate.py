"""``adk-redis migrate`` and ``import --from``: ADK's own stores into adk_redis (work: admin.adk_stores)."""

from __future__ import annotations

import argparse
import os
import sqlite3
from urllib.parse import urlsplit

from ..session_service import RedisSessionService
from ..url import redact_url as redact
from .common import EXIT_DATA, EXIT_FILE, EXIT_OK, EXIT_PROBLEM, CliError, Progress, Result, plural


async def cmd_import_from(svc: RedisSessionService, args: argparse.Namespace) -> Result:
    """``import --from``: ADK's SQL session databases or ADK's Redis integration."""
    from ..connection import create_client
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
    run = prog.run
    state = "complete" if prog.done else "incomplete: run again to continue"
    lines = [
        f"migrated {plural(run.imported, 'session')} this run, skipped {run.skipped_existing} already "
        f"migrated, filled {plural(run.state_fields, 'app/user state field')}",
        f"total: {prog.migrated} migrated, {plural(prog.invalid, 'unreadable key')}; migration {state}",
    ]
    return Result(prog.as_dict(), lines)
