"""``adk-redis export`` / ``import`` commands (the format and the work: :mod:`adk_redis.admin.transfer`)."""

from __future__ import annotations

import argparse
import sys
from typing import IO, Any

from ..memory._service import RedisMemoryService
from ..sessions._service import RedisSessionService
from .common import (
    EXIT_DATA,
    EXIT_FILE,
    EXIT_OK,
    EXIT_PROBLEM,
    EXIT_USAGE,
    CliError,
    Progress,
    Result,
    open_input,
    open_output,
    plural,
)
from .transfer import Scope, export_backup, import_backup

_NAMES = {
    "session": ("session", None),
    "app_state": ("app state", None),
    "user_state": ("user state", None),
    "memory_doc": ("memory document", None),
    "memory_tombstone": ("memory tombstone", None),
    "key": ("context/knowledge/history/owner key", None),
}


_ORDER = ("session", "app_state", "user_state", "memory_doc", "memory_tombstone", "key")


def _counts(counts: dict[str, int]) -> str:
    """``4 sessions, 1 app state, ...`` (zero counts left out, sessions always shown)."""
    shown = [t for t in _ORDER if t == "session" or counts.get(t)]
    return ", ".join(plural(int(counts.get(t, 0)), _NAMES[t][0]) for t in shown)


class _Output:
    """The export's output: a write that fails (disk full, closed pipe) is a file error (exit 5)."""

    def __init__(self, stream: IO[str], name: str) -> None:
        self.stream, self.name = stream, name

    def write(self, data: str) -> int:
        try:
            return self.stream.write(data)
        except BrokenPipeError:
            raise CliError(f"{self.name} was closed before the export ended", EXIT_FILE) from None
        except OSError as exc:
            raise CliError(f"cannot write {self.name}: {exc.strerror or exc}", EXIT_FILE) from None


async def cmd_export(svc: RedisSessionService, args: argparse.Namespace) -> Result:
    mem = RedisMemoryService(client=svc.client, settings=svc.settings)
    scope = Scope(app=args.app, user=args.user)
    stream = open_output(args.output)
    out: Any = _Output(stream, args.output if args.output not in (None, "-") else "stdout")
    progress = Progress("export", enabled=not args.json)
    try:
        header = await export_backup(
            svc, mem, out, scope=scope, vectors=not args.no_vectors, progress=progress
        )
    finally:
        if args.output not in (None, "-"):
            stream.close()
    where = f" to {args.output}" if args.output not in (None, "-") else ""
    lines = [f"exported {_counts(header['counts'])} from prefix {svc.keys.prefix!r}{where}"]
    lines += [f"error: {e}" for e in header["errors"]]
    return Result(header, lines, EXIT_PROBLEM if header["errors"] else EXIT_OK)


async def cmd_import(svc: RedisSessionService, args: argparse.Namespace) -> Result:
    if args.source:
        if args.input:
            raise CliError("--from and --input are mutually exclusive")
        from .migrate import cmd_import_from

        return await cmd_import_from(svc, args)
    if args.input in (None, "-") and sys.stdin.isatty():
        raise CliError("nothing to import: give -i FILE or pipe an export into stdin", EXIT_USAGE)
    mem = RedisMemoryService(client=svc.client, settings=svc.settings)
    source = open_input(args.input)
    progress = Progress("import", enabled=not args.json)
    try:
        try:
            lines_in: Any = iter(source)
            report = await import_backup(
                svc,
                mem,
                lines_in,
                scope=Scope(app=args.app, user=args.user),
                progress=progress,
                check_only=args.check,
            )
        except UnicodeDecodeError as exc:
            raise CliError(f"{args.input or 'stdin'} is not UTF-8 text ({exc.reason})", EXIT_DATA) from None
    finally:
        if args.input not in (None, "-"):
            source.close()
    if report.header is None and not report.seen:
        # Nothing that reads as an export: empty (0 bytes, blank lines) or not one valid record.
        name = args.input if args.input not in (None, "-") else "stdin"
        if not report.rejected:
            raise CliError(
                f"{name} is empty: not an adk-redis export (an export starts with its header line)",
                EXIT_DATA,
            )
        first = report.rejected[0]
        raise CliError(
            f"{name} is not an adk-redis export (line {first['line']}: {first['reason']})", EXIT_DATA
        )
    data = report.as_dict()
    if args.check:
        data["checked"] = data.pop("kept_existing")
        state = "has problems" if report.rejected else "is complete and valid"
        lines = [f"checked {_counts(report.kept)}: the file {state}"]
        lines += [
            f"rejected {'line ' + str(r['line']) if r['line'] is not None else 'file'}: {r['reason']}"
            for r in report.rejected
        ]
        return Result(data, lines, EXIT_PROBLEM if report.rejected else EXIT_OK)
    lines = [f"imported {_counts(report.written)}"]
    kept = sum(report.kept.values())
    if kept:
        lines.append(f"kept {plural(kept, 'record')} already present ({_counts(report.kept)})")
    expired = sum(report.expired.values())
    if expired:
        lines.append(f"skipped {plural(expired, 'record')} expired since the export")
    for r in report.rejected:
        where = f"line {r['line']}" if r["line"] is not None else "file"
        lines.append(f"rejected {where}: {r['reason']}")
    return Result(data, lines, EXIT_PROBLEM if report.rejected else EXIT_OK)
