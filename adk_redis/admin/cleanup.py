"""``adk-redis cleanup``: prune dead index entries and expired memory (the passes: admin.maintenance)."""

from __future__ import annotations

import argparse

from ..memory._service import RedisMemoryService
from ..sessions._service import RedisSessionService
from .common import Progress, Result, plural
from .maintenance import cleanup


async def cmd_cleanup(svc: RedisSessionService, args: argparse.Namespace) -> Result:
    mem = RedisMemoryService(client=svc.client, settings=svc.settings)
    progress = Progress("cleanup (indexes)", enabled=not args.json)
    report = await cleanup(svc, mem, dry_run=args.dry_run, progress=progress.advance)
    progress.finish()
    verb = "would remove" if args.dry_run else "removed"
    entries = plural(report.app_index_entries, "app-index entry", "app-index entries")
    memory = plural(report.memory_entries, "expired memory entry", "expired memory entries")
    history = plural(
        report.history_entries, "expired session-history entry", "expired session-history entries"
    )
    lines = [
        f"{verb} {report.user_index_entries} user-index and {entries} of expired/deleted sessions "
        f"(and {plural(report.created_index_entries, 'creation-index entry', 'creation-index entries')})",
        f"{verb} {memory} and {history} ({plural(report.indexes_scanned, 'index', 'indexes')} scanned)",
    ]
    if args.verbose:
        lines += report.details
    return Result(report.as_dict(), lines)
