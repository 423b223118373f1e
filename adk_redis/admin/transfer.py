"""``adk-redis export`` / ``import``: a complete, verifiable backup of one key prefix as JSON Lines.

The file starts with a header line naming the format, its version and the
number of records of each type; then one record per line:

``session``
    a whole session: ids, ``created`` and ``last_update_time``, session state,
    every event, ``expires_ms`` (absolute, or null); restored through
    :meth:`RedisSessionService.restore_session`, the one session writer.
``app_state`` / ``user_state``
    the ``app:`` / ``user:`` state (keys without their prefix).
``memory_doc``
    one document of a memory search index (``index`` = ``user`` or
    ``knowledge``): its id, stored JSON, index terms, absolute expiry,
    vector (base64 FP32; null with ``--no-vectors``) and ``seq``, its insertion
    sequence number (null: none); restored through the index's own Lua writer
    (:data:`adk_redis.memory._search.INDEX_PUT`), so ids and BM25 scores are the
    same after a restore, and equal scores keep their order (documents of an
    export without ``seq`` are numbered as they are written).
``memory_tombstone``
    a deleted memory's tombstone (ingestion does not bring it back).
``key``
    one key of the cross-session layer, copied as it is: user context, agent
    memory, knowledge, session history, their registries, and the design
    API's session owner records (``kind`` names which), with its absolute
    expiry.

Import never overwrites live data: an existing session, memory document,
state field, key or member is kept, so an import is idempotent and can be
re-run after an interruption.  Records expired by the time of the import are
skipped.  Every record is checked before it is written; a bad one is rejected
with its line number and the rest goes on.

Keys are found with SCAN over the prefix: an admin tool, never a request path.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Any

from google.adk.events.event import Event
from google.adk.sessions.session import Session
from google.adk.sessions.state import State
from pydantic import ValidationError
from redis.exceptions import ResponseError

from .._core import codec
from .._core.codec import text
from ..errors import CorruptedDataError
from ..keys import MAX_ID_LENGTH, MemoryIndexKeys, ParsedKey, escape
from ..memory._search import INDEX_PUT, MAX_TF, now_ms
from ..memory._service import RedisMemoryService
from ..sessions._layout import CREATED
from ..sessions._service import RedisSessionService
from .common import Progress

FORMAT = "adk-redis-export"
VERSION = 2
RECORD_TYPES = ("app_state", "user_state", "session", "memory_doc", "memory_tombstone", "key")
_SCOPED = (State.APP_PREFIX, State.USER_PREFIX, State.TEMP_PREFIX)

#: Key kinds copied as ``key`` records, and whether the kind belongs to one user (``--user`` keeps it).
KEY_KINDS = {
    "user_context": True,
    "history": True,
    "user_index_part": True,  # only the ``ctx`` part (the user's context keys by expiry)
    "owner": True,
    "agent_memory": False,
    "agent_index": False,
    "knowledge": False,
    "registry": False,
}


def _index_keys(ik: MemoryIndexKeys) -> list[str]:
    # The KEYS header of INDEX_PUT: stats, t, exp, docs, del, vec, vset.
    return [ik.stats, ik.terms, ik.expiry, ik.docs, ik.deleted, ik.vectors, ik.vector_set]


def _expires(pttl: int, now: int) -> int | None:
    return now + pttl if pttl > 0 else None


_BATCH = 64  # import: records written concurrently


def _dump(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


@dataclass
class Scope:
    """The ``--app`` / ``--user`` filters."""

    app: str | None = None
    user: str | None = None

    def keeps(self, app: str | None, user: str | None, per_user: bool) -> bool:
        if self.app is not None and app != self.app:
            return False
        if self.user is None:
            return True
        return per_user and user == self.user


@dataclass
class Found:
    """The keys of one prefix, grouped by what they hold (one SCAN)."""

    sessions: list[tuple[str, str, str]] = field(default_factory=list)
    app_states: list[str] = field(default_factory=list)
    user_states: list[tuple[str, str]] = field(default_factory=list)
    user_indexes: set[tuple[str, str]] = field(default_factory=set)
    knowledge_indexes: set[str] = field(default_factory=set)
    keys: list[tuple[str, ParsedKey]] = field(default_factory=list)


async def scan_prefix(svc: RedisSessionService, scope: Scope) -> Found:
    found = Found()
    async for raw in svc.client.scan_iter(match=svc.keys.pattern(), count=1000):
        key = text(raw)
        p = svc.keys.parse_key(key)
        if p is None:
            continue
        if p.kind == "session" and scope.keeps(p.app, p.owner, True):
            found.sessions.append((p.app or "", p.owner or "", p.session or ""))
        elif p.kind == "app_state" and scope.keeps(p.app, None, False):
            found.app_states.append(p.app or "")
        elif p.kind == "user_state" and scope.keeps(p.app, p.owner, True):
            found.user_states.append((p.app or "", p.owner or ""))
        elif p.kind == "user_index_part" and p.part == "stats" and scope.keeps(p.app, p.owner, True):
            found.user_indexes.add((p.app or "", p.owner or ""))
        elif p.kind == "knowledge_index_part" and p.part == "stats" and scope.keeps(p.app, None, False):
            found.knowledge_indexes.add(p.app or "")
        elif p.kind in KEY_KINDS:
            if p.kind == "user_index_part" and p.part != "ctx":
                continue
            if p.kind == "owner":  # the owner (user id) is the value: filtered when read
                if scope.keeps(p.app, scope.user, True):
                    found.keys.append((key, p))
                continue
            per_user = KEY_KINDS[p.kind]
            if scope.keeps(p.app, p.owner if per_user else None, per_user) or (
                p.kind == "registry" and p.part == "users" and scope.keeps(p.app, scope.user, True)
            ):
                found.keys.append((key, p))
    found.sessions.sort()
    found.app_states.sort()
    found.user_states.sort()
    found.keys.sort()
    return found


# -- export ------------------------------------------------------------------------
class Exporter:
    def __init__(self, svc: RedisSessionService, mem: RedisMemoryService, *, vectors: bool = True) -> None:
        self.svc, self.mem, self.vectors = svc, mem, vectors
        self.client = svc.client
        self.errors: list[str] = []
        self._expiretime = True

    async def expiry(self, key: str) -> int | None:
        """The key's absolute expiry in ms (None: none): PEXPIRETIME (Redis 7+), else now + PTTL."""
        if self._expiretime:
            try:
                when = int(await self.client.execute_command("PEXPIRETIME", key))
                return when if when > 0 else None
            except ResponseError:  # Redis 6.2: no PEXPIRETIME
                self._expiretime = False
        return _expires(int(await self.client.pttl(key)), now_ms())

    async def _state(self, key: str, where: str) -> dict[str, Any]:
        return self.svc.codec.decode_hash(await self.client.hgetall(key), where=where)

    async def sessions(self, found: Found, progress: Progress) -> AsyncIterator[dict[str, Any]]:
        for app in found.app_states:
            state = await self._state(self.svc.keys.app_state(app), f"app state of {app!r}")
            if state:
                yield {"type": "app_state", "app_name": app, "state": state}
        for app, user in found.user_states:
            state = await self._state(self.svc.keys.user_state(app, user), f"user state of {user!r}")
            if state:
                yield {"type": "user_state", "app_name": app, "user_id": user, "state": state}
        for i in range(0, len(found.sessions), _BATCH):  # a batch of sessions read concurrently
            batch = found.sessions[i : i + _BATCH]
            for record in await asyncio.gather(*(self.session(*key) for key in batch)):
                progress.advance()
                if record is not None:
                    yield record

    async def session(self, app: str, user: str, sid: str) -> dict[str, Any] | None:
        sk = self.svc.keys.session(app, user, sid)
        try:
            session = await self.svc.get_session(app_name=app, user_id=user, session_id=sid)
        except CorruptedDataError as exc:
            self.errors.append(f"session {app}/{user}/{sid} not exported: {exc}")
            return None
        if session is None:  # deleted or expired meanwhile
            return None
        created = await self.client.hget(sk.meta, CREATED)
        return {
            "type": "session",
            "app_name": app,
            "user_id": user,
            "id": session.id,
            "created": float(text(created)) if created is not None else session.last_update_time,
            "last_update_time": session.last_update_time,
            "expires_ms": await self.expiry(sk.meta),
            "state": {k: v for k, v in session.state.items() if not k.startswith(_SCOPED)},
            "events": [json.loads(e.model_dump_json(exclude_none=True)) for e in session.events],
        }

    async def _vectors(self, ik: MemoryIndexKeys, docs: list[str]) -> dict[str, str]:
        if not self.vectors or not docs:
            return {}
        out: dict[str, str] = {}
        if await self.mem.index.vector_sets(ik):
            if not int(await self.client.exists(ik.vector_set)):
                return {}
            for doc in docs:
                raw = await self.client.execute_command("VEMB", ik.vector_set, doc)
                if raw:
                    floats = [float(text(v)) for v in raw]
                    out[doc] = base64.b64encode(struct.pack(f"<{len(floats)}f", *floats)).decode()
            return out
        for doc, vec in (await self.client.hgetall(ik.vectors)).items():
            out[text(doc)] = base64.b64encode(vec).decode()
        return out

    async def index(
        self, ik: MemoryIndexKeys, ident: dict[str, Any], progress: Progress
    ) -> AsyncIterator[dict[str, Any]]:
        now = now_ms()
        docs = {text(k): text(v) for k, v in (await self.client.hgetall(ik.docs)).items()}
        terms = {text(k): text(v) for k, v in (await self.client.hgetall(ik.terms)).items()}
        expiry = {text(m): int(s) for m, s in await self.client.zrange(ik.expiry, 0, -1, withscores=True)}
        vectors = await self._vectors(ik, sorted(docs))
        seqs = await self.mem.index.sequences(ik)
        for doc in sorted(docs):
            progress.advance()
            if expiry.get(doc, now + 1) <= now:
                continue  # expired, not yet pruned
            yield {
                "type": "memory_doc",
                **ident,
                "id": doc,
                "doc": docs[doc],
                "terms": terms.get(doc, ""),
                "expires_ms": expiry.get(doc),
                "vector": vectors.get(doc),
                "seq": seqs.get(doc),
            }
        for doc, exp in sorted((await self.client.hgetall(ik.deleted)).items()):
            if int(exp) > now:
                yield {"type": "memory_tombstone", **ident, "id": text(doc), "expires_ms": int(exp)}

    async def memory(self, found: Found, progress: Progress) -> AsyncIterator[dict[str, Any]]:
        keys = self.mem.keys
        for app, user in sorted(found.user_indexes):
            ident = {"index": "user", "app_name": app, "user_id": user}
            async for record in self.index(keys.user_memory_index(app, user), ident, progress):
                yield record
        for app in sorted(found.knowledge_indexes):
            async for record in self.index(
                keys.knowledge_index(app), {"index": "knowledge", "app_name": app}, progress
            ):
                yield record

    async def key(self, key: str, p: ParsedKey, scope: Scope) -> dict[str, Any] | None:
        kind = text(await self.client.type(key))
        value: Any
        if kind == "string":
            raw = await self.client.get(key)
            if raw is None:
                return None
            value = text(raw)
            if p.kind == "owner" and scope.user is not None and value != scope.user:
                return None
        elif kind == "hash":
            value = {text(k): text(v) for k, v in (await self.client.hgetall(key)).items()}
        elif kind == "zset":
            value = [[text(m), s] for m, s in await self.client.zrange(key, 0, -1, withscores=True)]
            if p.kind == "registry" and scope.user is not None:
                value = [[m, s] for m, s in value if m == escape(scope.user)]
        else:
            return None  # gone meanwhile, or a foreign type
        if not value:
            return None
        return {
            "type": "key",
            "kind": p.kind,
            "key": self.svc.keys.relative(key),
            "redis_type": kind,
            "value": value,
            "expires_ms": await self.expiry(key),
        }


async def export_backup(
    svc: RedisSessionService,
    mem: RedisMemoryService,
    out: IO[str],
    *,
    scope: Scope,
    vectors: bool = True,
    progress: Progress,
) -> dict[str, Any]:
    """Write the header and every record of ``scope``; return the header (with counts and errors)."""
    found = await scan_prefix(svc, scope)
    pipe = svc.client.pipeline(transaction=False)
    for app, user in sorted(found.user_indexes):
        pipe.hlen(mem.keys.user_memory_index(app, user).docs)
    for app in sorted(found.knowledge_indexes):
        pipe.hlen(mem.keys.knowledge_index(app).docs)
    docs = sum(int(n) for n in await pipe.execute()) if found.user_indexes or found.knowledge_indexes else 0
    progress.total = len(found.sessions) + docs
    exporter = Exporter(svc, mem, vectors=vectors)
    counts: Counter[str] = Counter({t: 0 for t in RECORD_TYPES})
    with tempfile.TemporaryFile("w+", encoding="utf-8") as body:

        def put(record: dict[str, Any]) -> None:
            counts[record["type"]] += 1
            body.write(_dump(record) + "\n")

        async for record in exporter.sessions(found, progress):
            put(record)
        async for record in exporter.memory(found, progress):
            put(record)
        for key, parsed in found.keys:
            copied = await exporter.key(key, parsed, scope)
            if copied is not None:
                put(copied)
        header = {
            "type": "header",
            "format": FORMAT,
            "version": VERSION,
            "prefix": svc.keys.prefix,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "filters": {"app": scope.app, "user": scope.user},
            "vectors": vectors,
            "counts": dict(counts),
        }
        out.write(_dump(header) + "\n")
        body.seek(0)
        for line in body:
            out.write(line)
    progress.finish()
    return {**header, "errors": exporter.errors}


# -- import ------------------------------------------------------------------------
class RecordError(ValueError):
    """One input line that cannot be imported; the message says why."""


_RECORD_ERRORS = (RecordError, CorruptedDataError, ValueError, TypeError)


def _need_id(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value.strip():
        raise RecordError(f"{name} must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise RecordError(f"{name} is longer than {MAX_ID_LENGTH} characters")
    return value


def _need_state(record: dict[str, Any]) -> dict[str, Any]:
    state = record.get("state", {})
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise RecordError("state must be an object")
    bad = [k for k in state if k.startswith(_SCOPED)]
    if bad:
        raise RecordError(f"state keys {bad[:3]} have a prefix not allowed here")
    return state


def _need_number(record: dict[str, Any], name: str, *, optional: bool = False) -> float | None:
    value = record.get(name)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise RecordError(f"{name} must be a number")
    return float(value)


def _events(record: dict[str, Any]) -> list[Event]:
    events = record.get("events", [])
    if not isinstance(events, list):
        raise RecordError("events must be a list")
    parsed: list[Event] = []
    for i, payload in enumerate(events):
        missing = [
            f for f in ("id", "author", "timestamp") if not isinstance(payload, dict) or f not in payload
        ]
        if missing:
            raise RecordError(f"event {i} lacks {', '.join(missing)}")
        try:
            event = Event.model_validate(payload)
        except ValidationError as exc:
            raise RecordError(f"event {i} is not a valid ADK event ({exc.error_count()} errors)") from None
        if event.partial:
            raise RecordError(f"event {i} is partial")
        parsed.append(event)
    ids = [e.id for e in parsed]
    if len(set(ids)) != len(ids):
        raise RecordError("duplicate event ids")
    return parsed


def parse_line(raw: str) -> dict[str, Any]:
    """Parse and check one line (any version); RecordError naming the problem."""
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RecordError(f"not JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise RecordError("a record must be a JSON object")
    kind = record.get("type")
    if kind == "header":
        if record.get("format") != FORMAT:
            raise RecordError(f"not an adk-redis export header (format {record.get('format')!r})")
        if record.get("version") not in (1, VERSION):
            raise RecordError(
                f"unsupported export version {record.get('version')!r} (this tool reads 1-{VERSION})"
            )
        return record
    if record.get("v", 1) not in (1,) and "v" in record:
        raise RecordError(f"unsupported record version {record.get('v')!r}")
    if kind not in RECORD_TYPES:
        raise RecordError(f"unknown record type {kind!r}")
    if kind == "key":
        if not isinstance(record.get("key"), str) or record.get("redis_type") not in (
            "string",
            "hash",
            "zset",
        ):
            raise RecordError("a key record needs key and redis_type (string, hash or zset)")
        _need_number(record, "expires_ms", optional=True)
        return record
    _need_id(record, "app_name")
    if kind == "app_state":
        record["state"] = _need_state(record)
    elif kind == "user_state":
        _need_id(record, "user_id")
        record["state"] = _need_state(record)
    elif kind == "session":
        _need_id(record, "user_id")
        _need_id(record, "id")
        record["state"] = _need_state(record)
        record["events"] = _events(record)
        last = record.get("last_update_time")
        if last is None:  # version 1: the last event's time, else now
            last = record["events"][-1].timestamp if record["events"] else None
        record["last_update_time"] = last
        if last is not None:
            _need_number(record, "last_update_time")
        _need_number(record, "created", optional=True)
        _need_number(record, "expires_ms", optional=True)
    else:  # memory_doc / memory_tombstone
        if record.get("index") not in ("user", "knowledge"):
            raise RecordError("index must be 'user' or 'knowledge'")
        if record["index"] == "user":
            _need_id(record, "user_id")
        _need_id(record, "id")
        _need_number(record, "expires_ms", optional=kind == "memory_doc")
        if kind == "memory_doc":
            if not isinstance(record.get("doc"), str) or not isinstance(record.get("terms"), str):
                raise RecordError("a memory_doc needs doc and terms strings")
            try:
                json.loads(record["doc"])
            except json.JSONDecodeError:
                raise RecordError("doc is not JSON") from None
            seq = record.get("seq")
            if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or seq < 0):
                raise RecordError("seq must be a non-negative integer or null")
            if record.get("vector") is not None:
                try:
                    record["vector"] = base64.b64decode(record["vector"], validate=True)
                except (ValueError, TypeError):
                    raise RecordError("vector is not base64") from None
    return record


@dataclass
class ImportReport:
    header: dict[str, Any] | None = None
    written: Counter[str] = field(default_factory=Counter)
    kept: Counter[str] = field(default_factory=Counter)  # already there: not overwritten
    expired: Counter[str] = field(default_factory=Counter)
    seen: Counter[str] = field(default_factory=Counter)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "written": dict(self.written),
            "kept_existing": dict(self.kept),
            "expired": dict(self.expired),
            "rejected": self.rejected,
            "header_counts": (self.header or {}).get("counts"),
        }


class Importer:
    def __init__(self, svc: RedisSessionService, mem: RedisMemoryService, scope: Scope) -> None:
        self.svc, self.mem, self.scope = svc, mem, scope
        self.client = svc.client
        self._put = self.client.register_script(INDEX_PUT)

    def _keeps(self, record: dict[str, Any]) -> bool:
        kind = record["type"]
        if kind in ("app_state",) or (kind.startswith("memory") and record["index"] == "knowledge"):
            return self.scope.keeps(record["app_name"], None, False)
        return self.scope.keeps(record["app_name"], record.get("user_id"), True)

    async def _fill(self, key: str, state: dict[str, Any]) -> bool:
        added = 0
        for k, v in codec.json_safe(state)["session"].items():
            added += int(await self.client.hsetnx(key, k, self.svc.codec.encode_value(v)))
        return added > 0

    async def session(self, record: dict[str, Any], now: int) -> str:
        expires = record.get("expires_ms")
        if expires is not None and expires <= now:
            return "expired"
        last = record["last_update_time"]
        session = Session(
            id=record["id"],
            app_name=record["app_name"],
            user_id=record["user_id"],
            state=record["state"],
            events=record["events"],
            last_update_time=last if last is not None else now / 1000,
        )
        written = await self.svc.restore_session(session, created=record.get("created"))
        if not written:
            return "kept"
        if expires is not None:
            sk = self.svc.keys.session(session.app_name, session.user_id, session.id)
            pipe = self.client.pipeline(transaction=False)
            for key in sk.all:
                pipe.pexpireat(key, int(expires))
            await pipe.execute()
        return "written"

    def _index(self, record: dict[str, Any]) -> MemoryIndexKeys:
        if record["index"] == "user":
            return self.mem.keys.user_memory_index(record["app_name"], record["user_id"])
        return self.mem.keys.knowledge_index(record["app_name"])

    async def memory_doc(self, record: dict[str, Any], now: int) -> str:
        ik = self._index(record)
        expires = (
            int(record["expires_ms"]) if record.get("expires_ms") is not None else now + 10 * 365 * 86_400_000
        )
        if expires <= now:
            return "expired"
        pairs: list[tuple[str, int]] = []
        fields = record["terms"].split()
        if len(fields) % 2:
            raise RecordError("terms must be 'term tf' pairs")
        for i in range(0, len(fields), 2):
            term, tf = fields[i], fields[i + 1]
            digits = tf[1:] if tf.startswith("-") else tf  # negative: a term of the context only
            if not digits.isdigit() or not 0 < int(digits) <= MAX_TF or any(c in term for c in "{}"):
                raise RecordError(f"bad index term {term!r} {tf!r}")
            pairs.append((term, int(tf)))
        dl = sum(abs(tf) for _, tf in pairs)
        vector: bytes = record.get("vector") or b""
        quant = self.mem.index.quantization if vector and await self.mem.index.vector_sets(ik) else ""
        keys = _index_keys(ik) + [f"{ik.base}:p:{t}" for t, _ in pairs]
        args: list[Any] = [
            "skip",
            record["id"],
            record["doc"],
            expires,
            expires - now,
            now,
            len(pairs),
            ik.base,
            record["terms"],
            vector,
            "0",
            "",
            "",
            quant,
            *((dl * 1024 + abs(tf)) * (1 if tf > 0 else -1) for _, tf in pairs),
        ]
        if int(await self._put(keys=keys, args=args)) != 1:
            return "kept"
        if "seq" in record:  # exports before insertion numbers: the order of the file
            await self.mem.index.set_sequence(ik, record["id"], record["seq"])
        return "written"

    async def tombstone(self, record: dict[str, Any], now: int) -> str:
        expires = int(record["expires_ms"])
        if expires <= now:
            return "expired"
        ik = self._index(record)
        if not int(await self.client.hsetnx(ik.deleted, record["id"], expires)):
            return "kept"
        ttl = int(await self.client.pttl(ik.deleted))
        if ttl == -1 or 0 <= ttl < expires - now:
            await self.client.pexpireat(ik.deleted, expires)
        return "written"

    async def key(self, record: dict[str, Any], now: int) -> str:
        key = f"{self.svc.keys.prefix}:{record['key']}"
        parsed = self.svc.keys.parse_key(key)
        if parsed is None or parsed.kind not in KEY_KINDS or parsed.kind != record.get("kind"):
            raise RecordError(f"key {record['key']!r} is not a {record.get('kind')!r} key of adk_redis")
        if parsed.kind == "user_index_part" and parsed.part != "ctx":
            raise RecordError(f"key {record['key']!r} is part of a search index (use memory_doc records)")
        value, rtype = record["value"], record["redis_type"]
        per_user = KEY_KINDS[parsed.kind]
        user = value if parsed.kind == "owner" else parsed.owner
        if not self.scope.keeps(parsed.app, user if per_user else None, per_user) and not (
            parsed.kind == "registry"
            and self.scope.user is not None
            and self.scope.keeps(parsed.app, self.scope.user, True)
        ):
            return "filtered"
        expires = record.get("expires_ms")
        if expires is not None and expires <= now:
            return "expired"
        existed = bool(int(await self.client.exists(key)))
        if rtype == "string":
            if not isinstance(value, str):
                raise RecordError("a string key needs a string value")
            if existed:
                return "kept"
            written = await self.client.set(key, value, nx=True)
            changed = bool(written)
        elif rtype == "hash":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise RecordError("a hash key needs an object of strings")
            changed = False
            for f, v in value.items():
                changed = bool(int(await self.client.hsetnx(key, f, v))) or changed
        else:
            if not isinstance(value, list) or not all(
                isinstance(p, list)
                and len(p) == 2
                and isinstance(p[0], str)
                and isinstance(p[1], (int, float))
                for p in value
            ):
                raise RecordError("a zset key needs [member, score] pairs")
            if self.scope.user is not None and parsed.kind == "registry":
                value = [p for p in value if p[0] == escape(self.scope.user)]
            changed = bool(value) and bool(int(await self.client.zadd(key, dict(value), nx=True)))
        if not existed and changed and expires is not None:
            await self.client.pexpireat(key, int(expires))
        return "written" if changed else "kept"

    async def apply(self, record: dict[str, Any]) -> str:
        kind = record["type"]
        now = now_ms()
        if kind != "key" and not self._keeps(record):
            return "filtered"
        if kind == "app_state":
            return (
                "written"
                if await self._fill(self.svc.keys.app_state(record["app_name"]), record["state"])
                else "kept"
            )
        if kind == "user_state":
            key = self.svc.keys.user_state(record["app_name"], record["user_id"])
            return "written" if await self._fill(key, record["state"]) else "kept"
        if kind == "session":
            return await self.session(record, now)
        if kind == "memory_doc":
            return await self.memory_doc(record, now)
        if kind == "memory_tombstone":
            return await self.tombstone(record, now)
        return await self.key(record, now)


async def import_backup(
    svc: RedisSessionService,
    mem: RedisMemoryService,
    lines: Iterable[str],
    *,
    scope: Scope,
    progress: Progress,
    check_only: bool = False,
) -> ImportReport:
    """Import JSON Lines written by :func:`export_backup` (or version 1 exports).

    ``check_only``: read and check every record against the format and the header's counts, write
    nothing (valid records are counted as ``kept``).
    """
    importer = Importer(svc, mem, scope)
    report = ImportReport()
    pending: list[tuple[int, dict[str, Any]]] = []

    def reject(lineno: int, exc: BaseException) -> None:
        reason = str(exc) if isinstance(exc, RecordError) else f"{type(exc).__name__}: {exc}"
        report.rejected.append({"line": lineno, "reason": reason})

    async def flush() -> None:
        # Records are independent (one key, session or document each): a batch is written concurrently.
        outcomes = await asyncio.gather(*(importer.apply(r) for _, r in pending), return_exceptions=True)
        for (lineno, record), outcome in zip(pending, outcomes, strict=True):
            progress.advance()
            if isinstance(outcome, _RECORD_ERRORS):
                reject(lineno, outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
            elif outcome == "written":
                report.written[record["type"]] += 1
            elif outcome == "kept":
                report.kept[record["type"]] += 1
            elif outcome == "expired":
                report.expired[record["type"]] += 1
        pending.clear()

    for lineno, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            record = parse_line(raw)
            if record["type"] == "header":
                if lineno != 1 or report.header is not None:
                    raise RecordError("a header must be the first line")
                report.header = record
                counts = record.get("counts") or {}
                progress.total = sum(int(v) for v in counts.values() if isinstance(v, int)) or None
                continue
        except _RECORD_ERRORS as exc:
            progress.advance()
            reject(lineno, exc)
            continue
        report.seen[record["type"]] += 1
        if check_only:
            progress.advance()
            report.kept[record["type"]] += 1
            continue
        pending.append((lineno, record))
        if len(pending) >= _BATCH:
            await flush()
    await flush()
    report.rejected.sort(key=lambda r: r["line"])
    if report.header is not None:
        counts = report.header.get("counts") or {}
        expected = sum(v for v in counts.values() if isinstance(v, int))
        got = sum(report.seen.values()) + sum(1 for r in report.rejected if r["line"] != 1)
        if got < expected:
            report.rejected.append(
                {
                    "line": None,
                    "reason": f"the header counts {expected} records, the file has {got}: truncated?",
                }
            )
    progress.finish()
    return report
