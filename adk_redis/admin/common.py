"""What every ``adk-redis`` command shares: exit codes, the error a command raises, results, progress.

Exit codes (docs/reference/cli.md, "Exit codes"; one test per row in ``tests/test_cli_errors.py``):

====  ===========================  ======================================================
code  class                        examples
====  ===========================  ======================================================
0     ok
1     problem found                doctor warnings, a missing session, app or memory, rejected import records
2     usage or configuration       unknown option, malformed ``--url``, bad setting, db out of range
3     connection or server         Redis unreachable, wrong/no password, not Redis, OOM / read-only
4     permission                   the ACL user may not run a command (NOPERM)
5     file                         missing input file, unwritable output, unreadable ``--from`` database
6     data                         input that is not an export (also empty), corrupted records
====  ===========================  ======================================================
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Any

from .._core.codec import text

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_CONNECTION = 3
EXIT_PERMISSION = 4
EXIT_FILE = 5
EXIT_DATA = 6

#: (exit code, class) for ``--help`` (the documented table: docs/reference/cli.md).
EXIT_CODES = (
    (EXIT_OK, "ok"),
    (EXIT_PROBLEM, "problem found (doctor warnings, missing session, app or memory, rejected imports)"),
    (EXIT_USAGE, "usage or configuration error"),
    (EXIT_CONNECTION, "connection, authentication or server error"),
    (EXIT_PERMISSION, "permission denied by the server's ACL"),
    (EXIT_FILE, "file error (missing input, unwritable output)"),
    (EXIT_DATA, "data error (not an export file, corrupted records)"),
)


class CliError(Exception):
    """A failure the user can act on: printed as one line, never a traceback."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Result:
    """What a command produced: JSON-able data, human lines, exit code."""

    data: Any
    lines: list[str] = field(default_factory=list)
    code: int = EXIT_OK


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 session``, ``2 sessions``, ``1 entry``/``3 entries`` (pass ``many``)."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def iso(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")


def open_output(path: str | None) -> IO[str]:
    """The output file (stdout for None/``-``); CliError(EXIT_FILE) naming it when it cannot be written."""
    if path in (None, "-"):
        return sys.stdout
    try:
        return open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}", EXIT_FILE) from None


def open_input(path: str | None) -> IO[str]:
    """The input file (stdin for None/``-``); CliError(EXIT_FILE) naming it when it cannot be read."""
    if path in (None, "-"):
        return sys.stdin
    try:
        return open(path, encoding="utf-8")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}", EXIT_FILE) from None


async def server_info(client: Any, section: str) -> dict[str, Any]:
    """INFO ``section`` as a flat dict ({} where INFO is disabled; a cluster answers per node: the first)."""
    from redis.exceptions import ResponseError

    try:
        reply = await client.info(section)
    except ResponseError:  # renamed/disabled command (managed services, proxies, fakeredis)
        return {}
    if reply and all(isinstance(v, dict) for v in reply.values()):
        reply = next(iter(reply.values()))
    return {text(k): v for k, v in dict(reply or {}).items()}


class Progress:
    """Progress of a long command on stderr, shown only once it has run for ``delay`` seconds.

    On a terminal a bar redrawn in place; otherwise one line every ``every`` seconds;
    nothing when disabled (``--json``).
    """

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        enabled: bool = True,
        stream: IO[str] | None = None,
        delay: float = 1.0,
        every: float = 2.0,
    ) -> None:
        self.label = label
        self.total = total
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.delay, self.every = delay, every
        self.done = 0
        self.start = time.monotonic()
        self._last = 0.0
        self._shown = False

    def advance(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.start < self.delay:
            return
        if self.tty:
            if now - self._last >= 0.1:
                self._draw(now)
        elif now - self._last >= self.every:
            self._line(now)

    def _status(self, now: float) -> str:
        rate = self.done / max(now - self.start, 1e-9)
        if self.total:
            pct = min(100.0, 100.0 * self.done / self.total)
            return f"{self.done}/{self.total} ({pct:.0f}%, {rate:.0f}/s)"
        return f"{self.done} ({rate:.0f}/s)"

    def _draw(self, now: float) -> None:
        self._last, self._shown = now, True
        bar = ""
        if self.total:
            width = 30
            filled = int(width * min(1.0, self.done / self.total))
            bar = "[" + "#" * filled + "." * (width - filled) + "] "
        self.stream.write(f"\r{self.label}: {bar}{self._status(now)}   ")
        self.stream.flush()

    def _line(self, now: float) -> None:
        self._last, self._shown = now, True
        self.stream.write(f"{self.label}: {self._status(now)}\n")
        self.stream.flush()

    def finish(self) -> None:
        if not (self.enabled and self._shown):
            return
        now = time.monotonic()
        if self.tty:
            self._draw(now)
            self.stream.write("\n")
        else:
            self._line(now)
        self.stream.flush()
