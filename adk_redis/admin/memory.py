"""``adk-redis memory list|show|delete`` and ``users forget``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from google.adk.memory.memory_entry import MemoryEntry

from ..errors import InvalidCursorError
from ..memory._service import RedisMemoryService
from ..sessions._service import RedisSessionService
from .common import EXIT_OK, EXIT_PROBLEM, CliError, Result, plural


def _memory(svc: RedisSessionService) -> RedisMemoryService:
    return RedisMemoryService(client=svc.client, settings=svc.settings, read_stored_sessions=False)


def _text(m: MemoryEntry) -> str:
    return " ".join(p.text or "" for p in (m.content.parts or []) if p.text)


def _row(m: MemoryEntry) -> dict[str, Any]:
    return {
        "id": m.id,
        "author": m.author,
        "timestamp": m.timestamp,
        "text": _text(m),
        "custom_metadata": m.custom_metadata,
    }


async def cmd_memory_list(svc: RedisSessionService, args: argparse.Namespace) -> Result:
    """One page (``--limit``, ``--cursor``) or every page (``--all``) of a user's memories, in id order."""
    mem = _memory(svc)
    cursor: str | None = args.cursor
    rows: list[dict[str, Any]] = []
    while True:
        try:
            page = await mem.list_memories(
                app_name=args.app, user_id=args.user, kind=args.kind, cursor=cursor, limit=args.limit
            )
        except InvalidCursorError as exc:
            raise CliError(f"--cursor: {exc}") from None
        except ValueError as exc:
            raise CliError(str(exc)) from None
        rows += [_row(m) for m in page.memories]
        cursor = page.next_cursor
        if cursor is None or not args.all:
            break
    lines = [f"{plural(len(rows), 'memory', 'memories')} of user {args.user!r} in app {args.app!r}"]
    for r in rows:
        body = r["text"] if len(r["text"]) <= 100 else r["text"][:97] + "..."
        lines.append(f"  {r['id']}  {r['author'] or '-'}: {body}")
    if cursor is not None:
        more = f"more memories: add --cursor {cursor} (or list them all with --all)"
        if args.json:
            print(more, file=sys.stderr)
        else:
            lines.append(more)
    return Result(rows, lines)


async def cmd_memory_show(svc: RedisSessionService, args: argparse.Namespace) -> Result:
    m = await _memory(svc).get_memory(app_name=args.app, user_id=args.user, memory_id=args.memory_id)
    if m is None:
        msg = f"memory {args.memory_id!r} of user {args.user!r} in app {args.app!r} not found"
        return Result({"error": msg}, [msg], EXIT_PROBLEM)
    row = _row(m)
    lines = [
        f"memory {m.id} (app {args.app!r}, user {args.user!r})",
        f"author: {m.author or '-'}, timestamp: {m.timestamp or '-'}",
        "metadata: " + json.dumps(m.custom_metadata, sort_keys=True, default=str),
        row["text"],
    ]
    return Result(row, lines)


async def cmd_memory_delete(svc: RedisSessionService, args: argparse.Namespace) -> Result:
    """Delete memories by id and/or every turn memory of ``--session``; exit 1 if an id matched nothing."""
    if not args.memory_ids and not args.session:
        raise CliError("give memory ids or --session")
    mem = _memory(svc)
    deleted: list[str] = []
    missing: list[str] = []
    for mid in args.memory_ids:  # looked up first: a missing id is reported here, not logged
        n = 0
        if await mem.get_memory(app_name=args.app, user_id=args.user, memory_id=mid) is not None:
            n = await mem.delete_memories(app_name=args.app, user_id=args.user, memory_ids=[mid])
        (deleted if n else missing).append(mid)
    lines = [f"deleted {mid}" for mid in deleted] + [f"not found: {mid}" for mid in missing]
    data: dict[str, Any] = {"deleted": deleted, "not_found": missing}
    if args.session:
        n = await mem.delete_session_memories(app_name=args.app, user_id=args.user, session_id=args.session)
        data["session_memories_deleted"] = n
        lines.append(f"deleted {plural(n, 'memory', 'memories')} of session {args.session!r}")
    return Result(data, lines, EXIT_PROBLEM if missing else EXIT_OK)


async def cmd_users_forget(svc: RedisSessionService, args: argparse.Namespace) -> Result:
    """Erase everything this package stores of one user; prints the counts per kind."""
    counts = await _memory(svc).forget_user(app_name=args.app, user_id=args.user)
    data = counts.as_dict()
    lines = [f"forgot user {args.user!r} in app {args.app!r}:"]
    lines += [f"  {kind:16} {n}" for kind, n in data.items()]
    return Result(data, lines)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """The ``memory`` and ``users`` commands."""
    memory = sub.add_parser(
        "memory",
        parents=[common],
        help="a user's memories (list, show, delete); memory generation (worker, jobs)",
    )
    msub = memory.add_subparsers(dest="action", required=True, metavar="ACTION")
    from .memory_jobs import add_parsers as add_generation_parsers

    add_generation_parsers(msub, common)  # worker, jobs (memory generation)
    p = msub.add_parser(
        "list",
        parents=[common],
        help="list a user's memories (turns, explicit memories, user context), a page at a time",
        description="Lists one page of a user's live memories in id order (--limit, default 100; the next "
        "page's --cursor is printed, on stderr with --json) or every page (--all).",
    )
    p.add_argument("--app", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--kind", choices=("history", "memory", "context"))
    p.add_argument("--limit", type=int, default=100, help="memories per page, 1..1000 (default 100)")
    p.add_argument("--all", action="store_true", help="list every page")
    p.add_argument("--cursor", help="continue after the page that printed this cursor")
    p = msub.add_parser("show", parents=[common], help="show one memory (exit 1 if not found)")
    p.add_argument("--app", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("memory_id", metavar="ID")
    p = msub.add_parser(
        "delete",
        parents=[common],
        help="delete memories by id, or every turn memory of a session (exit 1 if an id is not found)",
    )
    p.add_argument("--app", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--session", help="also delete every turn memory ingested from this session")
    p.add_argument("memory_ids", metavar="ID", nargs="*")
    users = sub.add_parser("users", parents=[common], help="erase a user")
    usub = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = usub.add_parser(
        "forget",
        parents=[common],
        help="erase everything stored of one user (sessions, state, memories, context, records)",
    )
    p.add_argument("--app", required=True)
    p.add_argument("--user", required=True)


async def dispatch(svc: RedisSessionService, args: argparse.Namespace) -> Result:
    if args.command == "users":
        return await cmd_users_forget(svc, args)
    action = {"list": cmd_memory_list, "show": cmd_memory_show, "delete": cmd_memory_delete}
    return await action[args.action](svc, args)
