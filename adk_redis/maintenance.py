"""Admin maintenance: prune dangling session-index entries and expired memory entries.

Everything here finds its keys with SCAN over the key prefix: an admin tool
(``adk-redis cleanup``), never called on a request path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google.adk.sessions.base_session_service import GetSessionConfig

from .codec import text
from .errors import CorruptedDataError
from .keys import unescape
from .memory_search import now_ms
from .memory_service import RedisMemoryService
from .session_service import RedisSessionService

_BATCH = 500


@dataclass
class CleanupReport:
    """What :func:`cleanup` found (and removed unless ``dry_run``)."""

    dry_run: bool
    user_index_entries: int = 0
    app_index_entries: int = 0
    memory_entries: int = 0
    history_entries: int = 0
    indexes_scanned: int = 0
    details: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "user_index_entries": self.user_index_entries,
            "app_index_entries": self.app_index_entries,
            "memory_entries": self.memory_entries,
            "history_entries": self.history_entries,
            "indexes_scanned": self.indexes_scanned,
        }


def _tag(key: str, head: str, tail: str) -> list[str] | None:
    """The unescaped components of the ``{a:b}`` hash tag in ``head{...}tail``."""
    if not (key.startswith(head + "{") and key.endswith("}" + tail)):
        return None
    inner = key[len(head) + 1 : len(key) - len(tail) - 1]
    return [unescape(p) for p in inner.split(":")]


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
    """Drop user/app index entries whose session expired or was deleted elsewhere."""
    head = f"{svc.keys.prefix}:session:"
    for key in await _scan(svc.client, f"{head}{{*}}:index"):
        parts = _tag(key, head, ":index")
        if parts is None:
            continue
        report.indexes_scanned += 1
        members = [text(m) for m in await svc.client.zrange(key, 0, -1)]
        if len(parts) == 2:
            app, user = parts
            metas = [svc.keys.session(app, user, svc.keys.parse_session_member(m)).meta for m in members]
            gone = await _prune_index(svc, key, members, metas, report.dry_run)
            report.user_index_entries += len(gone)
        elif len(parts) == 1:
            app = parts[0]
            pairs = [svc.keys.parse_app_index_member(m) for m in members]
            metas = [svc.keys.session(app, u, s).meta for u, s in pairs]
            gone = await _prune_index(svc, key, members, metas, report.dry_run)
            report.app_index_entries += len(gone)
        else:
            continue
        report.details += [f"{'would drop' if report.dry_run else 'dropped'} {key} {m}" for m in gone]


async def cleanup_memory(mem: RedisMemoryService, report: CleanupReport) -> None:
    """Prune expired memory documents (RedisMemoryService.cleanup) and session-history entries."""
    prefix = mem.keys.prefix
    now = now_ms()
    users: set[tuple[str, str]] = set()
    apps: set[str] = set()
    head = f"{prefix}:memory:index:user:"
    for key in await _scan(mem.client, f"{head}{{*}}:exp"):
        parts = _tag(key, head, ":exp")
        if parts and len(parts) == 2:
            users.add((parts[0], parts[1]))
    head = f"{prefix}:memory:index:knowledge:"
    for key in await _scan(mem.client, f"{head}{{*}}:exp"):
        parts = _tag(key, head, ":exp")
        if parts and len(parts) == 1:
            apps.add(parts[0])
    for app, user in sorted(users):
        report.indexes_scanned += 1
        if report.dry_run:
            ik = mem.keys.user_memory_index(app, user)
            report.memory_entries += int(await mem.client.zcount(ik.expiry, "-inf", now))
        else:
            report.memory_entries += await mem.index.cleanup(mem.keys.user_memory_index(app, user))
    for app in sorted(apps):
        report.indexes_scanned += 1
        ik = mem.keys.knowledge_index(app)
        if report.dry_run:
            report.memory_entries += int(await mem.client.zcount(ik.expiry, "-inf", now))
        else:
            report.memory_entries += await mem.index.cleanup(ik)
    head = f"{prefix}:memory:history:"
    for key in await _scan(mem.client, f"{head}{{*}}:exp"):
        parts = _tag(key, head, ":exp")
        if not parts or len(parts) != 2:
            continue
        hk = mem.keys.history(parts[0], parts[1])
        expired = [text(m) for m in await mem.client.zrangebyscore(hk.expiry, "-inf", now)]
        report.history_entries += len(expired)
        if expired and not report.dry_run:
            pipe = mem.client.pipeline(transaction=False)
            pipe.zrem(hk.order, *expired)
            pipe.hdel(hk.data, *expired)
            pipe.zrem(hk.expiry, *expired)
            await pipe.execute()


async def cleanup(
    svc: RedisSessionService, mem: RedisMemoryService, *, dry_run: bool = False
) -> CleanupReport:
    """Run every maintenance pass (SCAN-based: admin use only)."""
    report = CleanupReport(dry_run=dry_run)
    await cleanup_sessions(svc, report)
    await cleanup_memory(mem, report)
    return report


@dataclass
class SessionCheck:
    """What :func:`check_sessions` found in a sample of stored sessions."""

    checked: int = 0
    corrupted: list[str] = field(default_factory=list)  # "app/user/session" of undecodable ones


async def check_sessions(svc: RedisSessionService, sample: int = 500) -> SessionCheck:
    """Decode up to ``sample`` stored sessions (metadata, state, last event); SCAN-based, admin use only."""
    head = f"{svc.keys.prefix}:session:"
    found = SessionCheck()
    async for raw in svc.client.scan_iter(match=f"{head}{{*}}:s:*", count=1000):
        key = text(raw)
        tag_end = key.find("}:s:")
        sid = key[tag_end + 4 :]
        if tag_end < 0 or ":" in sid:  # the session's :events / :ts keys
            continue
        parts = _tag(key[: tag_end + 1], head, "")
        if parts is None or len(parts) != 2:
            continue
        app, user, session_id = parts[0], parts[1], unescape(sid)
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
    return found
