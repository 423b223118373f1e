"""``adk-redis stats``, ``sessions list|show|delete`` and ``bench``."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from typing import Any

from google.adk.events.event import Event
from google.adk.sessions.session import Session
from google.adk.sessions.state import State

from .._core.codec import text
from ..errors import InvalidCursorError
from ..keys import KeySchema
from ..sessions._layout import COUNT
from ..sessions._pages import MAX_PAGE_LIMIT, PageOrder
from ..sessions._service import RedisSessionService
from .common import EXIT_OK, EXIT_PROBLEM, CliError, Result, iso, plural, server_info

_NOT_THE_SESSIONS = (State.APP_PREFIX, State.TEMP_PREFIX)  # app-wide, or never stored


def _state_keys(state: dict[str, Any]) -> int:
    """The STATE KEYS column: the session's own keys and its user's ``user:`` keys."""
    return sum(1 for k in state if not k.startswith(_NOT_THE_SESSIONS))


async def _scan(client: Any, pattern: str) -> list[str]:
    return [text(k) async for k in client.scan_iter(match=pattern, count=1000)]


async def index_tags(svc: RedisSessionService) -> tuple[dict[str, str], dict[str, list[str]]]:
    """SCAN the session indexes: ({app: app index key}, {app: [users]}). Admin tool only."""
    apps: dict[str, str] = {}
    users: dict[str, list[str]] = {}
    for key in await _scan(svc.client, svc.keys.index_pattern()):
        parsed = svc.keys.parse_key(key)
        if parsed is None or parsed.app is None:
            continue
        if parsed.kind == "user_index" and parsed.owner is not None:
            users.setdefault(parsed.app, []).append(parsed.owner)
        elif parsed.kind == "app_index":
            apps[parsed.app] = key
    return apps, users


async def prefixes_in_use(svc: RedisSessionService) -> dict[str, int]:
    """{key prefix: apps} of every prefix on the server holding session indexes (SCAN: admin only)."""
    apps: dict[str, set[str]] = {}
    for key in await _scan(svc.client, KeySchema("*").index_pattern()):
        head, sep, _ = key.rpartition(":session:{")  # ids are escaped: no ':session:{' inside them
        parsed = KeySchema(head).parse_key(key) if sep and head else None
        if parsed is not None and parsed.app is not None:
            apps.setdefault(head, set()).add(parsed.app)
    return {p: len(a) for p, a in sorted(apps.items())}


def _prefix_hint(prefixes: dict[str, int], current: str) -> str:
    others = {p: n for p, n in prefixes.items() if p != current}
    if not others:
        return "no other key prefix on this server holds sessions"
    listed = ", ".join(f"{p!r} ({plural(n, 'app')})" for p, n in others.items())
    return f"key prefixes with sessions on this server: {listed} (choose one with --prefix)"


async def unknown_app(svc: RedisSessionService, app: str) -> Result | None:
    """None when ``app`` has sessions under the prefix; else the "not found" result naming what exists."""
    if await svc.client.exists(svc.keys.app_index(app)):
        return None
    apps, users = await index_tags(svc)
    known = sorted(set(apps) | set(users))
    if app in known:
        return None
    prefix = svc.keys.prefix
    msg = f"app {app!r} not found under key prefix {prefix!r}"
    data: dict[str, Any] = {"error": msg, "apps": known}
    if known:
        close = difflib.get_close_matches(app, known, n=1)
        msg += f"; its apps: {', '.join(repr(a) for a in known)}"
        if close:
            msg += f" (did you mean {close[0]!r}?)"
    else:
        prefixes = await prefixes_in_use(svc)
        data["prefixes"] = prefixes
        msg += f" (no apps there); {_prefix_hint(prefixes, prefix)}"
    data["error"] = msg
    return Result(data, [msg], EXIT_PROBLEM)


async def cmd_stats(svc: RedisSessionService, args: argparse.Namespace) -> Result:
    server = await server_info(svc.client, "server")
    memory = await server_info(svc.client, "memory")
    apps, users = await index_tags(svc)
    per_app: dict[str, dict[str, int]] = {}
    for app in sorted(set(apps) | set(users)):
        sessions = int(await svc.client.zcard(svc.keys.app_index(app)))
        per_app[app] = {"sessions": sessions, "users": len(users.get(app, []))}
    all_keys = await _scan(svc.client, svc.keys.pattern())
    memory_keys = sum(1 for k in all_keys if k.startswith(f"{svc.keys.prefix}:memory:"))
    data: dict[str, Any] = {
        "server": {
            "version": server.get("redis_version"),
            "valkey_version": server.get("valkey_version"),
            "mode": server.get("redis_mode", "standalone"),
            "used_memory": memory.get("used_memory"),
            "used_memory_human": memory.get("used_memory_human"),
            "maxmemory_human": memory.get("maxmemory_human"),
            "maxmemory_policy": memory.get("maxmemory_policy"),
        },
        "prefix": svc.keys.prefix,
        "keys": len(all_keys),
        "memory_keys": memory_keys,
        "apps": per_app,
    }
    version = server.get("redis_version")
    if server.get("valkey_version"):
        version = f"{version} (valkey {server['valkey_version']})"
    lines = [
        f"server:   {version}, {data['server']['mode']}",
        f"memory:   {memory.get('used_memory_human')} used, maxmemory {memory.get('maxmemory_human')} "
        f"({memory.get('maxmemory_policy')})",
        f"prefix:   {svc.keys.prefix!r}: {len(all_keys)} keys ({memory_keys} memory keys)",
    ]
    if not per_app:
        prefixes = await prefixes_in_use(svc)
        data["prefixes"] = prefixes
        lines.append(f"apps:     none under this prefix; {_prefix_hint(prefixes, svc.keys.prefix)}")
    for app, counts in per_app.items():
        lines.append(
            f"app {app!r}: {plural(counts['sessions'], 'session')}, {plural(counts['users'], 'user')}"
        )
    return Result(data, lines)


async def cmd_sessions_list(svc: RedisSessionService, args: argparse.Namespace) -> Result:
    """One page (``--limit``, ``--cursor``) or every page (``--all``) of the sessions, in ``--order``."""
    limit: int = getattr(args, "limit", 100)
    order: PageOrder = getattr(args, "order", "created")
    if not 1 <= limit <= MAX_PAGE_LIMIT:
        raise CliError(f"--limit must be from 1 to {MAX_PAGE_LIMIT}")
    cursor: str | None = getattr(args, "cursor", None)
    sessions: list[Session] = []
    while True:
        try:
            page = await svc.list_sessions_page(
                app_name=args.app, user_id=args.user, limit=limit, cursor=cursor, order=order
            )
        except InvalidCursorError as exc:
            raise CliError(f"--cursor: {exc}") from None
        sessions += page.sessions
        cursor = page.next_cursor
        if cursor is None or not getattr(args, "all", False):
            break
    if not sessions and getattr(args, "cursor", None) is None:
        missing = await unknown_app(svc, args.app)  # a typo'd --app names the apps that exist
        if missing is not None:
            return missing
    pipe = svc.client.pipeline(transaction=False)
    for s in sessions:
        pipe.hget(svc.keys.session(s.app_name, s.user_id, s.id).meta, COUNT)
    counts = await pipe.execute() if sessions else []
    rows: list[dict[str, Any]] = [
        {
            "app_name": s.app_name,
            "user_id": s.user_id,
            "id": s.id,
            "last_update_time": s.last_update_time,
            "events": int(n) if n is not None else None,
            "state_keys": _state_keys(s.state),
        }
        for s, n in zip(sessions, counts, strict=True)
    ]
    scope = f" for user {args.user!r}" if args.user else ""
    lines = [f"{plural(len(rows), 'session')} in app {args.app!r}{scope}"]
    more = f"more sessions: add --cursor {cursor} (or list them all with --all)"
    if cursor is not None:  # more pages: the rows stay a list with --json, the cursor goes to stderr
        if getattr(args, "json", False):
            print(more, file=sys.stderr)
        else:
            lines[0] += f" (one page, order {order})"
    if rows:
        uw = max(len("USER"), *(len(r["user_id"]) for r in rows))
        iw = max(len("SESSION"), *(len(r["id"]) for r in rows))
        lines.append(f"{'USER':{uw}}  {'SESSION':{iw}}  {'UPDATED':25}  {'EVENTS':>6}  {'STATE KEYS':>10}")
        for r in rows:
            events = "-" if r["events"] is None else str(r["events"])
            lines.append(
                f"{r['user_id']:{uw}}  {r['id']:{iw}}  {iso(r['last_update_time']):25}  "
                f"{events:>6}  {r['state_keys']:>10}"
            )
    if cursor is not None and not getattr(args, "json", False):
        lines.append(more)
    return Result(rows, lines)


def _describe_event(event: Event) -> str:
    bits: list[str] = []
    for part in (event.content.parts or []) if event.content else []:
        if part.text:
            bits.append(part.text if len(part.text) <= 200 else part.text[:197] + "...")
        if part.function_call:
            bits.append(f"call {part.function_call.name}({json.dumps(part.function_call.args or {})})")
        if part.function_response:
            bits.append(f"response {part.function_response.name}")
    if event.actions and event.actions.state_delta:
        bits.append(f"state_delta {json.dumps(event.actions.state_delta, default=str)}")
    return " | ".join(bits) or "(no content)"


async def cmd_sessions_show(svc: RedisSessionService, args: argparse.Namespace) -> Result:
    session = await svc.get_session(app_name=args.app, user_id=args.user, session_id=args.session_id)
    if session is None:
        missing = await unknown_app(svc, args.app)
        if missing is not None:
            return missing
        msg = f"session {args.session_id!r} of user {args.user!r} in app {args.app!r} not found"
        return Result({"error": msg}, [msg], EXIT_PROBLEM)
    data = json.loads(session.model_dump_json(exclude_none=True))
    lines = [
        f"session {session.id} (app {session.app_name!r}, user {session.user_id!r}), "
        f"updated {iso(session.last_update_time)}",
        "state: " + json.dumps(session.state, sort_keys=True, default=str),
        f"{plural(len(session.events), 'event')}:",
    ]
    for event in session.events:
        lines.append(f"  {iso(event.timestamp)}  {event.author}: {_describe_event(event)}")
    return Result(data, lines)


async def cmd_sessions_delete(svc: RedisSessionService, args: argparse.Namespace) -> Result:
    deleted: list[str] = []
    missing: list[str] = []
    for sid in args.session_ids:
        if await svc.client.exists(svc.keys.session(args.app, args.user, sid).meta):
            await svc.delete_session(app_name=args.app, user_id=args.user, session_id=sid)
            deleted.append(sid)
        else:
            missing.append(sid)
    lines = [f"deleted {sid}" for sid in deleted] + [f"not found: {sid}" for sid in missing]
    return Result({"deleted": deleted, "not_found": missing}, lines, EXIT_PROBLEM if missing else EXIT_OK)


async def cmd_bench(svc: RedisSessionService, args: argparse.Namespace) -> Result:
    from .quickbench import quick_bench

    data = await quick_bench(svc, iterations=args.iterations)
    lines = [
        f"{'operation':28} {'p50 us':>9} {'p99 us':>9}",
        *(
            f"{name:28} {data[key]['p50_us']:9.1f} {data[key]['p99_us']:9.1f}"
            for key, name in (
                ("round_trip", "bare round trip (EVALSHA)"),
                ("append_event", "append_event"),
                ("get_session_recent10", "get_session (10 recent)"),
            )
        ),
        f"append_event p50 = {data['append_vs_round_trip']}x round trip, "
        f"get_session p50 = {data['get_vs_round_trip']}x round trip ({args.iterations} iterations)",
    ]
    return Result(data, lines)
