"""``adk-redis doctor``: connectivity, auth, TLS, latency, version, eviction, persistence, key space.

On a server that does not answer it still prints its table: connectivity
fails with the reason and the other checks are reported as skipped.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any
from urllib.parse import urlsplit

from redis.exceptions import AuthenticationError, RedisError, ResponseError

from .._core.codec import text
from .._core.connection import new_client
from .._core.url import redact_url as redact
from ..errors import ConfigurationError
from ..memory._service import RedisMemoryService
from ..sessions._service import RedisSessionService
from .common import EXIT_OK, EXIT_PERMISSION, EXIT_PROBLEM, Result, plural, server_info
from .errors import classify
from .maintenance import check_sessions, cleanup


async def cmd_doctor(svc: RedisSessionService, args: argparse.Namespace, url: str) -> Result:
    checks: list[dict[str, str]] = []

    def check(name: str, status: str, detail: str) -> None:
        checks.append({"check": name, "status": status, "detail": detail})

    try:
        await svc.client.ping()
    except Exception as exc:  # noqa: BLE001 - classified below; anything else is re-raised
        return _unreachable(exc, url, checks, check)
    check("connectivity", "ok", f"{redact(url)} answered PING")
    check("auth", *await _auth(svc, url))
    samples = []
    for _ in range(20):
        start = time.perf_counter()
        await svc.client.ping()
        samples.append((time.perf_counter() - start) * 1000)
    median, worst = statistics.median(samples), max(samples)
    detail = f"median {median:.2f} ms, max {worst:.2f} ms over 20 PINGs"
    check("latency", "ok" if median < 10 else "warn", detail)

    server = await server_info(svc.client, "server")
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

    memory = await server_info(svc.client, "memory")
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

    persistence = await server_info(svc.client, "persistence")
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

    check("tls", *_tls(url))

    dangling = await cleanup(svc, RedisMemoryService(client=svc.client, settings=svc.settings), dry_run=True)
    stale = dangling.user_index_entries + dangling.app_index_entries + dangling.created_index_entries
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
    if sessions.contained:
        check(
            "stored values",
            "warn",
            f"{len(sessions.contained)} stored values do not decode and are left out of the sessions that "
            f"read them ({'; '.join(sessions.contained[:3])})",
        )

    dead = int(await svc.client.xlen(svc.keys.generation_dead()))
    if dead:  # memory generation (adk_redis.memory): shown only when jobs failed every attempt
        check(
            "memory generation",
            "warn",
            f"{dead} dead-lettered generation jobs (adk-redis memory jobs lists them; --retry requeues)",
        )

    return _result(url, checks, EXIT_OK)


_CHECKS = (
    "connectivity",
    "auth",
    "latency",
    "server version",
    "maxmemory-policy",
    "persistence",
    "tls",
    "key space",
    "stored sessions",
)


async def _auth(svc: RedisSessionService, url: str) -> tuple[str, str]:
    """The auth row: a password sent to a server that requires none protects nothing (warn)."""
    if not (urlsplit(url).password or svc.settings.redis_password):
        return "ok", "no password configured; the server accepted the connection"
    needs = await _server_needs_password(svc, url)
    if needs is False:
        return "warn", (
            "a password was sent, but the server requires no password: any client can connect "
            "(set requirepass or ACL users on the server, or drop the password)"
        )
    return "ok", "authenticated" if needs else "authenticated (whether the server requires it: not checked)"


async def _server_needs_password(svc: RedisSessionService, url: str) -> bool | None:
    """PING once without credentials: False when the server answers, True when it wants a password,
    None when it cannot tell (a sentinel URL, an injected client, no answer)."""
    parts = urlsplit(url)
    if "sentinel" in parts.scheme or not parts.hostname and parts.scheme != "unix":
        return None
    bare = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    settings = svc.settings.model_copy(update={"redis_password": None, "redis_retry_attempts": 0})
    try:
        probe = new_client(settings, bare)
    except (ValueError, ConfigurationError):
        return None
    try:
        await probe.ping()
    except AuthenticationError:
        return True
    except ResponseError as exc:
        return True if "NOAUTH" in str(exc) or "NOPERM" in str(exc) else None
    except (RedisError, OSError):
        return None
    finally:
        await probe.aclose()
    return False


def _tls(url: str) -> tuple[str, str]:
    scheme, host = urlsplit(url).scheme, urlsplit(url).hostname or ""
    if scheme.startswith("rediss") or scheme == "unix":
        return "ok", "TLS on" if scheme.startswith("rediss") else "unix socket (stays on this host)"
    if host in ("localhost", "::1") or host.startswith("127."):
        return "ok", "plain text on loopback"
    return "warn", f"plain text to {host}: use rediss:// across a network"


def _result(url: str, checks: list[dict[str, str]], failed_code: int) -> Result:
    problems = [c for c in checks if c["status"] not in ("ok", "skip")]
    lines = [f"{c['status'].upper():5} {c['check']:17} {c['detail']}" for c in checks]
    lines.append(f"{plural(len(problems), 'problem')} found" if problems else "all checks passed")
    code = failed_code if failed_code != EXIT_OK else EXIT_PROBLEM if problems else EXIT_OK
    return Result({"url": redact(url), "checks": checks, "ok": not problems}, lines, code)


def _unreachable(exc: Exception, url: str, checks: list[dict[str, str]], check: Any) -> Result:
    """The table for a server that did not answer PING: what failed, the rest skipped."""
    error = classify(exc, url)
    if error is None:
        raise exc
    said = str(error)
    answered = "authentication failed" in said or "needs a password" in said or error.code == EXIT_PERMISSION
    if isinstance(exc, AuthenticationError) or answered:
        check("connectivity", "ok", f"{redact(url)} answered")
        check("auth", "fail", str(error))
    else:
        check("connectivity", "fail", str(error))
        check("auth", "skip", "not checked: no connection")
    for name in _CHECKS[2:]:
        if name == "tls":
            check("tls", *_tls(url))
        else:
            check(name, "skip", "not checked: no connection")
    return _result(url, checks, error.code)
