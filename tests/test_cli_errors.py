"""``adk-redis`` never shows a traceback: one test per row of the exit-code table (docs/reference/cli.md).

0 ok, 1 problem found, 2 usage/configuration, 3 connection/authentication/server, 4 permission,
5 file, 6 data.  Every error is one line on stderr (and ``{"error", "exit_code"}`` with --json).
"""

from __future__ import annotations

import contextlib
import http.server
import inspect
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.exceptions

from adk_redis.admin.cli import main
from adk_redis.admin.common import EXIT_CODES, Progress
from tests.servers import free_port, redis_server

ADK_REDIS = Path(sys.executable).parent / "adk-redis"


@pytest.fixture(autouse=True)
def _fast_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_RETRY_ATTEMPTS", "0")
    monkeypatch.setenv("REDIS_CONNECT_TIMEOUT", "0.5")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("REDIS_PASSWORD", raising=False)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str, *fragments: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("adk-redis: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], err


def test_the_table_is_complete() -> None:
    assert [code for code, _ in EXIT_CODES] == [0, 1, 2, 3, 4, 5, 6]
    table = (Path(__file__).resolve().parents[1] / "docs" / "reference" / "cli.md").read_text()
    for code, _ in EXIT_CODES:
        assert f"| {code} |" in table


def test_0_ok(redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--url", redis_url, "--prefix", prefix, "stats")
    assert code == 0 and "apps:     none under this prefix" in out


def test_1_problem_found(redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys,
        "--url",
        redis_url,
        "--prefix",
        prefix,
        "sessions",
        "show",
        "--app",
        "a",
        "--user",
        "u",
        "nope",
    )
    assert code == 1 and "not found" in out


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("redis:/127.0.0.1:6379", "must be followed by '//'"),
        ("redis://127.0.0.1:6379/abc", "database 'abc'"),
        ("redis://127.0.0.1:6379?bogus=1", "unknown query parameter 'bogus'"),
        ("redis://:pw@127.0.0.1:99999/0", "port '99999'"),
        ("http://127.0.0.1:6379", "unsupported scheme"),
    ],
)
def test_2_configuration(url: str, fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "--url", url, "--json", "stats")
    assert code == 2 and json.loads(out)["exit_code"] == 2
    _one_line_error(err, fragment)
    assert "pw" not in err


def test_2_database_out_of_range(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    base = redis_url.rsplit("/", 1)[0] if redis_url.count("/") > 2 else redis_url
    code, _, err = _run(capsys, "--url", f"{base}/99999", "stats")
    assert code == 2
    _one_line_error(err, "no such database")


def test_2_usage_and_settings(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["sessions", "frobnicate"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err
    monkeypatch.setenv("SESSION_TTL_HOURS", "abc")
    code, _, err = _run(capsys, "--url", "redis://127.0.0.1:1/0", "stats")
    assert code == 2
    _one_line_error(err, "SESSION_TTL_HOURS")


def test_3_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    code, _, err = _run(capsys, "--url", f"redis://:hunter2@127.0.0.1:{port}/0", "stats")
    assert code == 3
    _one_line_error(err, f"cannot reach Redis at redis://:***@127.0.0.1:{port}/0")
    assert "hunter2" not in err


def test_3_wrong_password_and_4_permission(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with redis_server(
        args=["--requirepass", "right", "--appendonly", "no"], ping_kwargs={"password": "right"}
    ) as srv:
        code, _, err = _run(capsys, "--url", f"redis://:wrong@127.0.0.1:{srv.port}/0", "stats")
        assert code == 3
        _one_line_error(err, "authentication failed")
        assert "wrong" not in err.replace("wrong password", "")
        admin = redis.Redis(port=srv.port, password="right")
        admin.execute_command("ACL", "SETUSER", "viewer", "on", ">pw", "~*", "+@all", "-scan", "-keys")
        admin.close()
        url = f"redis://viewer:pw@127.0.0.1:{srv.port}/0"
        code, _, err = _run(capsys, "--url", url, "stats")
        assert code == 4
        _one_line_error(err, "permission denied", "viewer:***@")


def test_5_files(redis_url: str, prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--url", redis_url, "--prefix", prefix]
    code, _, err = _run(capsys, *common, "import", "-i", str(tmp_path / "missing.jsonl"))
    assert code == 5
    _one_line_error(err, "cannot read", "missing.jsonl")
    code, _, err = _run(capsys, *common, "export", "-o", str(tmp_path / "no" / "such" / "dir.jsonl"))
    assert code == 5
    _one_line_error(err, "cannot write")
    code, _, err = _run(capsys, *common, "import", "--from", f"sqlite:///{tmp_path}/missing.db")
    assert code == 5
    _one_line_error(err, "no such database file")


def test_6_data(redis_url: str, prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--url", redis_url, "--prefix", prefix]
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\nworld\n")
    code, _, err = _run(capsys, *common, "import", "-i", str(junk))
    assert code == 6
    _one_line_error(err, "not an adk-redis export")
    for name, content in (("zero.jsonl", ""), ("blank.jsonl", "\n  \n\n")):
        empty = tmp_path / name
        empty.write_text(content)
        for check in ([], ["--check"]):
            code, out, err = _run(capsys, *common, "--json", "import", *check, "-i", str(empty))
            assert code == 6 and json.loads(out)["exit_code"] == 6, (name, check, err)
            _one_line_error(err, f"{name} is empty: not an adk-redis export")
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    code, _, err = _run(capsys, *common, "import", "-i", str(binary))
    assert code == 6
    _one_line_error(err, "not UTF-8")
    not_sql = tmp_path / "not.db"
    not_sql.write_text("plain text")
    code, _, err = _run(capsys, *common, "import", "--from", f"sqlite:///{not_sql}")
    assert code == 6
    _one_line_error(err, "cannot read ADK sessions")


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--url", "redis://127.0.0.1:6379?bogus=1", "stats"], 2),
        (["--url", "redis://127.0.0.1:1/0", "export"], 3),
        (["--url", "redis://127.0.0.1:1/0", "import", "-i", "/nonexistent/file.jsonl"], 5),
    ],
)
def test_the_console_script_prints_no_traceback(argv: list[str], code: int) -> None:
    env = {**os.environ, "REDIS_RETRY_ATTEMPTS": "0", "REDIS_CONNECT_TIMEOUT": "0.5"}
    proc = subprocess.run([str(ADK_REDIS), *argv], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("adk-redis: error: ")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_progress_bar_lines_and_silence() -> None:
    tty = io.StringIO()
    tty.isatty = lambda: True  # type: ignore[method-assign]
    bar = Progress("import", 10, stream=tty, delay=0, every=0)
    for _ in range(10):
        bar.advance()
    bar.finish()
    assert "\r" in tty.getvalue() and "[" + "#" * 30 + "]" in tty.getvalue() and "10/10" in tty.getvalue()

    pipe = io.StringIO()
    lines = Progress("export", None, stream=pipe, delay=0, every=0)
    for _ in range(3):
        lines.advance()
    lines.finish()
    assert "\r" not in pipe.getvalue() and pipe.getvalue().splitlines()[-1].startswith("export: 3 (")

    quiet = io.StringIO()
    off = Progress("export", 5, stream=quiet, delay=0, enabled=False)
    off.advance(5)
    off.finish()
    slow = Progress("export", 5, stream=quiet, delay=60)  # work shorter than the delay: nothing shown
    slow.advance(5)
    slow.finish()
    assert quiet.getvalue() == ""


def test_export_into_a_closed_pipe(redis_url: str, prefix: str) -> None:
    """``adk-redis export | head -1``: the reader goes away; no traceback, exit code 5 (file)."""
    import asyncio

    from adk_redis import RedisSessionService

    async def seed() -> None:
        svc = RedisSessionService(redis_url, key_prefix=prefix)
        try:
            for i in range(300):
                await svc.create_session(
                    app_name="a", user_id="u", session_id=f"s{i}", state={"pad": "x" * 500}
                )
        finally:
            await svc.close()

    asyncio.run(seed())
    try:
        cmd = f"'{ADK_REDIS}' --url '{redis_url}' --prefix {prefix} export | head -c 100 > /dev/null"
        proc = subprocess.run(
            ["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=120
        )
        assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
        assert proc.returncode == 5 and "stdout was closed" in proc.stderr
    finally:
        with redis.Redis.from_url(redis_url) as r:
            keys = list(r.scan_iter(match=f"{prefix}:*"))
            if keys:
                r.delete(*keys)


def test_the_service_uri_works_with_the_cli(
    redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--url`` takes the same URI as ``adk web``: ?key_prefix= picks the prefix (unless --prefix)."""
    import asyncio

    from adk_redis import RedisSessionService

    async def seed() -> None:
        svc = RedisSessionService(redis_url, key_prefix=prefix)
        try:
            await svc.create_session(app_name="a", user_id="u", session_id="s1")
        finally:
            await svc.close()

    asyncio.run(seed())
    sep = "&" if "?" in redis_url else "?"
    try:
        code, out, _ = _run(
            capsys, "--url", f"{redis_url}{sep}key_prefix={prefix}", "sessions", "list", "--app", "a"
        )
        assert code == 0 and out.startswith("1 session in app 'a'") and "s1" in out
        code, out, _ = _run(
            capsys,
            "--url",
            f"{redis_url}{sep}key_prefix={prefix}",
            "--prefix",
            prefix + "x",
            "sessions",
            "list",
            "--app",
            "a",
        )
        assert code == 1 and out.startswith("app 'a' not found under key prefix")  # --prefix won
    finally:
        with redis.Redis.from_url(redis_url) as r:
            keys = list(r.scan_iter(match=f"{prefix}:*"))
            if keys:
                r.delete(*keys)


def test_import_from_a_terminal_does_not_wait_forever(redis_url: str) -> None:
    import pty

    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run(
            [str(ADK_REDIS), "--url", redis_url, "import"],
            stdin=secondary,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.close(primary)
        os.close(secondary)
    assert proc.returncode == 2 and "nothing to import" in proc.stderr


@contextlib.contextmanager
def _http_server() -> Iterator[int]:
    """An HTTP server on a loopback port: something that answers, but not in the Redis protocol."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_3_a_server_that_is_not_redis(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backup = tmp_path / "f.jsonl"
    header = {"type": "header", "format": "adk-redis-export", "version": 2, "counts": {"session": 1}}
    session = {"type": "session", "app_name": "a", "user_id": "u", "id": "s1", "state": {}, "events": []}
    backup.write_text(json.dumps(header) + "\n" + json.dumps(session) + "\n")
    with _http_server() as port:
        url = f"redis://127.0.0.1:{port}/0"
        for argv in (
            ["sessions", "list", "--app", "x"],
            ["export", "-o", str(tmp_path / "x.jsonl")],
            ["stats"],
            ["import", "-i", str(backup)],
        ):
            code, _, err = _run(capsys, "--url", url, *argv)
            assert code == 3, (argv, err)
            _one_line_error(err, "does not speak the Redis protocol", f"127.0.0.1:{port}")
        code, out, err = _run(capsys, "--url", url, "doctor")
        assert code == 3 and "Traceback" not in err
        rows = {line.split()[1]: line.split()[0] for line in out.splitlines()[:-1]}
        assert rows["connectivity"] == "FAIL" and "does not speak the Redis protocol" in out
        assert rows["auth"] == "SKIP" and rows["tls"] == "OK"
        env = {**os.environ, "REDIS_RETRY_ATTEMPTS": "0", "REDIS_CONNECT_TIMEOUT": "0.5"}
        proc = subprocess.run(
            [str(ADK_REDIS), "--url", url, "stats"], capture_output=True, text=True, env=env, timeout=60
        )
        assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def _redis_py_error_classes() -> list[type[BaseException]]:
    return sorted(
        (
            cls
            for _, cls in inspect.getmembers(redis.exceptions, inspect.isclass)
            if issubclass(cls, BaseException) and cls.__module__.startswith("redis")
        ),
        key=lambda c: c.__name__,
    )


@pytest.mark.parametrize("cls", _redis_py_error_classes(), ids=lambda c: c.__name__)
def test_every_redis_py_error_has_an_exit_code(cls: type[BaseException]) -> None:
    """The one exception -> exit code mapping covers every redis-py error class (no traceback)."""
    from adk_redis.admin.errors import classify

    try:
        exc = cls("something went wrong")
    except (TypeError, ValueError):  # MovedError / AskError parse "slot host:port"
        exc = cls("1 127.0.0.1:7000")
    error = classify(exc, "redis://:secret@127.0.0.1:6379/0")
    assert error is not None, cls
    assert error.code in (2, 3, 4, 5, 6) and "secret" not in str(error)
    expected = {
        "InvalidResponse": 3,
        "DataError": 6,
        "NoPermissionError": 4,
        "AuthenticationError": 3,
        "ConnectionError": 3,
        "TimeoutError": 3,
        "ResponseError": 3,
    }
    if cls.__name__ in expected:
        assert error.code == expected[cls.__name__]
