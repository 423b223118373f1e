"""Connection: pooled redis-py asyncio clients with redis-py's own Retry/backoff, one per event loop,
every operation under a deadline (:class:`LoopLocalClient`)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import socket
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar
from urllib.parse import urlparse

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    BusyLoadingError,
    ClusterDownError,
    CrossSlotTransactionError,
    ExternalAuthProviderError,
    InvalidPipelineStack,
    MasterDownError,
    ReadOnlyError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..config import RedisSettings, client_url
from ..errors import RedisOutcomeUnknownError, RedisUnavailableError
from .stats import ClientStats, PoolStats
from .url import redact_url

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


# -- what "Redis is unavailable" means: the one translation into RedisUnavailableError -----------------
class _Call:
    """What one operation sent and had answered (all of redis-py's attempts included)."""

    __slots__ = ("answers", "exact", "pipeline", "sends")

    def __init__(self, *, pipeline: bool = False, exact: bool = True) -> None:
        self.sends = 0
        self.answers = 0
        self.pipeline = pipeline
        self.exact = exact  # False: the client's connections do not count (cluster, sentinel)

    def unanswered(self, kind: str) -> bool:
        """A request reached the socket and its reply was not read (it may have been executed)."""
        if not self.exact:  # not counted: any failure but a refused connection may follow a send
            return kind in ("timeout", "deadline", "closed", "cluster")
        return self.sends > 0 if self.pipeline else self.sends > self.answers


_CALL: ContextVar[_Call | None] = ContextVar("adk_redis_call", default=None)

_READS = (
    "get mget getrange strlen exists type ttl pttl expiretime pexpiretime hget hmget hgetall hlen "
    "hexists hkeys hvals hscan hstrlen zrange zrangebyscore zrevrange zrevrangebyscore zrangebylex "
    "zscore zmscore zcard zcount zrank zrevrank zscan smembers sismember smismember scard sscan scan "
    "keys lrange llen lindex xrange xrevrange xlen xinfo_stream ping echo info dbsize time lastsave "
    "memory_usage object config_get client_list client_info client_id script_exists script_load "
    "evalsha_ro eval_ro vcard vdim vsim vemb vinfo vrandmember ft_search ft_info cluster_info "
    "cluster_nodes cluster_slots cluster_shards role wait waitaof "
)
#: Commands (redis-py method names, lower case) that never write: their failure is never "outcome unknown".
READ_COMMANDS = frozenset(_READS.split())

_REPLY_KINDS: tuple[tuple[type[BaseException], str, str], ...] = (
    (BusyLoadingError, "loading", "it is loading its data set (LOADING)"),
    (ReadOnlyError, "readonly", "it is a read-only replica (READONLY)"),
    (MasterDownError, "masterdown", "it is a replica cut off from its primary (MASTERDOWN)"),
    (ClusterDownError, "clusterdown", "the cluster is down (CLUSTERDOWN)"),
    (TryAgainError, "tryagain", "the cluster is moving the keys' slot (TRYAGAIN)"),
)


#: A server that requires a password, reached without one: NOAUTH to a command, or to HELLO (RESP3).
NEEDS_PASSWORD = ("NOAUTH", "Authentication required", "HELLO must be called with the client already")
NEEDS_PASSWORD_HINT = "put it in the URL (redis://[user]:password@host:port/db) or in REDIS_PASSWORD"


def auth_problem(exc: BaseException) -> str | None:
    """One line for an authentication failure (no password for a server that needs one, a wrong one);
    None for anything else (redis-py's own text leaves a user guessing: ``HELLO must be called ...``)."""
    message = " ".join(str(exc).split())
    if any(m in message for m in NEEDS_PASSWORD) and "WRONGPASS" not in message:
        return f"authentication required: the Redis server needs a password; {NEEDS_PASSWORD_HINT}"
    if isinstance(exc, (AuthenticationError, AuthorizationError)) or "WRONGPASS" in message:
        return f"authentication failed: {message}"
    return None


def unavailable_kind(exc: BaseException) -> tuple[str, str] | None:
    """``(kind, reason)`` when ``exc`` means Redis could not serve a call; None for an answer or a bug.

    Authentication failures are answers (a wrong setting, not an outage), although redis-py makes them
    connection errors.
    """
    if isinstance(exc, RedisUnavailableError):
        return exc.kind, str(exc)
    if isinstance(exc, (AuthenticationError, AuthorizationError, ExternalAuthProviderError)):
        return None
    for cls, kind, reason in _REPLY_KINDS:
        if isinstance(exc, cls):
            return kind, reason
    if isinstance(exc, ResponseError):
        msg = str(exc)
        if msg.startswith("BUSY ") or msg == "BUSY":  # a script past its time limit (not BUSYKEY/BUSYGROUP)
            return "busy", "it is busy running a script (BUSY)"
        return None
    if isinstance(exc, RedisTimeoutError):
        return "timeout", f"no reply within the socket timeout (REDIS_SOCKET_TIMEOUT): {exc}"
    if isinstance(exc, RedisConnectionError):
        msg = str(exc)
        if "connecting to" in msg:
            return "refused", msg
        return "closed", f"the connection was lost: {msg}"
    if isinstance(exc, (CrossSlotTransactionError, InvalidPipelineStack)):
        return None  # our bug, not an outage
    if isinstance(exc, RedisClusterException):
        if "slots are not covered" in str(exc):  # no slot map: every node reports CLUSTERDOWN
            return "clusterdown", f"the cluster is down (not every slot is served): {exc}"
        return "cluster", f"the cluster cannot serve it: {exc}"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "deadline", str(exc) or "no reply within the deadline (REDIS_OPERATION_TIMEOUT)"
    if isinstance(exc, (ConnectionError, socket.gaierror)):
        return "refused", str(exc) or type(exc).__name__
    return None


def typed_error(
    exc: BaseException, *, what: str, where: str = "Redis", writes: bool = True, call: _Call | None = None
) -> BaseException:
    """The typed error for ``exc`` raised by a call of ``what``; ``exc`` itself when it is not an outage.

    :class:`RedisOutcomeUnknownError` when the call ``writes`` and a request was sent whose reply was
    lost (``call``), else :class:`RedisUnavailableError`.  The message is one line: the server (password
    redacted), the fault, the command, and for an unknown outcome that retrying is safe.
    """
    found = unavailable_kind(exc)
    if found is None:
        return exc
    kind, reason = found
    unknown = writes and call is not None and call.unanswered(kind)
    if isinstance(exc, RedisUnavailableError):
        if isinstance(exc, RedisOutcomeUnknownError) or not unknown:
            return exc
        reason = str(exc)
    if unknown:
        return RedisOutcomeUnknownError(
            f"{where} did not confirm {what}: {reason}; the write may have landed, and retrying the "
            "same call is safe",
            kind=kind,
        )
    if kind == "refused":
        return RedisUnavailableError(f"cannot reach {where} ({what}): {reason}", kind=kind)
    return RedisUnavailableError(f"{where} is unavailable ({what}): {reason}", kind=kind)


def _tracking(connection_class: type[Any]) -> type[Any]:
    """Count the requests a connection sends and the replies it reads for the running operation.

    A failure with a request unanswered (:class:`_Call`) means the outcome of a write is unknown.
    The connection handshake (HELLO, AUTH, SELECT) and the health-check PING are not counted.
    """

    class Tracking(connection_class):  # type: ignore[misc]
        adk_redis_tracks = True

        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            call = _CALL.get()
            if call is None:
                await super().send_packed_command(command, check_health)
                return
            token = _CALL.set(None)  # the handshake and the health-check PING are not the command
            try:
                if not self.is_connected:
                    await self.connect_check_health(check_health=False)
                if check_health:
                    await self.check_health()
            finally:
                _CALL.reset(token)
            call.sends += 1
            await super().send_packed_command(command, False)

        async def read_response(self, *args: Any, **kwargs: Any) -> Any:
            try:
                reply = await super().read_response(*args, **kwargs)
            except Exception as exc:
                call = _CALL.get()
                # an error reply (redis-py sets the reply's code; LOADING is a ConnectionError)
                if call is not None and (isinstance(exc, ResponseError) or getattr(exc, "status_code", None)):
                    call.answers += 1
                raise
            call = _CALL.get()
            if call is not None:
                call.answers += 1
            return reply

    Tracking.__name__ = Tracking.__qualname__ = "Tracking" + connection_class.__name__
    return Tracking


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
        return _tracking(connection_class)
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
            "Fast" + connection_class.__name__, (_tracking(connection_class),), {"pack_command": pack_command}
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
    where = "Redis at " + redact_url(settings.redis_url if uri is None else uri)
    return LoopLocalClient(
        lambda: new_client(settings, uri), deadline=settings.redis_operation_timeout, where=where
    )


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
    url = client_url(settings, settings.redis_url if uri is None else uri)
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


def read_script(client: Any, source: str) -> Any:
    """``client.register_script(source)`` for a script that serves a read: when it fails, the outcome
    is never "unknown" (:class:`~adk_redis.errors.RedisOutcomeUnknownError` is for writes)."""
    if isinstance(client, LoopLocalClient):
        return client.register_script(source, reads=True)
    return client.register_script(source)


def is_cluster(client: Any) -> bool:
    """True for a Redis Cluster client (multi-key steps must stay in one slot)."""
    from redis.asyncio.cluster import RedisCluster

    if isinstance(client, LoopLocalClient):
        client = client.current
    return isinstance(client, RedisCluster)


# -- the client services hold: one redis-py client per event loop, every operation under a deadline ----
async def _within(awaitable: Awaitable[T], deadline: float | None) -> T:
    """Await ``awaitable``; a built-in ``TimeoutError`` when it takes longer than ``deadline`` seconds
    (:func:`typed_error` makes it a :class:`RedisUnavailableError`).

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
        # translated by the caller (typed_error): a write's outcome may be unknown
        raise TimeoutError(f"no reply within {deadline:g} s (REDIS_OPERATION_TIMEOUT)") from exc


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

    def __init__(self, factory: Callable[[], Any], *, deadline: float | None, where: str = "Redis") -> None:
        self._factory = factory
        self.deadline = deadline
        self.where = where
        self._spare: Any = factory()  # made now: a bad URL fails at construction
        self._cluster = hasattr(self._spare, "nodes_manager")  # redis-py's async RedisCluster
        pool = getattr(self._spare, "connection_pool", None)
        # connections that count requests and replies (standalone): exact "outcome unknown" decisions
        self._exact = bool(getattr(getattr(pool, "connection_class", None), "adk_redis_tracks", False))
        self._read_scripts: set[str] = set()
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
                _bound_pipeline(result, deadline, self)
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
        call = _Call(exact=self._exact)
        token = _CALL.set(call)
        try:
            if not deadline or _timeout is None:
                return await _within(awaitable, deadline)
            async with _timeout(deadline):  # _within inlined: one coroutine less on every command
                return await awaitable
        except TimeoutError as exc:  # the deadline (asyncio.timeout)
            cut = TimeoutError(f"no reply within {deadline:g} s (REDIS_OPERATION_TIMEOUT)")
            raise self._typed(cut, name, args, call) from exc
        except Exception as exc:
            typed = self._typed(exc, name, args, call)
            if typed is exc:
                raise
            raise typed from exc
        finally:
            _CALL.reset(token)

    def _typed(self, exc: BaseException, name: str, args: tuple[Any, ...], call: _Call) -> BaseException:
        """The typed error of a failed command (:func:`typed_error`); ``exc`` when it is an answer."""
        if name in ("evalsha", "eval"):
            writes = not (args and text_arg(args[0]) in self._read_scripts)
            what = "a script"
        elif name == "execute_command":
            writes = not (args and text_arg(args[0]).lower() in READ_COMMANDS)
            what = text_arg(args[0]) if args else name
        else:
            writes = name not in READ_COMMANDS
            what = name.upper()
        return typed_error(exc, what=what, where=self.where, writes=writes, call=call)

    @staticmethod
    async def _initialized_first(client: Any, awaitable: Awaitable[T]) -> T:
        await client.initialize()
        return await awaitable

    def register_script(self, script: str | bytes, *, reads: bool = False) -> Any:
        """A redis-py Script run through this proxy (on the calling loop's client, within the deadline).

        ``reads``: the script serves a read (its failure is never "outcome unknown").
        """
        from redis.commands.core import AsyncScript

        registered = AsyncScript(self, script)  # type: ignore[arg-type]
        if reads:
            self._read_scripts.add(registered.sha)
        return registered

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


class InjectedClient(LoopLocalClient):
    """A client the application built (``client=``: a ``redis.asyncio.Redis``, ``RedisCluster``,
    fakeredis, ...) behind the same deadline and typed errors as the clients adk_redis makes.

    One client for every event loop (the application's: it is used as given, never replaced), and
    never closed with a loop.  Its failures are translated by :func:`typed_error` like those of
    :class:`LoopLocalClient`; its connections do not count requests, so a write cut after it may
    have been sent is reported as :class:`~adk_redis.errors.RedisOutcomeUnknownError`.
    """

    def __init__(
        self, client: Any, *, deadline: float | None, where: str = "Redis (injected client)"
    ) -> None:
        self._injected = client
        super().__init__(lambda: client, deadline=deadline, where=where)

    @property
    def current(self) -> Any:
        """The injected client."""
        return self._injected

    def loops(self) -> int:
        return 0

    async def aclose(self, **_kw: Any) -> None:
        """Close the injected client (services never call this for an injected client)."""
        await self._injected.aclose()

    def __repr__(self) -> str:
        return f"<InjectedClient {self._injected!r} deadline={self.deadline}>"


def adopt_client(client: Any, settings: RedisSettings | None) -> Any:
    """``client`` as services hold it: an adk_redis client as is, any other (injected) one wrapped in an
    :class:`InjectedClient` (``settings.redis_operation_timeout``, typed errors) -- the one place an
    injected client gets the failure contract."""
    if isinstance(client, LoopLocalClient) or client is None:
        return client
    where = "Redis (injected client)"
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None)
    if isinstance(kwargs, dict) and kwargs.get("host"):
        where = f"Redis at {kwargs['host']}:{kwargs.get('port', 6379)} (injected client)"
    deadline = settings.redis_operation_timeout if settings is not None else None
    return InjectedClient(client, deadline=deadline or None, where=where)


def text_arg(value: Any) -> str:
    """A command argument as text (script SHAs and command names arrive as str or bytes)."""
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)


def _pipeline_writes(pipe: Any, read_scripts: set[str]) -> bool:
    """True unless every queued command of ``pipe`` is a read (unknown layouts count as writes)."""
    stack = getattr(pipe, "command_stack", None)
    if stack is None:
        stack = getattr(pipe, "_command_stack", None)
    if not stack:
        return stack is None
    for entry in stack:
        args = getattr(entry, "args", None) or (entry[0] if isinstance(entry, tuple) else ())
        if not args:
            return True
        name = text_arg(args[0]).lower()
        if name in ("evalsha", "eval"):
            if len(args) < 2 or text_arg(args[1]) not in read_scripts:
                return True
        elif name.replace(" ", "_") not in READ_COMMANDS:
            return True
    return False


def _bound_pipeline(pipe: Any, deadline: float | None, owner: LoopLocalClient | None = None) -> None:
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

    where = owner.where if owner is not None else "Redis"
    exact = owner._exact if owner is not None else False
    read_scripts = owner._read_scripts if owner is not None else set()

    async def bounded(*args: Any, **kwargs: Any) -> Any:
        writes = _pipeline_writes(pipe, read_scripts)
        call = _Call(pipeline=True, exact=exact)
        token = _CALL.set(call)
        try:
            replies = await _within(execute(*args, **kwargs), deadline)
        except BaseException as exc:
            await _release_pipeline(pipe, exc)
            typed = typed_error(exc, what="a pipeline", where=where, writes=writes, call=call)
            if typed is exc:
                raise
            raise typed from exc
        finally:
            _CALL.reset(token)
        for reply in replies if isinstance(replies, list) else ():
            # raise_on_error=False: a "not now" reply (LOADING, MASTERDOWN, ...) is an outage, not data.
            # Every command was answered: the outcome is known (a refused command was not run).
            if isinstance(reply, ResponseError) and unavailable_kind(reply) is not None:
                raise typed_error(reply, what="a pipeline", where=where, writes=False) from reply
        return replies

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


def pool_stats(client: Any) -> PoolStats:
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


def client_stats(client: Any) -> ClientStats:
    """``connection_retries`` and ``pool`` (created / in use / max) of a client."""
    return {"connection_retries": retry_failures(client), "pool": pool_stats(client)}
