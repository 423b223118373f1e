"""The CLI names what exists when the user asked for what does not (issue 18), one test per item:
a misspelt ``--app``, ``stats`` on an empty prefix, ``user:`` keys in STATE KEYS, a password sent to a
server that requires none, ``import`` from a terminal or a pipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from adk_redis import RedisSessionService
from adk_redis.admin.cli import main
from tests.cli_fixtures import Cli
from tests.servers import redis_server

ADK_REDIS = Path(sys.executable).parent / "adk-redis"


async def _seed(svc: RedisSessionService) -> None:
    s = await svc.create_session(app_name="trip_planner", user_id="ann", state={"topic": "alps", "app:x": 1})
    from google.adk.events.event import Event
    from google.adk.events.event_actions import EventActions

    delta = {"user:home": "Bern", "app:total": 1, "temp:scratch": 1, "last": "hi"}
    await svc.append_event(
        s, Event(author="agent", invocation_id="i", actions=EventActions(state_delta=delta))
    )
    await svc.create_session(app_name="weather", user_id="bob")


def test_a_misspelt_app_names_the_apps_that_exist(cli: Cli) -> None:
    cli.run(_seed)
    code, out, _ = cli("sessions", "list", "--app", "trip_planer")
    assert code == 1, out  # "not found" (the exit-code table's "problem found": a missing session)
    assert "app 'trip_planer' not found" in out and "'trip_planner'" in out and "'weather'" in out
    assert "did you mean 'trip_planner'?" in out
    code, data = cli.json("sessions", "list", "--app", "trip_planer")
    assert code == 1 and data["apps"] == ["trip_planner", "weather"]
    code, out, _ = cli("sessions", "show", "--app", "trip_planer", "--user", "ann", "x")
    assert code == 1 and "did you mean 'trip_planner'?" in out
    # an app that exists, a user without sessions: an empty listing, not an error
    code, out, _ = cli("sessions", "list", "--app", "trip_planner", "--user", "nobody")
    assert code == 0 and out.startswith("0 sessions in app 'trip_planner'")


def test_an_app_under_another_prefix_names_the_prefixes(cli: Cli) -> None:
    cli.run(_seed)
    empty = cli.prefix + "-empty"
    code, out, _ = cli("sessions", "list", "--app", "trip_planner", prefix=empty)
    assert code == 1 and f"not found under key prefix {empty!r}" in out
    assert f"{cli.prefix!r} (2 apps)" in out and "--prefix" in out


def test_stats_on_an_empty_prefix_names_the_prefixes_that_exist(cli: Cli) -> None:
    cli.run(_seed)
    code, out, _ = cli("stats", prefix=cli.prefix + "-none")
    assert code == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("apps:"))
    assert "none under this prefix" in line and f"{cli.prefix!r} (2 apps)" in line
    code, data = cli.json("stats", prefix=cli.prefix + "-none")
    assert data["apps"] == {} and data["prefixes"][cli.prefix] == 2
    code, data = cli.json("stats")
    assert "prefixes" not in data and set(data["apps"]) == {"trip_planner", "weather"}


def test_state_keys_count_the_users_keys(cli: Cli) -> None:
    cli.run(_seed)
    code, rows = cli.json("sessions", "list", "--app", "trip_planner")
    # topic, last (session) + user:home; not app:* (app-wide) nor temp:* (never stored)
    assert code == 0 and [r["state_keys"] for r in rows] == [3]
    code, out, _ = cli("sessions", "list", "--app", "trip_planner")
    header, row = out.splitlines()[1:3]
    assert "STATE KEYS" in header and row.rstrip().endswith(" 3")


def _auth_row(url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["--url", url, "--json", "doctor"])
    data = json.loads(capsys.readouterr().out)
    return code, next(c for c in data["checks"] if c["check"] == "auth")


def test_doctor_warns_when_the_server_requires_no_password(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_PASSWORD", raising=False)
    with redis_server(args=["--appendonly", "yes"]) as srv:
        code, row = _auth_row(f"redis://:s3cret@127.0.0.1:{srv.port}", capsys)
        assert row["status"] == "warn" and "requires no password" in row["detail"] and code == 1
        main(["--url", f"redis://:s3cret@127.0.0.1:{srv.port}", "doctor"])
        out = capsys.readouterr().out
        assert "WARN  auth" in out and "s3cret" not in out
        monkeypatch.setenv("REDIS_PASSWORD", "s3cret")  # the same through the environment
        assert _auth_row(srv.url, capsys)[1]["status"] == "warn"
        monkeypatch.delenv("REDIS_PASSWORD")
        assert _auth_row(srv.url, capsys)[1] == {
            "check": "auth",
            "status": "ok",
            "detail": "no password configured; the server accepted the connection",
        }
    with redis_server(args=["--requirepass", "s3cret"], ping_kwargs={"password": "s3cret"}) as srv:
        code, row = _auth_row(f"redis://:s3cret@127.0.0.1:{srv.port}", capsys)
        assert row == {"check": "auth", "status": "ok", "detail": "authenticated"}


def test_import_reads_a_pipe_and_refuses_a_terminal(redis_url: str, prefix: str, tmp_path: Path) -> None:
    import pty

    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run(
            [str(ADK_REDIS), "--url", redis_url, "--prefix", prefix, "import"],
            stdin=secondary,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.close(primary)
        os.close(secondary)
    assert proc.returncode == 2 and "nothing to import: give -i FILE or pipe an export" in proc.stderr
    dump = tmp_path / "dump.jsonl"
    env = {**os.environ, "REDIS_KEY_PREFIX": prefix}
    src = prefix + "-src"
    import asyncio

    async def seed() -> None:
        async with RedisSessionService(redis_url, key_prefix=src) as svc:
            await svc.create_session(app_name="a", user_id="u", session_id="piped")

    asyncio.run(seed())
    try:
        out = subprocess.run(
            [str(ADK_REDIS), "--url", redis_url, "--prefix", src, "export", "-o", str(dump)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert out.returncode == 0, out.stderr
        with dump.open() as stdin:  # piped: read without -i
            proc = subprocess.run(
                [str(ADK_REDIS), "--url", redis_url, "--prefix", prefix, "--json", "import"],
                stdin=stdin,
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
            )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["written"]["session"] == 1
    finally:
        import redis

        with redis.Redis.from_url(redis_url) as r:
            for p in (prefix, src):
                keys = list(r.scan_iter(match=f"{p}:*"))
                if keys:
                    r.delete(*keys)
