"""``adk-redis``: admin command line for the data adk_redis keeps in Redis.

Exit codes: 0 ok, 1 a problem was found (warnings from ``doctor``, a missing
session, rejected import records), 2 usage, configuration or connection error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Any
from urllib.parse import urlsplit

from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.events.event import Event
from google.adk.sessions.state import State
from pydantic import ValidationError
from redis.exceptions import AuthenticationError, ResponseError

from . import codec
from .codec import text
from .config import ConfigurationError, load_settings
from .errors import AdkRedisError
from .keys import MAX_ID_LENGTH, unescape
from .resilience import UNAVAILABLE_ERRORS
from .session_service import RedisSessionService
from .url import redact_url as redact

EXIT_OK, EXIT_PROBLEM, EXIT_ERROR = 0, 1, 2
EXPORT_VERSION = 1
_SCOPED = (State.APP_PREFIX, State.USER_PREFIX, State.TEMP_PREFIX)


class CliError(Exception):
    """A usage, configuration or connection error (exit code 2)."""


@dataclass
class Result:
    """What a command produced: JSON-able data, human lines, exit code."""

    data: Any
    lines: list[str] = field(default_factory=list)
    code: int = EXIT_OK


# -- helpers -----------------------------------------------------------------------
def _iso(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")


def _session_only(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if not k.startswith(_SCOPED)}


async def _info(client: Any, section: str) -> dict[str, Any]:
    """INFO ``section`` as a flat dict ({} where INFO is disabled; a cluster answers per node: the first)."""
    try:
        reply = await client.info(section)
    except ResponseError:  # renamed/disabled command (managed services, proxies, fakeredis)
        return {}
    if reply and all(isinstance(v, dict) for v in reply.values()):
        reply = next(iter(reply.values()))
    return {text(k): v for k, v in dict(reply or {}).items()}


async def _scan(client: Any, pattern: str) -> list[str]:
    return [text(k) async for k in client.scan_iter(match=pattern, count=1000)]


async def _index_tags(svc: RedisSessionService) -> tuple[dict[str, str], dict[str, list[str]]]:
    """SCAN the session indexes: ({app: app index key}, {app: [users]}). Admin tool only."""
    head = f"{svc.keys.prefix}:session:{{"
    apps: dict[str, str] = {}
    users: dict[str, list[str]] = {}
    for key in await _scan(svc.client, f"{head}*}}:index"):
        tag = key[len(head) : -len("}:index")]
        if ":" in tag:
            app, _, user = tag.partition(":")
            users.setdefault(unescape(app), []).append(unescape(user))
        else:
            apps[unescape(tag)] = key
    return apps, users


async def _app_names(svc: RedisSessionService) -> list[str]:
    apps, users = await _index_tags(svc)
    return sorted(set(apps) | set(users))


# -- stats -------------------------------------------------------------------------
async def cmd_stats(svc: RedisSessionService, args: argparse.Namespace) -> Result:
    server = await _info(svc.client, "server")
    memory = await _info(svc.client, "memory")
    apps, users = await _index_tags(svc)
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
        lines.append("apps:     none")
    for app, counts in per_app.items():
        lines.append(f"app {app!r}: {counts['sessions']} sessions, {counts['users']} users")
    return Result(data, lines)


# -- sessions ----------------------------------------------------------------------
async def cmd_sessions_list(svc: RedisSessionService, args: argparse.Namespace) -> Result:
    listed = await svc.list_sessions(app_name=args.app, user_id=args.user)
    pipe = svc.client.pipeline(transaction=False)
    for s in listed.sessions:
        pipe.hget(svc.keys.session(s.app_name, s.user_id, s.id).meta, "_n")
    counts = await pipe.execute() if listed.sessions else []
    rows: list[dict[str, Any]] = [
        {
            "app_name": s.app_name,
            "user_id": s.user_id,
            "id": s.id,
            "last_update_time": s.last_update_time,
            "events": int(n) if n is not None else None,
            "state_keys": len(_session_only(s.state)),
        }
        for s, n in zip(listed.sessions, counts, strict=True)
    ]
    scope = f" for user {args.user!r}" if args.user else ""
    lines = [f"{len(rows)} session(s) in app {args.app!r}{scope}"]
    for r in rows:
        lines.append(
            f"  {r['user_id']}  {r['id']}  updated {_iso(r['last_update_time'])}  "
            f"{r['events']} events  {r['state_keys']} state keys"
        )
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
        msg = f"session {args.session_id!r} of user {args.user!r} in app {args.app!r} not found"
        return Result({"error": msg}, [msg], EXIT_PROBLEM)
    data = json.loads(session.model_dump_json(exclude_none=True))
    lines = [
        f"session {session.id} (app {session.app_name!r}, user {session.user_id!r}), "
        f"updated {_iso(session.last_update_time)}",
        "state: " + json.dumps(session.state, sort_keys=True, default=str),
        f"{len(session.events)} event(s):",
    ]
    for event in session.events:
        lines.append(f"  {_iso(event.timestamp)}  {event.author}: {_describe_event(event)}")
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


# -- export / import -------------------------------------------------------------------
async def export_records(svc: RedisSessionService, apps: Iterable[str]) -> Any:
    """Yield the JSON Lines records of ``apps``: app state, user states, then sessions."""
    for app in apps:
        app_state = svc.codec.decode_hash(await svc.client.hgetall(svc.keys.app_state(app)), where=app)
        if app_state:
            yield {"type": "app_state", "v": EXPORT_VERSION, "app_name": app, "state": app_state}
        listed = await svc.list_sessions(app_name=app)
        for user in sorted({s.user_id for s in listed.sessions}):
            state = await svc.get_user_state(app_name=app, user_id=user)
            if state:
                yield {
                    "type": "user_state",
                    "v": EXPORT_VERSION,
                    "app_name": app,
                    "user_id": user,
                    "state": state,
                }
        for brief in listed.sessions:
            session = await svc.get_session(app_name=app, user_id=brief.user_id, session_id=brief.id)
            if session is None:  # deleted meanwhile
                continue
            yield {
                "type": "session",
                "v": EXPORT_VERSION,
                "app_name": app,
                "user_id": session.user_id,
                "id": session.id,
                "last_update_time": session.last_update_time,
                "state": _session_only(session.state),
                "events": [json.loads(e.model_dump_json(exclude_none=True)) for e in session.events],
            }


async def cmd_export(svc: RedisSessionService, args: argparse.Namespace) -> Result:
    apps = [args.app] if args.app else await _app_names(svc)
    out: IO[str] = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    counts = {"app_state": 0, "user_state": 0, "session": 0}
    try:
        async for record in export_records(svc, apps):
            out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
            counts[record["type"]] += 1
    finally:
        if args.output:
            out.close()
    summary = (
        f"exported {counts['session']} session(s), {counts['user_state']} user state(s), "
        f"{counts['app_state']} app state(s) from {len(apps)} app(s)"
    )
    return Result({"apps": apps, **counts}, [summary], EXIT_OK)


def _need_id(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"{name} is longer than {MAX_ID_LENGTH} characters")
    return value


def _need_state(record: dict[str, Any], forbidden: tuple[str, ...]) -> dict[str, Any]:
    state = record.get("state", {})
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise ValueError("state must be an object")
    bad = [k for k in state if k.startswith(forbidden)]
    if bad:
        raise ValueError(f"state keys {bad[:3]} have a prefix not allowed here")
    return state


def validate_record(raw: str) -> dict[str, Any]:
    """Parse and check one import line; raise ValueError naming the problem."""
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise ValueError("a record must be a JSON object")
    if record.get("v", EXPORT_VERSION) != EXPORT_VERSION:
        raise ValueError(f"unsupported record version {record.get('v')!r}")
    kind = record.get("type")
    _need_id(record, "app_name")
    if kind == "app_state":
        record["state"] = _need_state(record, _SCOPED)
    elif kind == "user_state":
        _need_id(record, "user_id")
        record["state"] = _need_state(record, _SCOPED)
    elif kind == "session":
        _need_id(record, "user_id")
        _need_id(record, "id")
        record["state"] = _need_state(record, _SCOPED)
        events = record.get("events", [])
        if not isinstance(events, list):
            raise ValueError("events must be a list")
        parsed: list[Event] = []
        for i, payload in enumerate(events):
            required = ("id", "author", "timestamp")
            missing = [f for f in required if not isinstance(payload, dict) or f not in payload]
            if missing:
                raise ValueError(f"event {i} lacks {', '.join(missing)}")
            try:
                parsed.append(Event.model_validate(payload))
            except ValidationError as exc:
                raise ValueError(f"event {i} is not a valid ADK event ({exc.error_count()} errors)") from None
            if parsed[-1].partial:
                raise ValueError(f"event {i} is partial")
        ids = [e.id for e in parsed]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate event ids")
        record["events"] = parsed
    else:
        raise ValueError(f"unknown record type {kind!r}")
    return record


async def _fill_missing(svc: RedisSessionService, key: str, state: dict[str, Any]) -> int:
    """HSETNX each field: import never overwrites live state."""
    added = 0
    for k, v in codec.json_safe(state)["session"].items():
        added += int(await svc.client.hsetnx(key, k, svc.codec.encode_value(v)))
    return added


async def _import_session(svc: RedisSessionService, record: dict[str, Any]) -> bool:
    """Create the session and replay its events; False when it already exists.

    Replaying events would re-apply their ``app:``/``user:`` deltas to the live
    app/user state: those fields are put back as they were afterwards (the
    ``app_state``/``user_state`` records carry that state instead).
    """
    app, user, sid = record["app_name"], record["user_id"], record["id"]
    events: list[Event] = record["events"]
    touched_app = {
        k[len(State.APP_PREFIX) :]
        for e in events
        for k in (e.actions.state_delta or {})
        if k.startswith(State.APP_PREFIX)
    }
    touched_user = {
        k[len(State.USER_PREFIX) :]
        for e in events
        for k in (e.actions.state_delta or {})
        if k.startswith(State.USER_PREFIX)
    }
    app_key, user_key = svc.keys.app_state(app), svc.keys.user_state(app, user)
    before_app = {k: await svc.client.hget(app_key, k) for k in touched_app}
    before_user = {k: await svc.client.hget(user_key, k) for k in touched_user}
    try:
        session = await svc.create_session(app_name=app, user_id=user, session_id=sid, state=record["state"])
    except AlreadyExistsError:
        return False
    for event in events:
        await svc.append_event(session, event)
    for key, before in ((app_key, before_app), (user_key, before_user)):
        for k, old in before.items():
            if old is None:
                await svc.client.hdel(key, k)
            else:
                await svc.client.hset(key, k, old)
    return True


async def cmd_import_from(svc: RedisSessionService, args: argparse.Namespace) -> Result:
    """``import --from``: ADK's SQL session databases or ADK's Redis integration."""
    from .connection import create_client
    from .migrate import adk_redis_records, import_sessions, sql_records

    url: str = args.source
    scheme = urlsplit(url).scheme
    if scheme.startswith(("redis", "rediss", "unix", "valkey")):
        client = create_client(svc.settings, url)
        try:
            stats = await import_sessions(svc, adk_redis_records(client, args.legacy_prefix), app=args.app)
        finally:
            await client.aclose()
        origin = f"ADK Redis integration at {redact(url)} (key prefix {args.legacy_prefix!r})"
    elif scheme.startswith(("sqlite", "postgresql", "mysql", "mariadb", "oracle", "mssql")):
        stats = await import_sessions(svc, sql_records(url), app=args.app)
        origin = f"ADK database {redact(url)}"
    else:
        raise CliError(f"--from: unsupported source {redact(url)!r} (use sqlite:///path.db or redis://...)")
    data = {"source": redact(url), **stats.as_dict()}
    lines = [
        f"imported {stats.imported} session(s), skipped {stats.skipped_existing} existing, "
        f"filled {stats.state_fields} app/user state field(s) from {origin}"
    ]
    lines += [f"error: {e}" for e in stats.errors]
    return Result(data, lines, EXIT_PROBLEM if stats.invalid else EXIT_OK)


async def cmd_migrate(svc: RedisSessionService, args: argparse.Namespace) -> Result:
    from .migrate import migrate_adk_redis

    if args.limit is not None and args.limit < 1:
        raise CliError("--limit must be positive")
    prog = await migrate_adk_redis(
        svc,
        legacy_prefix=args.legacy_prefix,
        limit=args.limit,
        restart=args.restart,
        delete_legacy=args.delete_legacy,
        batch=args.batch,
    )
    run = prog.run
    state = "complete" if prog.done else "incomplete: run again to continue"
    lines = [
        f"migrated {run.imported} session(s) this run, skipped {run.skipped_existing} already migrated, "
        f"filled {run.state_fields} app/user state field(s)",
        f"total: {prog.migrated} migrated, {prog.invalid} unreadable key(s); migration {state}",
    ]
    return Result(prog.as_dict(), lines)


async def cmd_import(svc: RedisSessionService, args: argparse.Namespace) -> Result:
    if args.source:
        if args.input:
            raise CliError("--from and --input are mutually exclusive")
        return await cmd_import_from(svc, args)
    source: IO[str] = open(args.input, encoding="utf-8") if args.input else sys.stdin  # noqa: SIM115
    imported = skipped = states = 0
    rejected: list[dict[str, Any]] = []
    try:
        for lineno, raw in enumerate(source, 1):
            if not raw.strip():
                continue
            try:
                record = validate_record(raw)
            except ValueError as exc:
                rejected.append({"line": lineno, "reason": str(exc)})
                continue
            if args.app and record["app_name"] != args.app:
                continue
            try:
                if record["type"] == "app_state":
                    await _fill_missing(svc, svc.keys.app_state(record["app_name"]), record["state"])
                    states += 1
                elif record["type"] == "user_state":
                    key = svc.keys.user_state(record["app_name"], record["user_id"])
                    await _fill_missing(svc, key, record["state"])
                    states += 1
                elif await _import_session(svc, record):
                    imported += 1
                else:
                    skipped += 1
            except (AdkRedisError, ValueError, TypeError) as exc:
                rejected.append({"line": lineno, "reason": f"{type(exc).__name__}: {exc}"})
    finally:
        if args.input:
            source.close()
    data = {"imported": imported, "skipped_existing": skipped, "states": states, "rejected": rejected}
    lines = [f"imported {imported} session(s), skipped {skipped} existing, merged {states} state record(s)"]
    lines += [f"rejected line {r['line']}: {r['reason']}" for r in rejected]
    return Result(data, lines, EXIT_PROBLEM if rejected else EXIT_OK)


# -- cleanup / bench -------------------------------------------------------------------
async def cmd_cleanup(svc: RedisSessionService, args: argparse.Namespace) -> Result:
    from .maintenance import cleanup
    from .memory_service import RedisMemoryService

    mem = RedisMemoryService(client=svc.client, settings=svc.settings)
    report = await cleanup(svc, mem, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    lines = [
        f"{verb} {report.user_index_entries} user-index and {report.app_index_entries} app-index "
        f"entries of expired/deleted sessions",
        f"{verb} {report.memory_entries} expired memory entries and {report.history_entries} "
        f"expired session-history entries ({report.indexes_scanned} indexes scanned)",
    ]
    if args.verbose:
        lines += report.details
    return Result(report.as_dict(), lines)


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


# -- doctor ------------------------------------------------------------------------
async def cmd_doctor(svc: RedisSessionService, args: argparse.Namespace, url: str) -> Result:
    checks: list[dict[str, str]] = []

    def check(name: str, status: str, detail: str) -> None:
        checks.append({"check": name, "status": status, "detail": detail})

    await svc.client.ping()
    check("connectivity", "ok", f"{redact(url)} answered PING")
    check(
        "auth",
        "ok",
        "authenticated"
        if urlsplit(url).password or svc.settings.redis_password
        else "no password configured; the server accepted the connection",
    )
    samples = []
    for _ in range(20):
        start = time.perf_counter()
        await svc.client.ping()
        samples.append((time.perf_counter() - start) * 1000)
    median, worst = statistics.median(samples), max(samples)
    detail = f"median {median:.2f} ms, max {worst:.2f} ms over 20 PINGs"
    check("latency", "ok" if median < 10 else "warn", detail)

    server = await _info(svc.client, "server")
    version = str(server.get("redis_version", "?"))
    try:
        major = int(version.split(".")[0])
    except ValueError:
        major = 0
    name = f"valkey {server['valkey_version']}" if server.get("valkey_version") else f"redis {version}"
    check(
        "server version",
        "ok" if major >= 6 else "warn",
        name if major >= 6 else f"{name}: Redis 6.2+ (7+ recommended) is required",
    )

    memory = await _info(svc.client, "memory")
    policy = str(memory.get("maxmemory_policy", "unknown"))
    ttl = svc.settings.session_ttl_hours
    if policy.startswith("volatile-") and ttl:
        check(
            "maxmemory-policy",
            "warn",
            f"{policy} can evict sessions early: SESSION_TTL_HOURS={ttl:g} gives them a TTL",
        )
    elif policy == "noeviction" or policy.startswith("volatile-"):
        detail = f"{policy}: sessions without a TTL are never evicted"
        check("maxmemory-policy", "ok", detail)
    else:
        check(
            "maxmemory-policy",
            "warn",
            f"{policy} can evict session keys under memory pressure; use noeviction or volatile-*",
        )

    persistence = await _info(svc.client, "persistence")
    aof = bool(int(persistence.get("aof_enabled", 0)))
    try:
        save = await svc.client.config_get("save")
        rdb = bool(text(next(iter(save.values()), b"") or b"").strip()) if save else False
        rdb_known = True
    except ResponseError:  # CONFIG disabled (managed services)
        rdb, rdb_known = False, False
    if aof or rdb:
        check("persistence", "ok", f"AOF {'on' if aof else 'off'}, RDB snapshots {'on' if rdb else 'off'}")
    elif not rdb_known:
        check("persistence", "warn", "AOF off and CONFIG GET save is not allowed: RDB snapshots unknown")
    else:
        check("persistence", "warn", "no AOF and no RDB snapshots: a restart loses every session")

    scheme, host = urlsplit(url).scheme, urlsplit(url).hostname or ""
    if scheme.startswith("rediss") or scheme == "unix":
        check("tls", "ok", "TLS on" if scheme.startswith("rediss") else "unix socket (stays on this host)")
    elif host in ("localhost", "::1") or host.startswith("127."):
        check("tls", "ok", "plain text on loopback")
    else:
        check("tls", "warn", f"plain text to {host}: use rediss:// across a network")

    from .maintenance import check_sessions, cleanup
    from .memory_service import RedisMemoryService

    dangling = await cleanup(svc, RedisMemoryService(client=svc.client, settings=svc.settings), dry_run=True)
    stale = dangling.user_index_entries + dangling.app_index_entries
    expired = dangling.memory_entries + dangling.history_entries
    if stale or expired:
        check(
            "key space",
            "warn",
            f"{stale} index entries of gone sessions, {expired} expired memory entries "
            "(adk-redis cleanup removes them)",
        )
    else:
        check("key space", "ok", f"{dangling.indexes_scanned} indexes, no dangling or expired entries")
    sessions = await check_sessions(svc, sample=args.sample)
    if sessions.corrupted:
        shown = ", ".join(sessions.corrupted[:5])
        check(
            "stored sessions",
            "warn",
            f"{len(sessions.corrupted)} of {sessions.checked} sampled sessions do not decode ({shown}); "
            "see adk-redis sessions show / migrate",
        )
    else:
        check("stored sessions", "ok", f"{sessions.checked} sampled sessions decode")

    problems = [c for c in checks if c["status"] != "ok"]
    lines = [f"{c['status'].upper():5} {c['check']:17} {c['detail']}" for c in checks]
    lines.append(f"{len(problems)} problem(s) found" if problems else "all checks passed")
    return Result(
        {"url": redact(url), "checks": checks, "ok": not problems},
        lines,
        EXIT_PROBLEM if problems else EXIT_OK,
    )


# -- argument parsing ----------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The ``adk-redis`` argument parser (global options work before or after the command)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        help="Redis URL (default: $REDIS_URL, else redis://localhost:6379)",
    )
    common.add_argument(
        "--prefix", default=argparse.SUPPRESS, help="key prefix (default: $REDIS_KEY_PREFIX, else 'vana')"
    )
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print machine-readable JSON"
    )
    parser = argparse.ArgumentParser(
        prog="adk-redis",
        parents=[common],
        description="Inspect, export, import and check the ADK data adk_redis keeps in Redis.",
        epilog="Exit codes: 0 ok, 1 problem found, 2 usage or connection error.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser(
        "stats",
        parents=[common],
        help="server version, memory use, sessions per app",
        description="Server version, memory use, and sessions/users per app. Apps are found with "
        "SCAN over the key prefix: fine for an admin tool, never used on a request path.",
    )
    sessions = sub.add_parser("sessions", parents=[common], help="list, show or delete sessions")
    ssub = sessions.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = ssub.add_parser("list", parents=[common], help="list the sessions of an app (or one user)")
    p.add_argument("--app", required=True)
    p.add_argument("--user")
    p = ssub.add_parser("show", parents=[common], help="show one session with its state and events")
    p.add_argument("--app", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("session_id", metavar="ID")
    p = ssub.add_parser("delete", parents=[common], help="delete sessions (exit 1 if one is missing)")
    p.add_argument("--app", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("session_ids", metavar="ID", nargs="+")
    p = sub.add_parser(
        "export",
        parents=[common],
        help="export sessions and state as JSON Lines",
        description="One JSON object per line: app_state, user_state and session records "
        "(with all events). All apps (found with SCAN) unless --app is given.",
    )
    p.add_argument("--app", help="export only this app")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p = sub.add_parser(
        "import",
        parents=[common],
        help="import JSON Lines written by export (idempotent)",
        description="Sessions that already exist are skipped; state records only fill "
        "missing keys. Invalid records are rejected and reported (exit code 1).",
    )
    p.add_argument("-i", "--input", help="read this file instead of stdin")
    p.add_argument("--app", help="import only this app's records")
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


async def _run(args: argparse.Namespace, client: Any = None) -> Result:
    try:
        url = args.url or os.environ.get("REDIS_URL") or load_settings().redis_url
        settings = load_settings(redis_url=url, redis_key_prefix=args.prefix)
        svc = RedisSessionService(url, settings=settings, client=client)
    except (ConfigurationError, ValueError) as exc:
        raise CliError(str(exc)) from None
    try:
        if args.command == "stats":
            return await cmd_stats(svc, args)
        if args.command == "sessions":
            handler = {"list": cmd_sessions_list, "show": cmd_sessions_show, "delete": cmd_sessions_delete}
            return await handler[args.action](svc, args)
        if args.command == "export":
            return await cmd_export(svc, args)
        if args.command == "import":
            return await cmd_import(svc, args)
        if args.command == "migrate":
            return await cmd_migrate(svc, args)
        if args.command == "cleanup":
            return await cmd_cleanup(svc, args)
        if args.command == "bench":
            return await cmd_bench(svc, args)
        return await cmd_doctor(svc, args, url)
    except UNAVAILABLE_ERRORS + (ResponseError,) as exc:
        message = str(exc)
        if isinstance(exc, AuthenticationError) or any(
            marker in message for marker in ("NOAUTH", "WRONGPASS", "authenticated", "invalid password")
        ):
            raise CliError(f"authentication failed at {redact(url)}: {message}") from None
        if isinstance(exc, ResponseError):
            raise
        raise CliError(f"cannot reach Redis at {redact(url)}: {message}") from None
    finally:
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
        result = asyncio.run(_run(args, client))
    except CliError as exc:
        if args.json:
            print(json.dumps({"error": str(exc)}))
        print(f"adk-redis: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    # export without --output owns stdout (the records): its summary goes to stderr.
    stream = sys.stderr if args.command == "export" and not args.output else sys.stdout
    if args.json:
        print(json.dumps(result.data, indent=2, sort_keys=True, default=str), file=stream)
    else:
        for line in result.lines:
            print(line, file=stream)
    return result.code


if __name__ == "__main__":
    sys.exit(main())
