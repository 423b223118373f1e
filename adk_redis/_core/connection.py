"""Connection: pooled redis-py asyncio clients with redis-py's own Retry/backoff, one per event loop,
every operation under a deadline (:class:`LoopLocalClient`)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlparse

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..config import RedisSettings, client_url
from ..errors import RedisUnavailableError

T = TypeVar("T")
_timeout: Any = getattr(asyncio, "timeout", None)  # Python 3.11+; 3.10 uses wait_for

SUPPORTED_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster", "redis+sentinel")


class CountingRetry(Retry):
    """redis-py's Retry that also counts failed attempts (``.failures``).

    redis-py deep-copies the retry into every connection; the copies share
    one counter, so ``.failures`` is the client-wide total.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._counter = [0]

    @property
    def failures(self) -> int:
        return self._counter[0]

    def __deepcopy__(self, memo: dict[int, Any]) -> CountingRetry:
        return copy.copy(self)  # shares the counter; supported errors are an immutable tuple

    async def call_with_retry(self, do: Any, fail: Any, *args: Any, **kwargs: Any) -> Any:
        async def counted(error: Exception, *rest: Any) -> Any:
            self._counter[0] += 1
            return await fail(error, *rest)

        return await super().call_with_retry(do, counted, *args, **kwargs)


def make_retry(attempts: int) -> Retry:
    """Exponential backoff with jitter (base 50 ms, cap 2 s) for transient errors."""
    return CountingRetry(
        ExponentialWithJitterBackoff(base=0.05, cap=2.0),
        attempts,
        supported_errors=(RedisConnectionError, RedisTimeoutError),
    )


_FAST_CLASSES: dict[type[Any], type[Any]] = {}


def _fast_packing(connection_class: type[Any]) -> type[Any]:
    """A subclass of ``connection_class`` that packs commands with hiredis (C) when available.

    redis-py's asyncio connections pack every command in Python; for the
    25-argument append script that is a measurable share of a call.  Output
    is byte-identical; anything hiredis cannot pack goes the Python way.
    """
    try:
        import hiredis
    except ImportError:  # pragma: no cover - hiredis is a dependency
        return connection_class
    if connection_class not in _FAST_CLASSES:
        python_pack = connection_class.pack_command

        def pack_command(self: Any, *args: Any) -> list[bytes]:
            first = args[0] if args else None
            if isinstance(first, str) and " " not in first:
                try:
                    return [hiredis.pack_command(args)]
                except TypeError:
                    pass
            return list(python_pack(self, *args))

        _FAST_CLASSES[connection_class] = type(
            "Fast" + connection_class.__name__, (connection_class,), {"pack_command": pack_command}
        )
    return _FAST_CLASSES[connection_class]


def _sentinel_client(url: str, settings: RedisSettings, common: dict[str, Any]) -> Any:
    """``redis+sentinel://[:password@]host:port[,host:port...]/service_name[/db]``."""
    from redis.asyncio.sentinel import Sentinel

    parsed = urlparse(url)
    hosts = parsed.netloc.rpartition("@")[2]
    sentinels = []
    for part in hosts.split(","):
        host, _, port = part.rpartition(":")
        sentinels.append((host or "127.0.0.1", int(port or 26379)))
    path = [p for p in parsed.path.split("/") if p]
    if not path:
        raise ValueError("redis+sentinel:// URLs need a service name: redis+sentinel://host:port/mymaster")
    if parsed.password:
        common["password"] = parsed.password
    if settings.redis_db is not None:  # REDIS_DB overrides the URL's database
        common["db"] = settings.redis_db
    elif len(path) > 1:
        common["db"] = int(path[1])
    sentinel = Sentinel(  # type: ignore[no-untyped-call, unused-ignore]
        sentinels,
        sentinel_kwargs={
            "socket_timeout": settings.redis_socket_timeout,
            "socket_connect_timeout": settings.redis_connect_timeout,
        },
    )
    return sentinel.master_for(path[0], max_connections=settings.redis_max_connections, **common)


def create_client(settings: RedisSettings, uri: str | None = None) -> LoopLocalClient:
    """The client services hold for ``uri`` (or ``settings.redis_url``): a :class:`LoopLocalClient`.

    It makes one redis-py client per event loop (see :func:`new_client`) and bounds every command and
    pipeline by ``settings.redis_operation_timeout``.  The URL is checked now
    (:class:`~adk_redis.errors.ConfigurationError`).
    """
    return LoopLocalClient(lambda: new_client(settings, uri), deadline=settings.redis_operation_timeout)


def new_client(settings: RedisSettings, uri: str | None = None) -> Any:
    """A redis-py asyncio client for ``uri`` (or ``settings.redis_url``), usable in one event loop.

    ``redis+cluster://host:port`` (or ``rediss+cluster://``) returns a
    ``redis.asyncio.RedisCluster``; ``redis+sentinel://host:port/service``
    a client of the service's current master (follows failovers); every
    other scheme a pooled
    ``redis.asyncio.Redis``.
    """
    # Checked (ConfigurationError naming the offending part) and without adk_redis' own parameters
    # (?key_prefix=..., already part of the settings: adk_redis.config.resolve_settings).
    url = client_url(settings, uri or settings.redis_url)
    scheme = urlparse(url).scheme
    if scheme not in SUPPORTED_SCHEMES:
        raise ValueError(
            f"Unsupported Redis URL scheme {scheme!r}; expected one of {', '.join(SUPPORTED_SCHEMES)}"
        )
    common: dict[str, Any] = {
        "socket_timeout": settings.redis_socket_timeout,
        "socket_connect_timeout": settings.redis_connect_timeout,
        "retry": make_retry(settings.redis_retry_attempts),
        "decode_responses": False,
    }
    if settings.redis_password and not urlparse(url).password:  # REDIS_PASSWORD: when the URL has none
        common["password"] = settings.redis_password
    if scheme == "redis+sentinel":
        return _sentinel_client(url, settings, common)
    if scheme.endswith("+cluster"):
        from redis.asyncio.cluster import RedisCluster

        real = url.replace("+cluster", "", 1)
        return RedisCluster.from_url(real, max_connections=settings.redis_max_connections, **common)
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_connect_timeout + settings.redis_socket_timeout,
        health_check_interval=30,
        **common,
    )
    if settings.redis_db is not None:  # REDIS_DB overrides the URL's database (from_url lets the URL win)
        pool.connection_kwargs["db"] = settings.redis_db
    pool.connection_class = _fast_packing(pool.connection_class)
    return aioredis.Redis.from_pool(pool)  # the client owns (and closes) its pool


def is_cluster(client: Any) -> bool:
    """True for a Redis Cluster client (multi-key steps must stay in one slot)."""
    from redis.asyncio.cluster import RedisCluster

    if isinstance(client, LoopLocalClient):
        client = client.current
    return isinstance(client, RedisCluster)


# -- the client services hold: one redis-py client per event loop, every operation under a deadline ----
async def _within(awaitable: Awaitable[T], deadline: float | None, what: str) -> T:
    """Await ``awaitable``; :class:`RedisUnavailableError` when it takes longer than ``deadline`` seconds.

    The deadline covers everything redis-py does for the call: waiting for a pooled connection,
    connecting, redis-py's retries with their backoff, and the reply.  A stalled server (``DEBUG
    SLEEP``, ``CLIENT PAUSE``, a hung network) therefore costs at most the deadline.  The cancelled
    command's connection is dropped by redis-py (never reused with an unread reply).
    """
    if not deadline:
        return await awaitable
    try:
        if _timeout is not None:
            async with _timeout(deadline):
                return await awaitable
        return await asyncio.wait_for(awaitable, deadline)
    except (asyncio.TimeoutError, TimeoutError) as exc:
        raise RedisUnavailableError(
            f"Redis did not answer {what} within {deadline:g} s (REDIS_OPERATION_TIMEOUT)"
        ) from exc


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class LoopLocalClient:
    """A redis-py asyncio client per event loop, every command and pipeline bounded by a deadline.

    redis-py's asyncio clients (their pools, locks and connections) belong to the event loop that
    first used them; a service built at module level and called from several ``asyncio.run()`` calls,
    or from pytest's per-test loops, needs one per loop, as ADK's own services do.  This proxy is what
    the services hold: every attribute is the running loop's client's (made on first use in that
    loop; clients of closed loops are dropped), awaitable results are bounded by ``deadline``
    (:func:`_within`), and pipelines' ``execute`` too.  Scripts registered on it
    (``register_script``) run on the calling loop's client.  Outside a running loop it answers with
    the most recently used client (statistics).
    """

    def __init__(self, factory: Callable[[], Any], *, deadline: float | None) -> None:
        self._factory = factory
        self.deadline = deadline
        self._spare: Any = factory()  # made now: a bad URL fails at construction
        self._cluster = hasattr(self._spare, "nodes_manager")  # redis-py's async RedisCluster
        self._last: Any = self._spare
        self._clients: dict[asyncio.AbstractEventLoop, Any] = {}
        self._closers: dict[asyncio.AbstractEventLoop, Any] = {}

    @property
    def current(self) -> Any:
        """The running loop's redis-py client (made on first use in that loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._last
        client = self._clients.get(loop)
        if client is None:
            for old in [lp for lp in self._clients if lp.is_closed()]:
                del self._clients[old]  # its loop is gone: nothing can be awaited on it any more
                self._closers.pop(old, None)
            client, self._spare = (self._spare, None) if self._spare is not None else (self._factory(), None)
            self._clients[loop] = client
            self._close_with(loop, client)
        self._last = client
        return client

    @property  # type: ignore[misc]
    def __class__(self) -> type[Any]:  # noqa: D105 - isinstance(proxy, RedisCluster / Redis) keeps working
        return type(self.current)

    def _close_with(self, loop: asyncio.AbstractEventLoop, client: Any) -> None:
        """Close ``client`` when ``loop`` shuts down (``asyncio.run``, pytest's loops and the design API's
        loop thread finalize async generators before closing): no connection outlives its loop."""

        async def closer() -> Any:
            try:
                yield
            finally:
                self._closers.pop(loop, None)
                mine = self._clients.get(loop)
                if mine is not None and mine is client:  # not closed (or replaced) meanwhile
                    del self._clients[loop]
                    with contextlib.suppress(Exception):
                        await mine.aclose()

        agen = closer()
        self._closers[loop] = agen  # the loop keeps async generators only weakly
        asyncio.ensure_future(agen.__anext__(), loop=loop)

    def loops(self) -> int:
        """How many event loops have a client now."""
        return len(self._clients)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.current, name)
        if not callable(attr):
            return attr
        deadline = self.deadline
        loop = _running_loop()

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if name == "pipeline":  # a pipeline is awaitable too, but it is awaited via execute()
                _bound_pipeline(result, deadline)
            elif inspect.isawaitable(result):
                return self._await(result, loop, name, args, kwargs)
            return result

        return call

    async def _await(
        self,
        awaitable: Awaitable[T],
        loop: asyncio.AbstractEventLoop | None,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        if loop is not asyncio.get_running_loop():  # made in one loop, awaited in another: redo it here
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            awaitable = getattr(self.current, name)(*args, **kwargs)
        if self._cluster and self.current._initialize:
            # redis-py's async RedisCluster, before its first command: its commands racing the lazy
            # initialization lose connections ("'NoneType' object has no attribute 'writelines'",
            # "Connection closed by server") about once per 40 concurrent first commands; each
            # caller awaiting initialize() (locked, once) first does not (tests/test_cluster.py).
            awaitable = self._initialized_first(self.current, awaitable)
        deadline = self.deadline
        if not deadline or _timeout is None:
            return await _within(awaitable, deadline, name)
        try:  # _within inlined: one coroutine less on every command
            async with _timeout(deadline):
                return await awaitable
        except TimeoutError as exc:
            raise RedisUnavailableError(
                f"Redis did not answer {name} within {deadline:g} s (REDIS_OPERATION_TIMEOUT)"
            ) from exc

    @staticmethod
    async def _initialized_first(client: Any, awaitable: Awaitable[T]) -> T:
        await client.initialize()
        return await awaitable

    def register_script(self, script: str | bytes) -> Any:
        """A redis-py Script run through this proxy (on the calling loop's client, within the deadline)."""
        from redis.commands.core import AsyncScript

        return AsyncScript(self, script)  # type: ignore[arg-type]

    def get_encoder(self) -> Any:
        client = self.current
        pool = getattr(client, "connection_pool", None)
        return pool.get_encoder() if pool is not None else client.get_encoder()

    async def aclose(self, **_kw: Any) -> None:
        """Close the running loop's client and its pool (those of other loops close with their loop)."""
        loop = _running_loop()
        mine: Any = self._clients.pop(loop, None) if loop is not None else None
        spare, self._spare = self._spare, None
        for client in (mine, spare):
            if client is not None:
                await client.aclose()

    async def close(self) -> None:
        await self.aclose()

    async def __aenter__(self) -> LoopLocalClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<LoopLocalClient {self._last!r} loops={len(self._clients)} deadline={self.deadline}>"


def _bound_pipeline(pipe: Any, deadline: float | None) -> None:
    """Bound ``pipe.execute()`` by the deadline and release its connection when it fails.

    redis-py's ``Pipeline.execute`` loads the pipeline's scripts (``SCRIPT EXISTS`` / ``SCRIPT
    LOAD``) on a pooled connection *before* the ``try`` whose ``finally`` resets the pipeline: when
    that step fails (server down, the deadline cuts it) the pipeline keeps the connection, the pool
    counts it in use for ever and the garbage collector reports "Unclosed Pipeline client".  So a
    failed ``execute`` (any exception, a cancellation too) ends with the pipeline reset here.  The
    pipeline object stays redis-py's own.
    """
    execute = getattr(pipe, "execute", None)
    if execute is None:
        return

    async def bounded(*args: Any, **kwargs: Any) -> Any:
        try:
            return await _within(execute(*args, **kwargs), deadline, "a pipeline")
        except BaseException as exc:
            await _release_pipeline(pipe, exc)
            raise

    pipe.execute = bounded


async def _release_pipeline(pipe: Any, error: BaseException) -> None:
    """Give a failed pipeline's connection back to its pool (dropped first unless Redis answered)."""
    conn = getattr(pipe, "connection", None)
    if conn is None:  # redis-py's own ``finally`` already reset it (or a cluster pipeline: none held)
        return
    with contextlib.suppress(Exception):
        if not isinstance(error, ResponseError):  # cut mid-command: never reuse it with an unread reply
            await asyncio.shield(conn.disconnect(nowait=True))
    with contextlib.suppress(Exception):
        await asyncio.shield(pipe.reset())  # releases the connection (a second cancel cannot cut it short)


def pool_stats(client: Any) -> dict[str, int | None]:
    """Created / in-use connections of a redis-py asyncio client (summed over cluster nodes)."""
    if isinstance(client, LoopLocalClient):
        client = client.current
    pools: list[Any] = []
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        pools.append(pool)
    elif hasattr(client, "get_nodes"):
        pools.extend(getattr(n, "connection_pool", None) or n for n in client.get_nodes())
    created = in_use = 0
    max_conn: int | None = None
    for p in pools:
        available = getattr(p, "_available_connections", None)
        used = getattr(p, "_in_use_connections", None)
        if available is None and hasattr(p, "_free"):  # cluster node: _connections + _free
            conns = getattr(p, "_connections", [])
            free = getattr(p, "_free", [])
            created += len(conns)
            in_use += len(conns) - len(free)
        else:
            created += len(available or []) + len(used or [])
            in_use += len(used or [])
        mc = getattr(p, "max_connections", None)
        if isinstance(mc, int):
            max_conn = (max_conn or 0) + mc
    return {"created": created, "in_use": in_use, "max": max_conn}


def retry_failures(client: Any) -> int:
    """Failed attempts redis-py's Retry made (the CountingRetry of :func:`make_retry`)."""
    if isinstance(client, LoopLocalClient):
        client = client.current
    retry = getattr(client, "retry", None)
    pool = getattr(client, "connection_pool", None)
    if retry is None and pool is not None:
        retry = getattr(pool, "connection_kwargs", {}).get("retry")
    return int(getattr(retry, "failures", 0) or 0)


def client_stats(client: Any) -> dict[str, Any]:
    """``connection_retries`` and ``pool`` (created / in use / max) of a client."""
    return {"connection_retries": retry_failures(client), "pool": pool_stats(client)}
