"""Connection URLs: the one strict parser and the one redaction function.

Every place that takes a Redis URL (the services' ``uri`` argument,
``REDIS_URL``, ``adk web`` / ``adk api_server`` service URIs, ``adk-redis
--url``) goes through :func:`parse_redis_url`, so a malformed URL fails at
construction with a :class:`~adk_redis.errors.ConfigurationError` naming the
offending part, instead of silently connecting somewhere else
(``redis:/host:6411`` -> localhost) or failing on the first request
(``?bogus=1``).

Accepted forms::

    redis://[[user]:password@]host[:port][/db][?params]
    rediss://...                                    (TLS; ssl_* params allowed)
    unix://[[user]:password@]/path/to/redis.sock[?db=N&params]
    redis+cluster://host:port[?params]              (rediss+cluster:// with TLS)
    redis+sentinel://[:password@]host:port[,host:port...]/service[/db][?params]

Query parameters: adk_redis' own (``key_prefix``, ``session_ttl_hours``,
``stale_policy``, the memory service's ``search_limit`` and ``min_score``, the replica wait's
``wait_replicas``, ``wait_timeout_ms`` and ``wait_aof``; consumed here, never passed to redis-py) and
redis-py's connection options (below).  Anything else is rejected.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from ..errors import ConfigurationError

SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster", "redis+sentinel")
"""URL schemes adk_redis connects to."""

_TLS_SCHEMES = ("rediss", "rediss+cluster")
_MAX_DB = 1_000_000  # a sanity bound; the server's `databases` setting is checked when it answers


def _bool(value: str) -> bool:
    low = value.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true/false")


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError("expected a positive number") from None
    if not number > 0 or number != number or number == float("inf"):
        raise ValueError("expected a positive number")
    return number


def _non_negative_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError("expected a number >= 0") from None
    if not number >= 0 or number == float("inf"):
        raise ValueError("expected a number >= 0")
    return number


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError("expected an integer") from None


def _non_negative_int(value: str) -> int:
    number = _int(value)
    if number < 0:
        raise ValueError("expected a non-negative integer")
    return number


def _positive_int(value: str) -> int:
    number = _int(value)
    if number < 1:
        raise ValueError("expected a positive integer")
    return number


def _protocol(value: str) -> int:
    number = _int(value)
    if number not in (2, 3):
        raise ValueError("expected 2 or 3")
    return number


def _text(value: str) -> str:
    if not value:
        raise ValueError("expected a value")
    return value


def _file(value: str) -> str:
    if not os.path.isfile(value):
        raise ValueError(f"no such file {value!r}")
    return value


def _dir(value: str) -> str:
    if not os.path.isdir(value):
        raise ValueError(f"no such directory {value!r}")
    return value


def _cert_reqs(value: str) -> str:
    if value.lower() not in ("none", "optional", "required"):
        raise ValueError("expected none, optional or required")
    return value.lower()


def _stale_policy(value: str) -> str:
    if value not in ("reject", "merge", "lww"):
        raise ValueError("expected reject, merge or lww")
    return value


def _ttl_hours(value: str) -> str:
    if value.strip().lower() in ("", "none", "0"):
        return value
    _positive_float(value)
    return value


def _key_prefix(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.\-:]{1,64}", value):
        raise ValueError("must be 1-64 characters of letters, digits, '_', '.', '-', ':'")
    return value


def _generator_model(value: str) -> str:
    if not value.strip() or len(value) > 200:
        raise ValueError("must name a model (e.g. gemini-2.5-flash)")
    return value


def _search_kinds(value: str) -> str:
    if value not in ("all", "facts", "turns"):
        raise ValueError("must be 'all', 'facts' or 'turns'")
    return value


#: adk_redis' own query parameters (removed before the URL reaches redis-py).
OUR_PARAMS = {
    "key_prefix": _key_prefix,
    "session_ttl_hours": _ttl_hours,
    "stale_policy": _stale_policy,
    "search_limit": _positive_int,
    "min_score": _non_negative_float,
    "generator_model": _generator_model,
    "search_kinds": _search_kinds,
    "wait_replicas": _non_negative_int,
    "wait_timeout_ms": _positive_int,
    "wait_aof": _bool,
}

#: redis-py connection options accepted in the query string (checked, then passed on).
REDIS_PARAMS = {
    "db": _non_negative_int,
    "socket_timeout": _positive_float,
    "socket_connect_timeout": _positive_float,
    "socket_keepalive": _bool,
    "socket_read_size": _positive_int,
    "retry_on_timeout": _bool,
    "max_connections": _positive_int,
    "health_check_interval": _non_negative_int,
    "timeout": _positive_float,
    "protocol": _protocol,
    "client_name": _text,
}

#: TLS options (rediss:// and rediss+cluster:// only).
TLS_PARAMS = {
    "ssl_ca_certs": _file,
    "ssl_ca_path": _dir,
    "ssl_certfile": _file,
    "ssl_keyfile": _file,
    "ssl_password": _text,
    "ssl_cert_reqs": _cert_reqs,
    "ssl_check_hostname": _bool,
    "ssl_ciphers": _text,
    "ssl_min_version": _non_negative_int,
}

_HOST_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+)$")


@dataclass(frozen=True)
class RedisURL:
    """A checked connection URL."""

    scheme: str
    hosts: tuple[tuple[str, int], ...]  # empty for unix://
    db: int | None  # from the path or ?db= (None: not given)
    path: str | None = None  # unix socket path
    service: str | None = None  # sentinel service name
    options: dict[str, str] = field(default_factory=dict)  # redis-py query params, as given
    ours: dict[str, str] = field(default_factory=dict)  # key_prefix, session_ttl_hours, stale_policy
    client_url: str = ""  # the URL without our params: what redis-py receives
    redacted: str = ""

    @property
    def tls(self) -> bool:
        return self.scheme in _TLS_SCHEMES


def redact_url(url: str) -> str:
    """``url`` with its password (and any ``ssl_password``) replaced by ``***``; never raises."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hosts = netloc.rpartition("@")
            if ":" in userinfo:  # user:password (a lone userinfo is a user name for redis-py)
                netloc = f"{userinfo.partition(':')[0]}:***@{hosts}"
        out = str(url)
        if netloc != parts.netloc:
            out = out.replace(parts.netloc, netloc, 1)
        if "password" in parts.query:
            head, _, query = out.partition("?")
            out = head + "?" + re.sub(r"((?:^|&)(?:ssl_)?password=)[^&#]*", r"\1***", query)
        return out
    except Exception:  # noqa: BLE001 - redaction must never fail; fall back to dropping everything
        scheme, sep, rest = str(url).partition("://")
        return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else "<unparsable URL>"


def _fail(url: str, why: str) -> ConfigurationError:
    return ConfigurationError(f"Invalid Redis URL {redact_url(url)!r}: {why}")


def _port(url: str, text: str, default: int) -> int:
    if text == "":
        return default
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise _fail(url, f"port {text!r} is not a number between 1 and 65535")
    return int(text)


def _host_port(url: str, text: str, default_port: int) -> tuple[str, int]:
    if text.startswith("["):
        host, _, rest = text.partition("]")
        host += "]"
        port = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise _fail(url, f"cannot read host {text!r}")
    else:
        host, _, port = text.partition(":") if text.count(":") <= 1 else (text, "", "")
    if not host:
        raise _fail(url, "no host (expected scheme://host[:port], e.g. redis://localhost:6379/0)")
    if not _HOST_RE.match(host):
        raise _fail(url, f"host {host!r} is not a valid host name or address")
    return host, _port(url, port, default_port)


def _db(url: str, text: str) -> int:
    if not text.isdigit():
        raise _fail(url, f"database {text!r} is not a number (expected /0, /1, ...)")
    number = int(text)
    if number >= _MAX_DB:
        raise _fail(url, f"database {number} is out of range")
    return number


def parse_redis_url(url: str) -> RedisURL:
    """Check ``url`` strictly; see the module docstring for what is accepted.

    Raises:
      ConfigurationError: naming the offending part (password redacted).
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError("Invalid Redis URL: empty (expected e.g. redis://localhost:6379/0)")
    if url != url.strip() or any(c.isspace() for c in url):
        raise _fail(url, "contains whitespace")
    if "://" not in url:
        scheme = url.partition(":")[0] if ":" in url else ""
        if scheme.lower() in SCHEMES:
            raise _fail(url, f"'{scheme}:' must be followed by '//' (e.g. {scheme}://host:port/db)")
        raise _fail(url, "expected scheme://host[:port][/db], e.g. redis://localhost:6379/0")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise _fail(url, str(exc)) from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise _fail(
            url,
            f"unsupported scheme {parts.scheme + '://'!r}; use one of "
            + ", ".join(s + "://" for s in SCHEMES),
        )
    if parts.fragment:
        raise _fail(url, f"unexpected fragment '#{parts.fragment}'")

    ours: dict[str, str] = {}
    options: dict[str, str] = {}
    rest: list[tuple[str, str]] = []
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise _fail(url, f"cannot read the query string {parts.query!r}") from None
    for name, value in pairs:
        if name in ours or name in options:
            raise _fail(url, f"query parameter {name!r} given twice")
        checker = OUR_PARAMS.get(name) or REDIS_PARAMS.get(name) or TLS_PARAMS.get(name)
        if checker is None:
            known = sorted(OUR_PARAMS) + sorted(REDIS_PARAMS) + sorted(TLS_PARAMS)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _fail(url, f"unknown query parameter {name!r}{hint}; known: {', '.join(known)}")
        if name in TLS_PARAMS and scheme not in _TLS_SCHEMES:
            raise _fail(url, f"{name} is a TLS option: use rediss:// (or rediss+cluster://)")
        try:
            checker(value)
        except ValueError as exc:
            shown = "***" if "password" in name else repr(value)
            raise _fail(url, f"query parameter {name}={shown}: {exc}") from None
        if name in OUR_PARAMS:
            ours[name] = value
        else:
            options[name] = value
            rest.append((name, value))

    netloc = parts.netloc
    hosts_text = netloc.rpartition("@")[2]
    path = unquote(parts.path)
    hosts: tuple[tuple[str, int], ...] = ()
    db: int | None = int(options["db"]) if "db" in options else None
    socket_path: str | None = None
    service: str | None = None
    if scheme == "unix":
        if hosts_text:
            raise _fail(
                url, f"unix:// takes a socket path, not a host ({hosts_text!r}): unix:///path/redis.sock"
            )
        if not path or path == "/":
            raise _fail(url, "no socket path (expected unix:///path/to/redis.sock)")
        socket_path = path
    elif scheme == "redis+sentinel":
        if not hosts_text:
            raise _fail(url, "no sentinel host (expected redis+sentinel://host:26379/service)")
        hosts = tuple(_host_port(url, h, 26379) for h in hosts_text.split(","))
        segments = [p for p in path.split("/") if p]
        if not segments:
            raise _fail(url, "no service name (expected redis+sentinel://host:26379/mymaster[/db])")
        if len(segments) > 2:
            raise _fail(url, f"path {parts.path!r}: expected /service or /service/db")
        service = segments[0]
        if len(segments) == 2:
            db = _db(url, segments[1])
    else:
        if not hosts_text:
            raise _fail(url, "no host (expected scheme://host[:port], e.g. redis://localhost:6379/0)")
        if "," in hosts_text:
            raise _fail(url, f"one host expected, got {hosts_text!r}")
        hosts = (_host_port(url, hosts_text, 6379),)
        segment = path[1:] if path.startswith("/") else path
        if segment:
            if "db" in options:
                raise _fail(url, "database given twice (path and ?db=)")
            db = _db(url, segment)
        if scheme.endswith("+cluster") and db not in (None, 0):
            raise _fail(url, f"Redis Cluster has database 0 only, got {db}")

    base = url.partition("?")[0]
    client_url = f"{base}?{urlencode(rest)}" if rest else base
    return RedisURL(
        scheme=scheme,
        hosts=hosts,
        db=db,
        path=socket_path,
        service=service,
        options=options,
        ours=ours,
        client_url=client_url,
        redacted=redact_url(url),
    )
