"""adk-redis CLI: every command on fakeredis (injected client) and on the real server (--url, unique prefix).

``doctor`` checks server configuration, so it runs on real servers only:
the shared one and throw-away ones with chosen settings.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.adk.events.event import Event

from adk_redis import RedisSessionService
from adk_redis.admin.cli import main, redact
from tests.cli_fixtures import Cli
from tests.helpers import chat_event as _event
from tests.servers import redis_cluster, redis_server


async def _seed(svc: RedisSessionService) -> dict[str, str]:
    """app1: ann (2 sessions, one with events + state), bob (1); app2: ann (1)."""
    ids = {}
    s = await svc.create_session(app_name="app1", user_id="ann", state={"topic": "tea", "app:mode": "demo"})
    await svc.append_event(s, _event("user", "hello"))
    await svc.append_event(s, _event("agent", "hi ann", {"user:visits": 1, "app:total": 1, "last": "hello"}))
    ids["ann1"] = s.id
    ids["ann2"] = (await svc.create_session(app_name="app1", user_id="ann", session_id="second")).id
    ids["bob"] = (await svc.create_session(app_name="app1", user_id="bob")).id
    ids["app2"] = (await svc.create_session(app_name="app2", user_id="ann")).id
    return ids


def test_stats(cli: Cli) -> None:
    cli.run(_seed)
    code, data = cli.json("stats")
    assert code == 0
    assert data["apps"] == {"app1": {"sessions": 3, "users": 2}, "app2": {"sessions": 1, "users": 1}}
    assert data["prefix"] == cli.prefix and data["keys"] > 0
    code, out, _ = cli("stats")
    assert code == 0 and "app 'app1': 3 sessions, 2 users" in out
    code, data = cli.json("stats", prefix=cli.prefix + "-copy")
    assert code == 0 and data["apps"] == {} and data["keys"] == 0


def test_stats_help_says_scan_is_admin_only() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "adk_redis.admin.cli", "stats", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    help_text = " ".join(proc.stdout.split())
    assert "SCAN" in help_text and "never used on a request path" in help_text


def test_sessions_list_show_delete(cli: Cli) -> None:
    ids = cli.run(_seed)
    code, rows = cli.json("sessions", "list", "--app", "app1")
    assert code == 0 and sorted(r["user_id"] for r in rows) == ["ann", "ann", "bob"]
    code, rows = cli.json("sessions", "list", "--app", "app1", "--user", "ann")
    by_id = {r["id"]: r for r in rows}
    assert set(by_id) == {ids["ann1"], "second"}
    assert by_id[ids["ann1"]]["events"] == 2 and by_id[ids["ann1"]]["state_keys"] == 3  # +user:visits
    code, out, _ = cli("sessions", "list", "--app", "app1", "--user", "ann", "--json")  # option after command
    assert code == 0 and len(json.loads(out)) == 2

    code, shown = cli.json("sessions", "show", "--app", "app1", "--user", "ann", ids["ann1"])
    assert code == 0 and shown["id"] == ids["ann1"] and len(shown["events"]) == 2
    assert shown["state"]["user:visits"] == 1 and shown["state"]["topic"] == "tea"
    code, out, _ = cli("sessions", "show", "--app", "app1", "--user", "ann", ids["ann1"])
    assert code == 0 and "agent: hi ann" in out and "2 events:" in out
    code, out, _ = cli("sessions", "show", "--app", "app1", "--user", "bob", ids["ann1"])
    assert code == 1 and "not found" in out

    code, result = cli.json("sessions", "delete", "--app", "app1", "--user", "ann", "second", "nope")
    assert code == 1 and result == {"deleted": ["second"], "not_found": ["nope"]}
    code, rows = cli.json("sessions", "list", "--app", "app1", "--user", "ann")
    assert [r["id"] for r in rows] == [ids["ann1"]]
    code, _, _ = cli("sessions", "delete", "--app", "app1", "--user", "ann", ids["ann1"])
    assert code == 0


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_export_import_round_trip_is_idempotent(cli: Cli, tmp_path: Path) -> None:
    cli.run(_seed)
    code, out, err = cli("export")
    assert code == 0 and "exported 4 sessions, 1 app state, 1 user state" in err  # never mixed with records
    records = _lines(out)
    assert records[0]["type"] == "header" and records[0]["counts"]["session"] == 4
    assert [r["type"] for r in records].count("session") == 4
    code, out, _ = cli("export", "--app", "app2")
    assert {r["app_name"] for r in _lines(out)[1:]} == {"app2"}
    dump = tmp_path / "dump.jsonl"
    code, out, _ = cli("export", "-o", str(dump))
    assert code == 0 and "exported 4 sessions, 1 app state, 1 user state" in out and str(dump) in out

    copy = cli.prefix + "-copy"

    # Live state in the target that the import must not overwrite.
    async def live(svc: RedisSessionService) -> None:
        s = await svc.create_session(app_name="app1", user_id="ann", state={"user:visits": 99})
        await svc.delete_session(app_name="app1", user_id="ann", session_id=s.id)

    cli.run(live, prefix=copy)
    code, result = cli.json("import", "-i", str(dump), prefix=copy)
    assert code == 0 and result["written"]["session"] == 4 and result["rejected"] == []
    assert result["kept_existing"] == {"user_state": 1}  # ann's live user:visits kept
    code, result = cli.json("import", "-i", str(dump), prefix=copy)
    assert code == 0 and result["written"] == {} and result["kept_existing"]["session"] == 4

    def canonical(rows: list[dict[str, Any]]) -> set[str]:
        return {json.dumps(r, sort_keys=True) for r in rows if r["type"] != "header"}

    code, out, _ = cli("export", prefix=copy)
    changed = canonical(_lines(dump.read_text())) ^ canonical(_lines(out))
    # Only ann's user state differs: the live value 99 was kept.  Sessions without events keep their
    # last_update_time, every session its created time.
    assert all(json.loads(r)["type"] == "user_state" for r in changed), sorted(changed)
    user_state = next(r for r in _lines(out) if r["type"] == "user_state" and r["user_id"] == "ann")
    assert user_state["state"] == {"visits": 99}

    async def check(svc: RedisSessionService) -> None:
        for r in records:
            if r["type"] == "session":
                s = await svc.get_session(app_name=r["app_name"], user_id=r["user_id"], session_id=r["id"])
                assert s is not None and s.last_update_time == r["last_update_time"]
                assert [e.id for e in s.events] == [e["id"] for e in r["events"]]
                if r["events"]:
                    assert s.state["last"] == "hello" and s.state["topic"] == "tea"
                    assert s.state["user:visits"] == 99 and s.state["app:total"] == 1

    cli.run(check, prefix=copy)


def test_import_reports_rejects(cli: Cli, tmp_path: Path) -> None:
    good = {
        "type": "session",
        "v": 1,
        "app_name": "a",
        "user_id": "u",
        "id": "s1",
        "state": {"k": 1},
        "events": [],
    }
    lines = [
        "not json",
        json.dumps({"type": "session", "app_name": "a", "user_id": "u", "id": "s2", "events": [{"bad": 1}]}),
        json.dumps({"type": "mystery", "app_name": "a"}),
        json.dumps({"type": "session", "app_name": "", "user_id": "u", "id": "s3"}),
        json.dumps({"type": "session", "app_name": "a", "user_id": "u", "id": "s4", "state": {"user:x": 1}}),
        json.dumps({"type": "session", "v": 9, "app_name": "a", "user_id": "u", "id": "s5"}),
        "",
        json.dumps(good),
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    code, result = cli.json("import", "--input", str(path))
    assert code == 1
    assert result["written"] == {"session": 1}
    assert [r["line"] for r in result["rejected"]] == [1, 2, 3, 4, 5, 6]
    reasons = " ".join(r["reason"] for r in result["rejected"])
    for fragment in (
        "not JSON",
        "event 0 lacks",
        "unknown record type",
        "app_name must be",
        "prefix",
        "version",
    ):
        assert fragment in reasons
    code, shown = cli.json("sessions", "show", "--app", "a", "--user", "u", "s1")
    assert code == 0 and shown["state"] == {"k": 1}


def test_usage_and_configuration_errors(cli: Cli) -> None:
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["sessions", "show", "--app", "a"])
    assert exc.value.code == 2
    code, _, err = cli("stats", prefix="bad prefix{}")
    assert code == 2 and "REDIS_KEY_PREFIX" in err


def test_unreachable_server_doctor_still_prints_its_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_RETRY_ATTEMPTS", "0")
    monkeypatch.setenv("REDIS_CONNECT_TIMEOUT", "0.5")
    code = main(["--url", "redis://:secret@127.0.0.1:1/0", "--json", "doctor"])
    out, err = capsys.readouterr()
    assert code == 3 and "secret" not in err + out
    data = json.loads(out)
    status = _status(data)
    assert status["connectivity"] == "fail" and status["latency"] == "skip" and status["tls"] == "ok"
    assert "cannot reach Redis at redis://:***@127.0.0.1:1/0" in data["checks"][0]["detail"]
    code = main(["--url", "redis://127.0.0.1:1/0", "doctor"])
    out, err = capsys.readouterr()
    assert code == 3 and "FAIL  connectivity" in out and "SKIP  persistence" in out and "Traceback" not in err


# -- doctor (real servers) -------------------------------------------------------------
def _doctor(url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["--url", url, "--json", "doctor"])
    out, _ = capsys.readouterr()
    data = json.loads(out)
    return code, data


def _status(data: dict[str, Any]) -> dict[str, str]:
    return {c["check"]: c["status"] for c in data["checks"]}


def test_doctor_on_the_shared_server(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, data = _doctor(redis_url, capsys)
    status = _status(data)
    assert set(status) == {
        "connectivity",
        "auth",
        "latency",
        "server version",
        "maxmemory-policy",
        "persistence",
        "tls",
        "key space",
        "stored sessions",
    }
    assert status["connectivity"] == "ok" and status["tls"] == "ok"
    assert code == (0 if all(s == "ok" for s in status.values()) else 1)
    assert data["ok"] is (code == 0)


def test_doctor_warns_about_eviction_and_no_persistence(capsys: pytest.CaptureFixture[str]) -> None:
    with redis_server(args=["--maxmemory-policy", "allkeys-lru", "--appendonly", "no"]) as srv:
        code, data = _doctor(srv.url, capsys)
        status = _status(data)
        assert code == 1
        assert status["maxmemory-policy"] == "warn" and status["persistence"] == "warn"
        code = main(["--url", srv.url, "doctor"])
        out, _ = capsys.readouterr()
        assert code == 1 and "WARN  maxmemory-policy" in out and "2 problems found" in out


def test_doctor_passes_on_a_safe_server(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SESSION_TTL_HOURS", raising=False)
    with redis_server(args=["--maxmemory-policy", "volatile-lru", "--appendonly", "yes"]) as srv:
        code, data = _doctor(srv.url, capsys)
        assert _status(data)["persistence"] == "ok" and _status(data)["maxmemory-policy"] == "ok"
        assert code == (0 if data["ok"] else 1)
        assert all(s == "ok" for k, s in _status(data).items() if k != "latency")


def test_doctor_volatile_policy_with_session_ttl(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSION_TTL_HOURS", "24")
    with redis_server(args=["--maxmemory-policy", "volatile-lru", "--appendonly", "yes"]) as srv:
        code, data = _doctor(srv.url, capsys)
        assert code == 1 and _status(data)["maxmemory-policy"] == "warn"


def test_doctor_auth(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_PASSWORD", raising=False)
    auth = {"password": "s3cret"}
    with redis_server(args=["--requirepass", "s3cret", "--appendonly", "yes"], ping_kwargs=auth) as srv:
        code = main(["--url", srv.url, "doctor"])
        out, err = capsys.readouterr()
        assert code == 3 and "FAIL  auth" in out and "authentication" in out.lower()
        assert "needs a password" in out and "HELLO must be called" not in out.partition("(")[0]
        assert main(["--url", srv.url, "stats"]) == 3  # one line: the server needs a password
        err = capsys.readouterr().err
        assert err.startswith("adk-redis: error: authentication required") and "needs a password" in err
        url = f"redis://:s3cret@127.0.0.1:{srv.port}"
        code, data = _doctor(url, capsys)
        assert _status(data)["auth"] == "ok" and data["url"] == redact(url) and "s3cret" not in data["url"]
        assert [c["detail"] for c in data["checks"] if c["check"] == "auth"] == ["authenticated"]


def test_cli_on_a_cluster(prefix: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """SCAN-based commands visit every master; import/export work across slots."""
    with redis_cluster(3) as nodes:
        url = f"redis+cluster://127.0.0.1:{nodes[0].port}"
        cli = Cli("cluster", url, prefix, None, capsys)
        cli.run(_seed)
        code, data = cli.json("stats")
        assert code == 0
        assert data["apps"] == {"app1": {"sessions": 3, "users": 2}, "app2": {"sessions": 1, "users": 1}}
        dump = tmp_path / "dump.jsonl"
        assert cli("export", "-o", str(dump))[0] == 0
        code, result = cli.json("import", "-i", str(dump), prefix=prefix + "-copy")
        assert code == 0 and result["written"]["session"] == 4
        code, rows = cli.json("sessions", "list", "--app", "app1", prefix=prefix + "-copy")
        assert code == 0 and len(rows) == 3
        code, data = cli.json("doctor")
        assert {c["check"] for c in data["checks"]} >= {"connectivity", "persistence"}


def test_doctor_checks_the_key_space(capsys: pytest.CaptureFixture[str]) -> None:
    """Dangling index entries and an undecodable session are reported; cleanup fixes the former."""
    import asyncio

    from adk_redis._core.codec import encode_event

    async def prepare(url: str) -> str:
        svc = RedisSessionService(url, key_prefix="dr")
        good = await svc.create_session(app_name="a", user_id="u")
        await svc.append_event(good, Event(author="user", invocation_id="i"))
        bad = await svc.create_session(app_name="a", user_id="u:2")
        await svc.append_event(bad, Event(author="user", invocation_id="i"))
        gone = await svc.create_session(app_name="a", user_id="u")
        keys = svc.keys.session("a", "u:2", bad.id)
        await svc.client.lset(keys.log, 0, encode_event(bad.events[0])[:-5])  # truncated JSON
        await svc.client.delete(svc.keys.session("a", "u", gone.id).meta)  # expired behind the indexes' back
        await svc.client.hset(svc.keys.app_state("a"), "planted", "{not json")  # left out, and named
        await svc.close()
        return bad.id

    with redis_server(args=["--appendonly", "yes"]) as srv:
        bad_id = asyncio.run(prepare(srv.url))

        code, data = _doctor_prefix(srv.url, "dr", capsys)
        status = _status(data)
        assert code == 1 and status["key space"] == "warn" and status["stored sessions"] == "warn"
        detail = {c["check"]: c["detail"] for c in data["checks"]}
        # user and app listing indexes, user and app creation indexes
        assert detail["key space"].startswith("4 index entries of gone sessions")
        assert "1 of 2 sampled sessions do not decode" in detail["stored sessions"]
        assert f"a/u:2/{bad_id}" in detail["stored sessions"]  # what the operator needs for sessions show
        assert status["stored values"] == "warn" and "'app:planted'" in detail["stored values"]

        assert main(["--url", srv.url, "--prefix", "dr", "cleanup"]) == 0
        capsys.readouterr()
        code, data = _doctor_prefix(srv.url, "dr", capsys)
        assert _status(data)["key space"] == "ok" and _status(data)["stored sessions"] == "warn"


def _doctor_prefix(url: str, prefix: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["--url", url, "--prefix", prefix, "--json", "doctor"])
    out, _ = capsys.readouterr()
    return code, json.loads(out)
