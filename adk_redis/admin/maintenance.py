"""Admin maintenance: prune dangling session-index entries and expired memory entries.

Everything here finds its keys with SCAN over the key prefix: an admin tool
(``adk-redis cleanup``), never called on a request path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.adk.sessions.base_session_service import GetSessionConfig

from .._core.codec import text
from ..errors import CorruptedDataError
from ..memory._search import now_ms
from ..memory._service import RedisMemoryService
from ..sessions._service import RedisSessionService

_BATCH = 500


@dataclass
class CleanupReport:
    """What :func:`cleanup` found (and removed unless ``dry_run``)."""

    dry_run: bool
    user_index_entries: int = 0
    app_index_entries: int = 0
    created_index_entries: int = 0  # user and app creation indexes (order="created" pages)
    memory_entries: int = 0
    history_entries: int = 0
    indexes_scanned: int = 0
    details: list[str] = field(default_factory=list)
    progress: Callable[[int], None] | None = field(default=None, repr=False, compare=False)

    def scanned(self) -> None:
        self.indexes_scanned += 1
        if self.progress is not None:
            self.progress(1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "user_index_entries": self.user_index_entries,
            "app_index_entries": self.app_index_entries,
            "created_index_entries": self.created_index_entries,
            "memory_entries": self.memory_entries,
            "history_entries": self.history_entries,
            "indexes_scanned": self.indexes_scanned,
        }


async def _scan(client: Any, pattern: str) -> list[str]:
    return [text(k) async for k in client.scan_iter(match=pattern, count=1000)]


async def _missing(client: Any, keys: list[str]) -> list[bool]:
    out: list[bool] = []
    for i in range(0, len(keys), _BATCH):
        pipe = client.pipeline(transaction=False)
        for k in keys[i : i + _BATCH]:
            pipe.exists(k)
        out += [not int(n) for n in await pipe.execute()]
    return out


async def _prune_index(
    svc: RedisSessionService, index: str, members: list[str], metas: list[str], dry_run: bool
) -> list[str]:
    gone = [m for m, missing in zip(members, await _missing(svc.client, metas)) if missing]
    if gone and not dry_run:
        for i in range(0, len(gone), _BATCH):
            await svc.client.zrem(index, *gone[i : i + _BATCH])
    return gone


async def cleanup_sessions(svc: RedisSessionService, report: CleanupReport) -> None:
    """Drop user/app index entries (listing and creation indexes) whose session expired or was
    deleted elsewhere."""
    keys = await _scan(svc.client, svc.keys.index_pattern())
    keys += await _scan(svc.client, svc.keys.created_index_pattern())
    for key in keys:
        parsed = svc.keys.parse_key(key)
        if parsed is None or parsed.app is None:
            continue
        app = parsed.app
        if parsed.kind == "user_created_index" and parsed.owner is not None:
            report.scanned()
            user = parsed.owner
            members = [text(m) for m in await svc.client.zrange(key, 0, -1)]
            metas = [svc.keys.session_meta(app, user, svc.keys.parse_session_member(m)) for m in members]
            gone = await _prune_index(svc, key, members, metas, report.dry_run)
            report.created_index_entries += len(gone)
        elif parsed.kind == "app_created_index":
            report.scanned()
            members = [text(m) for m in await svc.client.zrange(key, 0, -1)]
            metas = [svc.keys.session_meta(app, *svc.keys.parse_app_index_member(m)) for m in members]
            gone = await _prune_index(svc, key, members, metas, report.dry_run)
            report.created_index_entries += len(gone)
        elif parsed.kind == "user_index" and parsed.owner is not None:
            report.scanned()
            user = parsed.owner
            members = [text(m) for m in await svc.client.zrange(key, 0, -1)]
            metas = [svc.keys.session(app, user, svc.keys.parse_session_member(m)).meta for m in members]
            gone = await _prune_index(svc, key, members, metas, report.dry_run)
            report.user_index_entries += len(gone)
        elif parsed.kind == "app_index":
            report.scanned()
            members = [text(m) for m in await svc.client.zrange(key, 0, -1)]
            pairs = [svc.keys.parse_app_index_member(m) for m in members]
            metas = [svc.keys.session(app, u, s).meta for u, s in pairs]
            gone = await _prune_index(svc, key, members, metas, report.dry_run)
            report.app_index_entries += len(gone)
        else:
            continue
        report.details += [f"{'would drop' if report.dry_run else 'dropped'} {key} {m}" for m in gone]


async def cleanup_memory(mem: RedisMemoryService, report: CleanupReport) -> None:
    """Prune expired memory documents (RedisMemoryService.cleanup) and session-history entries."""
    now = now_ms()
    users: set[tuple[str, str]] = set()
    apps: set[str] = set()
    for key in await _scan(mem.client, mem.keys.memory_pattern("index")):
        parsed = mem.keys.parse_key(key)
        if parsed is None or parsed.part != "exp" or parsed.app is None:
            continue
        if parsed.kind == "user_index_part" and parsed.owner is not None:
            users.add((parsed.app, parsed.owner))
        elif parsed.kind == "knowledge_index_part":
            apps.add(parsed.app)
    for app, user in sorted(users):
        report.scanned()
        if report.dry_run:
            ik = mem.keys.user_memory_index(app, user)
            report.memory_entries += int(await mem.client.zcount(ik.expiry, "-inf", now))
        else:
            report.memory_entries += await mem.index.cleanup(mem.keys.user_memory_index(app, user))
    for app in sorted(apps):
        report.scanned()
        ik = mem.keys.knowledge_index(app)
        if report.dry_run:
            report.memory_entries += int(await mem.client.zcount(ik.expiry, "-inf", now))
        else:
            report.memory_entries += await mem.index.cleanup(ik)
    for key in await _scan(mem.client, mem.keys.memory_pattern("history")):
        parsed = mem.keys.parse_key(key)
        if parsed is None or parsed.part != "exp" or parsed.app is None or parsed.owner is None:
            continue
        hk = mem.keys.history(parsed.app, parsed.owner)
        expired = [text(m) for m in await mem.client.zrangebyscore(hk.expiry, "-inf", now)]
        report.history_entries += len(expired)
        if expired and not report.dry_run:
            pipe = mem.client.pipeline(transaction=False)
            pipe.zrem(hk.order, *expired)
            pipe.hdel(hk.data, *expired)
            pipe.zrem(hk.expiry, *expired)
            await pipe.execute()


async def cleanup(
    svc: RedisSessionService,
    mem: RedisMemoryService,
    *,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> CleanupReport:
    """Run every maintenance pass (SCAN-based: admin use only); ``progress(n)`` per index scanned."""
    report = CleanupReport(dry_run=dry_run, progress=progress)
    await cleanup_sessions(svc, report)
    await cleanup_memory(mem, report)
    return report


@dataclass
class SessionCheck:
    """What :func:`check_sessions` found in a sample of stored sessions."""

    checked: int = 0
    corrupted: list[str] = field(default_factory=list)  # "app/user/session" of undecodable ones
    contained: list[str] = field(default_factory=list)  # values left out (service.skipped_records)


async def check_sessions(svc: RedisSessionService, sample: int = 500) -> SessionCheck:
    """Decode up to ``sample`` stored sessions (metadata, state, last event); SCAN-based, admin use only."""
    found = SessionCheck()
    svc.skipped_records.clear()
    async for raw in svc.client.scan_iter(match=svc.keys.session_meta_pattern(), count=1000):
        parsed = svc.keys.parse_key(text(raw))
        if parsed is None or parsed.kind != "session":  # the session's :events / :ts keys
            continue
        app, user, session_id = parsed.app or "", parsed.owner or "", parsed.session or ""
        found.checked += 1
        try:
            await svc.get_session(
                app_name=app,
                user_id=user,
                session_id=session_id,
                config=GetSessionConfig(num_recent_events=1),
            )
        except CorruptedDataError:
            found.corrupted.append(f"{app}/{user}/{session_id}")
        if found.checked >= sample:
            break
    found.contained = list(dict.fromkeys(svc.skipped_records))
    return found
