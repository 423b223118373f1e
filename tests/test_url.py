"""Strict connection URLs: one parser for constructors, settings, registry URIs and the CLI.

A malformed URL is a ConfigurationError naming the offending part (password
redacted) at construction; ``adk api_server`` refuses to start with one line.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import adk_redis
from adk_redis import ConfigurationError, RedisMemoryService, RedisSessionService, load_settings
from adk_redis._core.url import parse_redis_url, redact_url
from adk_redis.config import ConfigurationError as ConfigConfigurationError
from adk_redis.errors import AdkRedisError
from adk_redis.registry import memory_factory, session_factory
from tests.servers import free_port

ADK = Path(sys.executable).parent / "adk"
SAMPLES = Path(__file__).resolve().parents[1] / "samples"

BAD = [
    ("redis:/127.0.0.1:6411", "must be followed by '//'"),
    ("redis://127.0.0.1:6411/abc", "database 'abc' is not a number"),
    ("redis://127.0.0.1:6411?bogus=1", "unknown query parameter 'bogus'"),
    ("redis://127.0.0.1:6411?session_ttl_hours=abc", "session_ttl_hours='abc'"),
    ("redis://127.0.0.1:70000/0", "port '70000'"),
    ("redis://127.0.0.1:6411/0/1", "database '0/1'"),
    ("redis://127.0.0.1:6411/-1", "database '-1'"),
    ("redis://127.0.0.1:6411?db=x", "db='x'"),
    ("redis://127.0.0.1:6411/1?db=2", "database given twice"),
    ("redis://127.0.0.1:6411?socket_timeout=-1", "socket_timeout"),
    ("redis://127.0.0.1:6411?ssl_ca_certs=/etc/hosts", "TLS option: use rediss://"),
    ("rediss://127.0.0.1:6411?ssl_ca_certs=/no/such/ca.crt", "no such file"),
    ("redis://127.0.0.1:6411?stale_policy=sometimes", "reject, merge or lww"),
    ("redis://127.0.0.1:6411?key_prefix=a%20b", "key_prefix"),
    ("redis://127.0.0.1:6411#frag", "fragment"),
    ("redis:///0", "no host"),
    ("redis://bad_host!:6379", "host 'bad_host!'"),
    ("http://127.0.0.1:6411", "unsupported scheme 'http://'"),
    ("localhost:6379", "expected scheme://"),
    ("unix://", "no socket path"),
    ("unix://host/tmp/r.sock", "socket path, not a host"),
    ("redis+cluster://127.0.0.1:7000/3", "database 0 only"),
    ("redis+sentinel://127.0.0.1:26379", "no service name"),
    ("redis+sentinel://127.0.0.1:26379/m/x", "database 'x'"),
    ("", "empty"),
]


@pytest.mark.parametrize(("url", "why"), BAD)
def test_malformed_urls_are_rejected_naming_the_part(url: str, why: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_redis_url(url)
    assert why in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost",
        "redis://localhost:6379/0",
        "redis://user:pw@10.0.0.1:6380/15?socket_timeout=2&socket_keepalive=true&protocol=3",
        "redis://[::1]:6379/2",
        "rediss://h:6380?ssl_cert_reqs=required&ssl_check_hostname=false",
        "unix:///var/run/redis.sock?db=3",
        "redis+cluster://h:7000",
        "rediss+cluster://h:7000/0",
        "redis+sentinel://:pw@a:26379,b:26380/mymaster/2",
    ],
)
def test_valid_urls_parse(url: str) -> None:
    parsed = parse_redis_url(url)
    assert parsed.client_url.split("?")[0] == url.split("?")[0]


def test_parsed_parts() -> None:
    p = parse_redis_url("redis://u:secret@h:6380/4?key_prefix=app&socket_timeout=2")
    assert p.hosts == (("h", 6380),) and p.db == 4
    assert p.ours == {"key_prefix": "app"} and p.options == {"socket_timeout": "2"}
    assert p.client_url == "redis://u:secret@h:6380/4?socket_timeout=2"
    assert p.redacted == "redis://u:***@h:6380/4?key_prefix=app&socket_timeout=2"
    s = parse_redis_url("redis+sentinel://a:1,b:2/svc/3")
    assert s.hosts == (("a", 1), ("b", 2)) and s.service == "svc" and s.db == 3
    assert parse_redis_url("unix:///tmp/r.sock?db=2").path == "/tmp/r.sock"
    assert parse_redis_url("rediss://h").tls and not parse_redis_url("redis://h").tls


def test_passwords_never_appear_in_errors() -> None:
    for url in (
        "redis://user:hunter2@h:6379/abc",
        "redis://:hunter2@h:6379?bogus=1",
        "rediss://:hunter2@h?ssl_password=hunter2&ssl_ca_certs=/none",
    ):
        with pytest.raises(ConfigurationError) as info:
            parse_redis_url(url)
        assert "hunter2" not in str(info.value)
        assert "***" in str(info.value)


def test_a_misspelt_query_parameter_names_the_closest_one() -> None:
    """A typo in the URL (as in ``adk api_server --session_service_uri``) gets the same hint as one in a
    keyword argument."""
    with pytest.raises(ConfigurationError) as info:
        parse_redis_url("redis://h:6379/0?key_prefx=app")
    assert "unknown query parameter 'key_prefx' (did you mean 'key_prefix'?)" in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        parse_redis_url("redis://h:6379/0?zzz=1")
    assert "did you mean" not in str(info.value)


@pytest.mark.parametrize("cls", [RedisSessionService, RedisMemoryService])
def test_an_empty_url_is_an_error_not_the_default_server(
    cls: type[RedisSessionService] | type[RedisMemoryService], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Service(os.environ.get("MY_URL", ""))`` must not silently connect to another server."""
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    with pytest.raises(ConfigurationError, match="empty"):
        cls("")


def test_one_redaction_function() -> None:
    assert redact_url("redis://u:p@h:1/0") == "redis://u:***@h:1/0"
    assert redact_url("redis://:p@h") == "redis://:***@h"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"
    assert redact_url("unix:///tmp/r.sock") == "unix:///tmp/r.sock"
    assert redact_url("rediss://h?ssl_password=x&a=b") == "rediss://h?ssl_password=***&a=b"
    assert redact_url("redis+sentinel://:p@a:1,b:2/m") == "redis+sentinel://:***@a:1,b:2/m"
    from adk_redis.admin import cli

    assert cli.redact is redact_url


def test_configuration_error_is_in_the_tree() -> None:
    assert ConfigConfigurationError is ConfigurationError is adk_redis.errors.ConfigurationError
    assert issubclass(ConfigurationError, AdkRedisError)
    assert issubclass(ConfigurationError, ValueError)


def test_every_entry_point_uses_the_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "redis://127.0.0.1:6411/abc"
    with pytest.raises(ConfigurationError, match="database 'abc'"):
        RedisSessionService(url)
    with pytest.raises(ConfigurationError, match="database 'abc'"):
        RedisMemoryService(url)
    with pytest.raises(ConfigurationError, match="REDIS_URL"):
        load_settings(redis_url=url)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6411?bogus=1")
    with pytest.raises(ConfigurationError, match="bogus"):
        RedisSessionService()
    monkeypatch.delenv("REDIS_URL")
    with pytest.raises(ConfigurationError, match="bogus"):
        session_factory("redis://127.0.0.1:6411?bogus=1")
    with pytest.raises(ConfigurationError, match="bogus"):
        memory_factory("redis://127.0.0.1:6411?bogus=1")


def test_memory_factory_accepts_the_session_uri(redis_url: str, prefix: str) -> None:
    memory = memory_factory(f"{redis_url}?key_prefix={prefix}&session_ttl_hours=2&stale_policy=merge")
    assert isinstance(memory, RedisMemoryService)
    assert memory.keys.prefix == prefix


def test_registry_warns_once_when_redis_does_not_answer(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    with caplog.at_level(logging.WARNING, logger="adk_redis.registry"):
        service = session_factory(f"redis://:hunter2@127.0.0.1:{port}/0")
    assert isinstance(service, RedisSessionService)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"redis://:***@127.0.0.1:{port}/0" in warnings[0] and "does not answer" in warnings[0]
    assert "hunter2" not in warnings[0]


def test_registry_is_quiet_when_redis_answers(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="adk_redis.registry"):
        session_factory(redis_url)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("redis:/127.0.0.1:6411", "must be followed by '//'"),
        ("redis://127.0.0.1:6411/abc", "database 'abc'"),
        ("redis://127.0.0.1:6411?bogus=1", "unknown query parameter 'bogus'"),
        ("redis://127.0.0.1:6411?session_ttl_hours=abc", "session_ttl_hours='abc'"),
    ],
)
@pytest.mark.parametrize("option", ["--session_service_uri", "--memory_service_uri"])
def test_adk_api_server_refuses_a_malformed_uri(option: str, uri: str, why: str) -> None:
    """Exit code 2 for a malformed URI, whether it is the session or the memory service's."""
    env = {k: v for k, v in os.environ.items() if k not in ("GOOGLE_API_KEY", "REDIS_URL")}
    env["ADK_REDIS_LOCAL_MODEL"] = "1"
    cmd = [str(ADK), "api_server", "--host", "127.0.0.1", "--port", str(free_port()), "--no-reload"]
    cmd += [option, uri, str(SAMPLES)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and why in errors[0], proc.stderr[-2000:]


def test_registry_warns_about_a_database_the_server_does_not_have(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    base = redis_url.rsplit("/", 1)[0] if redis_url.count("/") > 2 else redis_url
    with caplog.at_level(logging.WARNING, logger="adk_redis.registry"):
        session_factory(f"{base}/99999")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "DB index is out of range" in warnings[0]


def test_redis_db_overrides_the_urls_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """Configuration reference: REDIS_DB "overrides the URL's" database (redis-py's from_url lets it win)."""
    import asyncio

    from tests.servers import redis_server

    async def create(uri: str | None) -> None:
        svc = RedisSessionService(uri, key_prefix="dbtest")
        try:
            await svc.create_session(app_name="a", user_id="u", session_id=uri or "env")
        finally:
            await svc.close()

    with redis_server(args=["--appendonly", "no"]) as srv:
        monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{srv.port}/2")
        monkeypatch.setenv("REDIS_DB", "3")
        asyncio.run(create(None))  # REDIS_URL
        asyncio.run(create(f"redis://127.0.0.1:{srv.port}/4"))  # a constructor URI
        with srv.client(db=2) as two, srv.client(db=3) as three, srv.client(db=4) as four:
            assert two.dbsize() == 0 and four.dbsize() == 0
            assert three.exists("dbtest:session:{a:u}:s:env")
            assert len(three.keys("dbtest:session:{a:u}:s:redis*")) == 1


def test_redis_password_completes_a_url_with_a_user_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Configuration reference: REDIS_PASSWORD is the password "when the URL carries none", also for ``redis://alice@host``."""
    import asyncio

    from tests.servers import redis_server

    async def whoami(uri: str) -> str:
        svc = RedisSessionService(uri, key_prefix="pwtest")
        try:
            await svc.create_session(app_name="a", user_id="u")
            return adk_redis._core.codec.text(await svc.client.execute_command("ACL", "WHOAMI"))
        finally:
            await svc.close()

    with redis_server(args=["--appendonly", "no"]) as srv:
        with srv.client() as admin:
            admin.execute_command("ACL", "SETUSER", "alice", "on", ">pw", "~*", "+@all")
            admin.execute_command("ACL", "SETUSER", "default", "off")
        monkeypatch.setenv("REDIS_PASSWORD", "pw")
        assert asyncio.run(whoami(f"redis://alice@127.0.0.1:{srv.port}/0")) == "alice"
        monkeypatch.setenv("REDIS_URL", f"redis://alice@127.0.0.1:{srv.port}/0")
        settings = load_settings()
        assert settings.redis_password == "pw"
        # a password in the URL still wins over REDIS_PASSWORD
        monkeypatch.setenv("REDIS_PASSWORD", "wrong")
        assert asyncio.run(whoami(f"redis://alice:pw@127.0.0.1:{srv.port}/0")) == "alice"


def test_an_explicit_argument_is_named_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad constructor argument is reported as the argument, a bad variable as the variable."""
    monkeypatch.delenv("SESSION_STALE_POLICY", raising=False)
    with pytest.raises(ConfigurationError, match=r"stale_policy \(SESSION_STALE_POLICY\): .*'Merge'"):
        RedisSessionService("redis://127.0.0.1:6411/0", stale_policy="Merge")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"key_prefix \(REDIS_KEY_PREFIX\)"):
        RedisSessionService("redis://127.0.0.1:6411/0", key_prefix="a b")
    monkeypatch.setenv("SESSION_STALE_POLICY", "Merge")
    with pytest.raises(ConfigurationError, match=r"configuration: SESSION_STALE_POLICY: "):
        RedisSessionService("redis://127.0.0.1:6411/0")


def test_adk_redis_parameters_in_constructor_urls_and_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """?key_prefix=, ?session_ttl_hours=, ?stale_policy= work everywhere a URL does, as on adk web URIs:
    they override the environment; explicit constructor arguments still win."""
    for name in ("REDIS_URL", "REDIS_KEY_PREFIX", "SESSION_TTL_HOURS", "SESSION_STALE_POLICY"):
        monkeypatch.delenv(name, raising=False)
    url = "redis://127.0.0.1:6411/0?key_prefix=trial123&session_ttl_hours=2&stale_policy=merge"
    svc = RedisSessionService(url)
    assert svc.keys.prefix == "trial123" and svc.stale_policy == "merge"
    assert svc.settings.session_ttl_hours == 2
    svc = RedisSessionService(url, key_prefix="mine", stale_policy="reject", session_ttl_hours=5)
    assert svc.keys.prefix == "mine" and svc.stale_policy == "reject"
    assert svc.settings.session_ttl_hours == 5
    svc = RedisSessionService(url, settings=load_settings(redis_key_prefix="other"))
    assert svc.keys.prefix == "trial123"

    monkeypatch.setenv("REDIS_KEY_PREFIX", "fromenv")
    monkeypatch.setenv("REDIS_URL", url)
    settings = load_settings()
    assert settings.redis_key_prefix == "trial123" and settings.session_stale_policy == "merge"
    assert load_settings(redis_key_prefix="explicit").redis_key_prefix == "explicit"
    assert RedisSessionService().keys.prefix == "trial123"
    assert RedisMemoryService().keys.prefix == "trial123"
    assert RedisSessionService(os.environ["REDIS_URL"]).keys.prefix == "trial123"
    assert RedisSessionService(key_prefix="explicit").keys.prefix == "explicit"
    # none / 0 leave SESSION_TTL_HOURS in charge, as on adk web URIs
    monkeypatch.setenv("SESSION_TTL_HOURS", "3")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6411/0?session_ttl_hours=none")
    assert load_settings().session_ttl_hours == 3
    monkeypatch.delenv("REDIS_URL")
    monkeypatch.delenv("REDIS_KEY_PREFIX")
    # the memory service reads them from its URL too; an explicit argument wins
    assert RedisMemoryService(url).keys.prefix == "trial123"
    assert RedisMemoryService(url, key_prefix="mine").keys.prefix == "mine"
