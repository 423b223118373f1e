"""``adk-redis``: admin command line for the data adk_redis keeps in Redis.

Argument parsing and dispatch only; the commands live in :mod:`adk_redis.admin`
(``sessions``: stats, sessions, bench; ``backup``/``transfer``: export and import;
``migrate``; ``cleanup``; ``doctor``).  Nothing a user can type or a server can
answer ends in a traceback: every failure is one line and an exit code
(:mod:`adk_redis.admin.common`, the table in docs/reference/cli.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from .._core.url import parse_redis_url
from .._core.url import redact_url as redact
from ..config import load_settings
from ..errors import ConfigurationError
from ..sessions._service import RedisSessionService
from .common import (
    EXIT_CODES,
    EXIT_DATA,
    EXIT_FILE,
    EXIT_OK,
    EXIT_PROBLEM,
    EXIT_USAGE,
    CliError,
    Result,
)
from .errors import classify

__all__ = [
    "EXIT_DATA",
    "EXIT_FILE",
    "EXIT_OK",
    "EXIT_PROBLEM",
    "EXIT_USAGE",
    "build_parser",
    "main",
    "redact",
]

EXIT_ERROR = EXIT_USAGE  # kept for callers of the first version


def _common_options(url_default: str) -> argparse.ArgumentParser:
    """The options every command takes (``url_default``: what ``--url`` falls back to after $REDIS_URL)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url", default=argparse.SUPPRESS, help=f"Redis URL (default: $REDIS_URL, else {url_default})"
    )
    common.add_argument(
        "--prefix", default=argparse.SUPPRESS, help="key prefix (default: $REDIS_KEY_PREFIX, else 'vana')"
    )
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print machine-readable JSON"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The ``adk-redis`` argument parser (global options work before or after the command)."""
    common = _common_options("redis://localhost:6379")
    parser = argparse.ArgumentParser(
        prog="adk-redis",
        parents=[common],
        description="Inspect, export, import and check the ADK data adk_redis keeps in Redis.",
        epilog="exit codes:\n" + "\n".join(f"  {code}  {what}" for code, what in EXIT_CODES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser(
        "demo",
        parents=[_common_options("an embedded server started for the run")],
        help="run one turn of the sample agent on Redis (an embedded server without --url)",
        description="Runs one turn of the sample agent hello_agent (offline scripted model) through "
        "ADK's Runner with RedisSessionService, then reads the session back. Server: --url or "
        "$REDIS_URL, else an embedded Valkey server (installed with the package on Linux x86-64) "
        "with its data in --data-dir. --agents-dir prints the samples' agents directory, for adk web.",
    )
    p.add_argument("--data-dir", help="embedded server's data ($ADK_REDIS_DATA_DIR, else ./.adk_redis_data)")
    p.add_argument("--agents-dir", action="store_true", help="print the sample agents directory and exit")
    sub.add_parser(
        "stats",
        parents=[common],
        help="server version, memory use, sessions per app",
        description="Server version, memory use, and sessions/users per app. Apps are found with "
        "SCAN over the key prefix: fine for an admin tool, never used on a request path.",
    )
    sessions = sub.add_parser("sessions", parents=[common], help="list, show or delete sessions")
    ssub = sessions.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = ssub.add_parser(
        "list",
        parents=[common],
        help="list the sessions of an app (or one user), a page at a time",
        description="Lists one page of sessions (--limit, default 100; the next page's --cursor is "
        "printed, on stderr with --json) or every page (--all). --order created (default): oldest "
        "first, every session exactly once across pages; --order updated: most recent first.",
    )
    p.add_argument("--app", required=True)
    p.add_argument("--user")
    p.add_argument("--limit", type=int, default=100, help="sessions per page, 1..1000 (default 100)")
    p.add_argument("--all", action="store_true", help="list every page")
    p.add_argument("--cursor", help="continue after the page that printed this cursor")
    p.add_argument("--order", choices=("created", "updated"), default="created")
    p = ssub.add_parser("show", parents=[common], help="show one session with its state and events")
    p.add_argument("--app", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("session_id", metavar="ID")
    p = ssub.add_parser("delete", parents=[common], help="delete sessions (exit 1 if one is missing)")
    p.add_argument("--app", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("session_ids", metavar="ID", nargs="+")
    from .memory import add_parsers as add_memory_parsers

    add_memory_parsers(sub, common)
    p = sub.add_parser(
        "export",
        parents=[common],
        help="back up everything under the prefix as JSON Lines",
        description="A header line (format, version, counts), then one JSON object per line: "
        "sessions (events, state, created/updated times, expiry), app and user state, memory "
        "documents (with metadata, expiry and vectors), tombstones, user context, agent memory, "
        "knowledge, session history and the design API's owner records. Keys are found with SCAN "
        "over the prefix (an admin tool).",
    )
    p.add_argument("--app", help="export only this app")
    p.add_argument("--user", help="export only this user's data (no app-wide data)")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.add_argument(
        "--no-vectors", action="store_true", help="leave memory vectors out (BM25 search still works)"
    )
    p = sub.add_parser(
        "import",
        parents=[common],
        help="restore an export (idempotent, re-runnable)",
        description="Restores into an empty or an existing prefix: ids, timestamps and remaining "
        "TTLs are kept; what already exists (a session, a memory, a state key, a key) is kept, so "
        "re-running after an interruption is safe. Invalid records are rejected with their line "
        "numbers (exit code 1).",
    )
    p.add_argument("-i", "--input", help="read this file instead of stdin")
    p.add_argument("--app", help="import only this app's records")
    p.add_argument("--user", help="import only this user's records")
    p.add_argument(
        "--check",
        action="store_true",
        help="check the file (every record, the header's counts) without writing anything",
    )
    p.add_argument(
        "--from",
        dest="source",
        metavar="URL",
        help="import from another store instead of JSON Lines: an ADK session database "
        "(sqlite:///path.db written by SqliteSessionService or DatabaseSessionService, or any "
        "DatabaseSessionService URL) or a Redis server used by ADK's own Redis integration "
        "(redis://...; sessions found with SCAN). Existing sessions are skipped; event ids, "
        "timestamps and order are kept.",
    )
    p.add_argument(
        "--legacy-prefix",
        default="adk:session:",
        help="key prefix of ADK's Redis integration (default 'adk:session:')",
    )
    p = sub.add_parser(
        "migrate",
        parents=[common],
        help="upgrade records of ADK's Redis integration in place (resumable, idempotent)",
        description="Converts sessions, events and app/user state written by ADK's "
        "google.adk.integrations.redis.RedisSessionService (format v0: one JSON document per "
        "session under --legacy-prefix) into adk_redis's layout on the same server. Progress (the "
        "SCAN cursor) is kept under the key prefix: an interrupted or --limit'ed run continues "
        "where it stopped; sessions already migrated are skipped. Legacy keys are found with SCAN: "
        "an admin tool, never used on a request path.",
    )
    p.add_argument(
        "--legacy-prefix",
        default="adk:session:",
        help="key prefix of ADK's Redis integration (default 'adk:session:')",
    )
    p.add_argument("--limit", type=int, help="stop after migrating this many sessions")
    p.add_argument("--batch", type=int, default=100, help="SCAN COUNT per step (default 100)")
    p.add_argument("--restart", action="store_true", help="rescan from the start even if complete")
    p.add_argument(
        "--delete-legacy", action="store_true", help="delete each legacy key once its data is migrated"
    )
    p = sub.add_parser(
        "cleanup",
        parents=[common],
        help="prune index entries of expired/deleted sessions and expired memory entries",
        description="Removes user/app session-index entries whose session expired or was deleted, "
        "expired memory documents (RedisMemoryService.cleanup) and expired session-history entries. "
        "Indexes are found with SCAN over the key prefix: fine for an admin tool, never used on a "
        "request path. Safe to run at any time (e.g. from cron).",
    )
    p.add_argument("--dry-run", action="store_true", help="only count what would be removed")
    p.add_argument("-v", "--verbose", action="store_true", help="list every dropped index entry")
    p = sub.add_parser(
        "bench",
        parents=[common],
        help="quick latency check: append/get p50 vs the bare round trip",
        description="Appends events to and reads a throw-away session (deleted afterwards) and "
        "prints p50/p99 of append_event and get_session(num_recent_events=10) next to the bare "
        "round trip (EVALSHA of 'return 1'), measured interleaved. bench/sessions.py is the full "
        "benchmark.",
    )
    p.add_argument("-n", "--iterations", type=int, default=200, help="timed iterations (default 200)")
    p = sub.add_parser(
        "doctor",
        parents=[common],
        help="check connectivity, TLS, latency, eviction, persistence and the stored data",
        description="Checks connectivity, auth, TLS, latency, server version, the maxmemory-policy "
        "(warns unless noeviction or volatile-*), persistence (warns without AOF/RDB) and the key space "
        "(dangling index entries, expired memory entries, a sample of sessions decoded; SCAN-based).",
    )
    p.add_argument("--sample", type=int, default=500, help="sessions to decode (default 500)")
    return parser


def _version() -> str:
    """``adk-redis X (google-adk Y, redis-py Z)``: what a bug report needs."""
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    def of(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:
            return "not installed"

    return f"adk-redis {__version__} (google-adk {of('google-adk')}, redis-py {of('redis')})"


def _settings_and_service(args: argparse.Namespace, client: Any) -> tuple[str, RedisSessionService]:
    url = args.url or os.environ.get("REDIS_URL") or load_settings().redis_url
    # The same URI as adk web's service URIs works here: ?key_prefix= (unless --prefix is given),
    # ?session_ttl_hours= and ?stale_policy= become settings; redis-py gets the rest.
    checked = parse_redis_url(url)
    ours = checked.ours
    ttl = ours.get("session_ttl_hours")
    settings = load_settings(
        redis_url=checked.client_url,
        redis_key_prefix=args.prefix or ours.get("key_prefix"),
        session_ttl_hours=ttl if ttl and ttl.strip().lower() not in ("none", "0") else None,
        session_stale_policy=ours.get("stale_policy"),
    )
    return url, RedisSessionService(checked.client_url, settings=settings, client=client)


async def _dispatch(svc: RedisSessionService, args: argparse.Namespace, url: str) -> Result:
    from . import backup, cleanup, doctor, migrate, sessions

    if args.command == "stats":
        return await sessions.cmd_stats(svc, args)
    if args.command == "sessions":
        action = {
            "list": sessions.cmd_sessions_list,
            "show": sessions.cmd_sessions_show,
            "delete": sessions.cmd_sessions_delete,
        }
        return await action[args.action](svc, args)
    if args.command == "memory" and args.action in ("worker", "jobs"):  # memory generation
        from . import memory_jobs

        if args.action == "worker":
            return await memory_jobs.cmd_worker(svc, args)
        return await memory_jobs.cmd_jobs(svc, args)
    if args.command in ("memory", "users"):
        from . import memory

        return await memory.dispatch(svc, args)
    if args.command == "export":
        return await backup.cmd_export(svc, args)
    if args.command == "import":
        return await backup.cmd_import(svc, args)
    if args.command == "migrate":
        return await migrate.cmd_migrate(svc, args)
    if args.command == "cleanup":
        return await cleanup.cmd_cleanup(svc, args)
    if args.command == "bench":
        return await sessions.cmd_bench(svc, args)
    return await doctor.cmd_doctor(svc, args, url)


async def _run(args: argparse.Namespace, client: Any = None) -> Result:
    url = args.url or os.environ.get("REDIS_URL") or ""
    try:
        url, svc = _settings_and_service(args, client)
    except (ConfigurationError, ValueError) as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    try:
        return await _dispatch(svc, args, url)
    except Exception as exc:
        error = classify(exc, url)
        if error is None:
            raise
        raise error from None
    finally:
        with contextlib.suppress(Exception):  # closing a broken connection must not mask the error
            await svc.close()


def main(argv: Sequence[str] | None = None, *, client: Any = None) -> int:
    """Entry point of the ``adk-redis`` console script; returns the exit code.

    ``client`` injects a ``redis.asyncio`` client (e.g. fakeredis) instead of
    connecting to ``--url``.
    """
    args = build_parser().parse_args(argv)
    for name, default in (("url", None), ("prefix", None), ("json", False)):
        if not hasattr(args, name):  # SUPPRESS defaults: the option may sit before or after the command
            setattr(args, name, default)
    try:
        if args.command == "demo":
            from .demo import cmd_demo

            result = cmd_demo(args)
        else:
            result = asyncio.run(_run(args, client))
    except CliError as exc:
        if args.json:
            with contextlib.suppress(BrokenPipeError):
                print(json.dumps({"error": str(exc), "exit_code": exc.code}))
        print(f"adk-redis: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("adk-redis: interrupted", file=sys.stderr)
        return 130
    finally:
        _quiet_closed_stdout()
    # export without --output owns stdout (the records): its summary goes to stderr.
    to_stdout = args.command == "export" and getattr(args, "output", None) in (None, "-")
    stream = sys.stderr if to_stdout else sys.stdout
    try:
        if args.json:
            print(json.dumps(result.data, indent=2, sort_keys=True, default=str), file=stream)
        else:
            for line in result.lines:
                print(line, file=stream)
    except BrokenPipeError:  # `adk-redis sessions list ... | head`
        _quiet_closed_stdout()
    return result.code


def _quiet_closed_stdout() -> None:
    """After ``adk-redis export | head``: no "Exception ignored ... BrokenPipeError" at interpreter exit."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        with contextlib.suppress(OSError, ValueError):
            os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
