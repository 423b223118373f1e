"""The key scheme: every Redis key adk_redis uses is built here and nowhere else.

User-controlled components (app name, user id, session id, ...) are escaped so
that they contain no ``:``, braces, glob characters, whitespace or ``%`` of
their own.  Escaping is injective, so two distinct (app, user, session)
triples never share a key and no id can reach another user's keys.

Cluster: ``{app:user}`` is the hash tag of everything owned by one user in one
app (sessions, events, user state, the user's index), ``{app}`` the tag of
app-wide data.  One session's keys therefore always share a hash slot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .errors import InvalidInputError

MAX_ID_LENGTH = 4096
_UNSAFE = frozenset("%:{}*?[]\\\"'")


_NEEDS_ESCAPE = re.compile(r"[%:{}*?\[\]\\\"'\s]|[^\x21-\x7e]|^$")


@lru_cache(maxsize=8192)
def escape(component: str) -> str:
    """Escape one user-controlled key component (injective, readable)."""
    if type(component) is str and len(component) <= MAX_ID_LENGTH and not _NEEDS_ESCAPE.search(component):
        return component  # fast path: plain printable ASCII
    if not isinstance(component, str):
        raise TypeError(f"key components must be str, got {type(component).__name__}")
    if len(component) > MAX_ID_LENGTH:
        raise InvalidInputError(
            f"id is {len(component)} characters long; at most {MAX_ID_LENGTH} are allowed"
        )
    if component == "":
        return "%"  # a lone '%' never results from escaping a non-empty string
    out = []
    for ch in component:
        if ch in _UNSAFE or ch.isspace() or not ch.isprintable():
            if "\ud800" <= ch <= "\udfff":
                raise InvalidInputError(
                    f"id {component.encode('utf-8', 'backslashreplace').decode()[:80]!r} contains a lone "
                    "surrogate: it is not valid Unicode text"
                )
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return "".join(out)


def unescape(component: str) -> str:
    """Invert :func:`escape`."""
    if "%" not in component:
        return component  # fast path: nothing was escaped
    if component == "%":
        return ""
    raw = bytearray()
    i = 0
    while i < len(component):
        ch = component[i]
        if ch == "%":
            raw += bytes([int(component[i + 1 : i + 3], 16)])
            i += 3
        else:
            raw += ch.encode("utf-8")
            i += 1
    return raw.decode("utf-8")


def _split_tag(rest: str) -> tuple[list[str], str] | None:
    """``{a:b}:tail`` -> (unescaped tag components, tail); None if ``rest`` has no leading tag."""
    if not rest.startswith("{"):
        return None
    end = rest.find("}")
    if end < 0:
        return None
    try:
        parts = [unescape(p) for p in rest[1:end].split(":")]
    except (ValueError, UnicodeDecodeError):
        return None
    tail = rest[end + 1 :]
    if tail and not tail.startswith(":"):
        return None
    return parts, tail[1:]


@dataclass(frozen=True)
class ParsedKey:
    """What :meth:`KeySchema.parse_key` found in a key: its kind and the ids it carries."""

    kind: str
    app: str | None = None
    owner: str | None = None  # user id, or agent id for agent memory
    session: str | None = None
    part: str = ""  # the key's tail after the hash tag (context key, index part, ...)


@dataclass(frozen=True)
class SessionKeys:
    """The keys of one session (all in the ``{app:user}`` slot); see :mod:`adk_redis.sessions._layout`."""

    meta: str  # HASH: the record's fields (_c, _u, _r, ...) and s.<k> session state
    log: str  # LIST: event payloads in append order (index = sequence number)
    ids: str  # HASH: event id -> sequence number (re-delivery detection)
    times: str  # LIST: event timestamps (repr of the float) in append order
    legacy_events: str  # format 1 only: HASH <seq> -> payload, #<id> -> seq (upgraded on first touch)
    legacy_times: str  # format 1 only: ZSET <seq> scored by timestamp

    @property
    def script_keys(self) -> list[str]:
        """The session's keys in the order every session script takes them."""
        return [self.meta, self.log, self.ids, self.times, self.legacy_events, self.legacy_times]

    @property
    def all(self) -> tuple[str, ...]:
        """Every key a session may have (both formats): for DEL / PEXPIRE."""
        return (self.meta, self.log, self.ids, self.times, self.legacy_events, self.legacy_times)


@dataclass(frozen=True)
class KeySchema:
    """Builds every key under one prefix (``vana`` by default)."""

    prefix: str = "vana"

    # -- session service -------------------------------------------------
    def _user_tag(self, app_name: str, user_id: str) -> str:
        return f"{self.prefix}:session:{{{escape(app_name)}:{escape(user_id)}}}"

    def _app_tag(self, app_name: str) -> str:
        return f"{self.prefix}:session:{{{escape(app_name)}}}"

    def session(self, app_name: str, user_id: str, session_id: str) -> SessionKeys:
        """Every key of one session (meta hash, event log, id and time indexes)."""
        base = self.session_meta(app_name, user_id, session_id)
        return SessionKeys(
            meta=base,
            log=f"{base}:log",
            ids=f"{base}:ids",
            times=f"{base}:tm",
            legacy_events=f"{base}:events",
            legacy_times=f"{base}:ts",
        )

    def session_meta(self, app_name: str, user_id: str, session_id: str) -> str:
        """The meta HASH of one session: ``session(...).meta`` without building its other keys (listings)."""
        return f"{self._user_tag(app_name, user_id)}:s:{escape(session_id)}"

    def session_meta_prefix(self, app_name: str, user_id: str) -> str:
        """What every session meta key of the user starts with (+ escaped session id; erase scripts)."""
        return f"{self._user_tag(app_name, user_id)}:s:"

    def user_state(self, app_name: str, user_id: str) -> str:
        """HASH of ``user:`` state (field = key without prefix, value = JSON)."""
        return f"{self._user_tag(app_name, user_id)}:user_state"

    def user_index(self, app_name: str, user_id: str) -> str:
        """ZSET of the user's session ids scored by last update time."""
        return f"{self._user_tag(app_name, user_id)}:index"

    def user_created_index(self, app_name: str, user_id: str) -> str:
        """ZSET of the user's session ids scored by creation time (``order="created"`` pages)."""
        return f"{self._user_tag(app_name, user_id)}:created"

    def app_state(self, app_name: str) -> str:
        """HASH of ``app:`` state."""
        return f"{self._app_tag(app_name)}:app_state"

    def app_index(self, app_name: str) -> str:
        """ZSET of ``<user>:<session>`` members (escaped) scored by update time."""
        return f"{self._app_tag(app_name)}:index"

    def app_created_index(self, app_name: str) -> str:
        """ZSET of ``<user>:<session>`` members (escaped) scored by creation time."""
        return f"{self._app_tag(app_name)}:created"

    @staticmethod
    def session_member(session_id: str) -> str:
        """Member of the user index for ``session_id``."""
        return escape(session_id)

    @staticmethod
    def parse_session_member(member: str) -> str:
        """The session id of a user-index member (inverse of :meth:`session_member`)."""
        return unescape(member)

    @staticmethod
    def app_index_member(user_id: str, session_id: str) -> str:
        """Member of the app index for (``user_id``, ``session_id``)."""
        return f"{escape(user_id)}:{escape(session_id)}"

    @staticmethod
    def parse_app_index_member(member: str) -> tuple[str, str]:
        """(user id, session id) of an app-index member (inverse of :meth:`app_index_member`)."""
        user, _, session = member.partition(":")
        return unescape(user), unescape(session)

    def pattern(self) -> str:
        """Glob matching every key of this prefix (admin tools only, never a request path)."""
        return f"{self.prefix}:*"

    # -- SCAN patterns and parsing (admin tools only: adk-redis, maintenance) --
    def index_pattern(self) -> str:
        """Glob of every session index: per user (``session:{a:u}:index``) and per app (``{a}``)."""
        return f"{self.prefix}:session:{{*}}:index"

    def created_index_pattern(self) -> str:
        """Glob of every creation index (``order="created"`` pages), per user and per app."""
        return f"{self.prefix}:session:{{*}}:created"

    def session_meta_pattern(self) -> str:
        """Glob of every session record key (also matches its ``:log`` / ``:ids`` / ... keys: filter with
        :meth:`parse_key`)."""
        return f"{self.prefix}:session:{{*}}:s:*"

    def memory_pattern(self, family: str = "*") -> str:
        """Glob of the memory keys of one family (``user_context``, ``agent``, ``knowledge``,
        ``history``, ``index``)."""
        return f"{self.prefix}:memory:{family}:*"

    def owner_pattern(self) -> str:
        """Glob of every design-API owner record."""
        return f"{self.prefix}:session:owner:*"

    def relative(self, key: str) -> str:
        """``key`` without ``<prefix>:`` (ValueError if it is not under this prefix)."""
        head = self.prefix + ":"
        if not key.startswith(head):
            raise ValueError(f"{key!r} is not under the prefix {self.prefix!r}")
        return key[len(head) :]

    def parse_key(self, key: str) -> ParsedKey | None:
        """Classify a key of this prefix (the inverse of the builders above); None for foreign keys.

        ``kind`` names the builder: ``session`` / ``session_log`` / ``session_ids`` / ``session_times``
        / ``session_legacy_events`` / ``session_legacy_times`` (``session``
        set), ``user_state``, ``user_index``, ``app_state``, ``app_index``, ``owner``,
        ``user_context``, ``agent_memory``, ``knowledge``, ``history``, ``user_index_part`` /
        ``knowledge_index_part`` (``part`` = ``stats``, ``t``, ``p:<term>``, ... or ``ctx``),
        ``agent_index``, ``registry`` (``part`` = users/agents/knowledge), ``security``,
        ``migration``, ``wait_barrier``.
        """
        try:
            rest = self.relative(key)
        except ValueError:
            return None
        family, _, rest = rest.partition(":")
        if family in ("security", "facade"):
            return ParsedKey("security")
        if family == "migrate":
            return ParsedKey("migration")
        if family == "writeback":
            sub, _, app = rest.partition(":")
            if sub != "conflicts" or not app:
                return None
            try:
                return ParsedKey("writeback_conflicts", unescape(app))
            except (ValueError, UnicodeDecodeError):
                return None
        if family == "wait":
            return ParsedKey("wait_barrier")
        if family == "session":
            if rest.startswith("owner:"):
                app, sep, sid = rest[len("owner:") :].partition(":")
                return ParsedKey("owner", unescape(app), session=unescape(sid)) if sep else None
            tag = _split_tag(rest)
            if tag is None:
                return None
            parts, tail = tag
            if len(parts) == 1:
                kinds = {"app_state": "app_state", "index": "app_index", "created": "app_created_index"}
                kind = kinds.get(tail)
                return ParsedKey(kind, parts[0]) if kind else None
            app, user = parts
            if tail in ("user_state", "index"):
                return ParsedKey("user_state" if tail == "user_state" else "user_index", app, user)
            if tail == "created":
                return ParsedKey("user_created_index", app, user)
            if not tail.startswith("s:"):
                return None
            sid, _, suffix = tail[2:].partition(":")
            kind = {
                "": "session",
                "log": "session_log",
                "ids": "session_ids",
                "tm": "session_times",
                "events": "session_legacy_events",
                "ts": "session_legacy_times",
            }.get(suffix)
            return ParsedKey(kind, app, user, session=unescape(sid)) if kind else None
        if family != "memory":
            return None
        sub, _, rest = rest.partition(":")
        if sub == "gen":
            return ParsedKey("generation", part=rest)
        if sub == "index":
            scope, _, rest = rest.partition(":")
            tag = _split_tag(rest)
            if tag is None:
                return None
            parts, tail = tag
            if scope == "user" and len(parts) == 2:
                return ParsedKey("user_index_part", parts[0], parts[1], part=tail)
            if scope == "knowledge" and len(parts) == 1:
                return ParsedKey("knowledge_index_part", parts[0], part=tail)
            if scope == "agent" and len(parts) == 2 and not tail:
                return ParsedKey("agent_index", parts[0], parts[1])
            if scope == "app" and len(parts) == 1:
                return ParsedKey("registry", parts[0], part=tail)
            return None
        tag = _split_tag(rest)
        if tag is None:
            return None
        parts, tail = tag
        if sub == "user_context" and len(parts) == 2:
            return ParsedKey("user_context", parts[0], parts[1], part=unescape(tail))
        if sub == "agent" and len(parts) == 2:
            return ParsedKey("agent_memory", parts[0], parts[1], part=unescape(tail))
        if sub == "knowledge" and len(parts) == 1:
            return ParsedKey("knowledge", parts[0], part=tail)
        if sub == "facts" and len(parts) == 2:
            return ParsedKey("user_facts", parts[0], parts[1], part=tail)
        if sub == "history" and len(parts) == 2 and tail in ("", "data", "exp"):
            return ParsedKey("history", parts[0], parts[1], part=tail)
        return None

    # -- durability (adk_redis._core.durability) --------------------------------
    def wait_barrier(self, key: str) -> str:
        """STRING (short TTL): written after a write that waits for replicas, in ``key``'s hash slot.

        ``WAIT`` counts the replication offset of the connection's last write; a write that changed
        nothing (an idempotent retry) leaves it behind, so this write moves it past the data.
        """
        start = key.find("{")
        end = key.find("}", start + 1) if start >= 0 else -1
        tag = key[start + 1 : end] if start >= 0 and end > start + 1 else ""
        if not tag:  # an untagged key hashes whole: a tag of the whole key hashes to its slot
            if "{" in key or "}" in key:
                raise ValueError(f"{key!r} has no usable hash tag")
            tag = key
        return f"{self.prefix}:wait:{{{tag}}}"

    def migration(self, name: str) -> str:
        """HASH: progress of one ``adk-redis migrate`` run (SCAN cursor, counters, done flag)."""
        return f"{self.prefix}:migrate:{escape(name)}"

    def migration_invalid(self, name: str) -> str:
        """SET: legacy keys one ``adk-redis migrate`` found unreadable (counted once each)."""
        return f"{self.prefix}:migrate:{escape(name)}:invalid"

    # -- fallback write-back (adk_redis.resilience) --------------------------------
    def writeback_conflicts(self, app_name: str) -> str:
        """LIST: the app's write-back conflicts spilled past the in-memory cap (JSON, oldest first)."""
        return f"{self.prefix}:writeback:conflicts:{escape(app_name)}"

    # -- facade / security (adk_redis.store._api) ----------------------------------
    def session_owner(self, app_name: str, session_id: str) -> str:
        """STRING: user id owning a facade session (lookup by session id alone)."""
        return f"{self.prefix}:session:owner:{escape(app_name)}:{escape(session_id)}"

    def session_owner_prefix(self, app_name: str) -> str:
        """What every owner record of the app starts with (+ escaped session id; erase scripts)."""
        return f"{self.prefix}:session:owner:{escape(app_name)}:"

    def security_failed(self, app_name: str) -> str:
        """STRING counter: failed (wrong-user) session accesses of the app."""
        return f"{self.prefix}:facade:security:{escape(app_name)}:failed"

    def security_sessions(self, app_name: str) -> str:
        """ZSET: escaped session id -> failed accesses (``flagged`` above a threshold)."""
        return f"{self.prefix}:facade:security:{escape(app_name)}:sessions"

    # -- enumeration detection (adk_redis.security) ------------------------------
    def security_window(self, kind: str, source: str) -> str:
        """ZSET: one member per failed lookup of a source (``user``/``addr``), scored by time (ms)."""
        return f"{self.prefix}:security:fail:{escape(kind)}:{escape(source)}"

    def security_total_failures(self) -> str:
        """STRING counter: failed session lookups seen by every EnumerationGuard of this prefix."""
        return f"{self.prefix}:security:failed_total"

    def security_flagged(self) -> str:
        """ZSET: flagged source labels (ids hashed) scored by the time they were flagged (ms)."""
        return f"{self.prefix}:security:flagged"

    # -- memory (cross-session memory and the memory service) -----------------
    # Everything lives under ``{prefix}:memory:``.  ``{app:user}`` tags one
    # user's memory (context values, history, search index), ``{app:agent}``
    # one agent's memory and ``{app}`` the app's shared knowledge, so every
    # multi-key script touches a single cluster slot.

    def _mem_tag(self, app_name: str, owner: str | None = None) -> str:
        if owner is None:
            return f"{{{escape(app_name)}}}"
        return f"{{{escape(app_name)}:{escape(owner)}}}"

    def user_context(self, app_name: str, user_id: str, context_key: str) -> str:
        """STRING: one user-context JSON document (TTL ``MEMORY_TTL_HOURS``)."""
        return f"{self.prefix}:memory:user_context:{self._mem_tag(app_name, user_id)}:{escape(context_key)}"

    def user_context_prefix(self, app_name: str, user_id: str) -> str:
        """What every user-context key of the user starts with (+ escaped context key; erase scripts)."""
        return f"{self.prefix}:memory:user_context:{self._mem_tag(app_name, user_id)}:"

    def agent_memory(self, app_name: str, agent_id: str, memory_key: str) -> str:
        """STRING: one agent-memory JSON document (TTL ``MEMORY_TTL_HOURS``)."""
        return f"{self.prefix}:memory:agent:{self._mem_tag(app_name, agent_id)}:{escape(memory_key)}"

    def knowledge(self, app_name: str, category: str, knowledge_key: str) -> str:
        """STRING: one shared-knowledge JSON document (TTL ``KNOWLEDGE_TTL_HOURS``)."""
        return (
            f"{self.prefix}:memory:knowledge:{self._mem_tag(app_name)}:"
            f"{escape(category)}:{escape(knowledge_key)}"
        )

    def history(self, app_name: str, user_id: str) -> MemoryHistoryKeys:
        """The user's session history (TTL ``HISTORY_TTL_HOURS`` per entry)."""
        base = f"{self.prefix}:memory:history:{self._mem_tag(app_name, user_id)}"
        return MemoryHistoryKeys(order=base, data=f"{base}:data", expiry=f"{base}:exp")

    def user_memory_index(self, app_name: str, user_id: str) -> MemoryIndexKeys:
        """Search index over the user's history, stored memories and user context."""
        return MemoryIndexKeys(f"{self.prefix}:memory:index:user:{self._mem_tag(app_name, user_id)}")

    def knowledge_index(self, app_name: str) -> MemoryIndexKeys:
        """Search index over the app's shared knowledge (all categories)."""
        return MemoryIndexKeys(f"{self.prefix}:memory:index:knowledge:{self._mem_tag(app_name)}")

    def user_context_index(self, app_name: str, user_id: str) -> str:
        """ZSET: the user's context keys (escaped) scored by expiry (ms)."""
        return f"{self.prefix}:memory:index:user:{self._mem_tag(app_name, user_id)}:ctx"

    def agent_memory_index(self, app_name: str, agent_id: str) -> str:
        """ZSET: the agent's memory keys (escaped) scored by expiry (ms)."""
        return f"{self.prefix}:memory:index:agent:{self._mem_tag(app_name, agent_id)}"

    def memory_registry(self, app_name: str, kind: str) -> str:
        """ZSET of the app's users / agents (escaped) scored by last expiry, for stats()."""
        return f"{self.prefix}:memory:index:app:{self._mem_tag(app_name)}:{kind}"

    # -- memory generation (adk_redis.memory: extracted facts, their revisions, generation jobs) --
    def memory_facts(self, app_name: str, user_id: str) -> MemoryFactKeys:
        """The user's extracted facts beside the user's index (same ``{app:user}`` slot)."""
        return MemoryFactKeys(f"{self.prefix}:memory:facts:{self._mem_tag(app_name, user_id)}")

    def generation_jobs(self) -> str:
        """STREAM: memory generation jobs (consumer group ``generators``)."""
        return f"{self.prefix}:memory:gen:jobs"

    def generation_dead(self) -> str:
        """STREAM: dead-lettered generation jobs (failed every attempt)."""
        return f"{self.prefix}:memory:gen:dead"

    def generation_stats(self) -> str:
        """HASH: generation counters (jobs queued/done/retried/dead, facts, model calls, tokens)."""
        return f"{self.prefix}:memory:gen:stats"


@dataclass(frozen=True)
class MemoryHistoryKeys:
    """A user's session history (one slot)."""

    order: str  # ZSET: escaped session id -> session timestamp
    data: str  # HASH: escaped session id -> JSON record
    expiry: str  # ZSET: escaped session id -> expiry (ms)


@dataclass(frozen=True)
class MemoryIndexKeys:
    """One BM25 search index; every key shares ``base``'s hash tag."""

    base: str

    @property
    def stats(self) -> str:  # HASH: n (documents), l (total length), seq (last insertion number)
        return f"{self.base}:stats"

    @property
    def sequence(self) -> str:  # HASH: doc id -> insertion sequence number (ties keep insertion order)
        return f"{self.base}:o"

    @property
    def ids(self) -> str:  # ZSET (score 0): every stored doc id, listed / range-deleted with ZRANGEBYLEX
        return f"{self.base}:ids"

    @property
    def terms(self) -> str:  # HASH: doc id -> "term tf term tf ..." (escaped terms)
        return f"{self.base}:t"

    @property
    def expiry(self) -> str:  # ZSET: doc id -> expiry (ms)
        return f"{self.base}:exp"

    @property
    def docs(self) -> str:  # HASH: doc id -> JSON document
        return f"{self.base}:docs"

    @property
    def deleted(self) -> str:  # HASH: doc id -> expiry (ms) of the tombstone
        return f"{self.base}:del"

    @property
    def vectors(self) -> str:  # HASH: doc id -> float32 vector (optional embeddings, fallback)
        return f"{self.base}:vec"

    @property
    def vector_set(self) -> str:  # Redis 8 vector set: doc id -> embedding (VADD/VSIM)
        return f"{self.base}:vset"

    def postings(self, term: str) -> str:  # HASH: doc id -> dl*1024 + tf
        return f"{self.base}:p:{escape(term)}"


@dataclass(frozen=True)
class MemoryFactKeys:
    """A user's extracted facts (the fact documents themselves live in the user's index as ``f:<id>``)."""

    base: str

    @property
    def all(self) -> str:  # SET: every fact id with a document or revisions
        return f"{self.base}:all"

    @property
    def fingerprints(self) -> str:  # HASH: sha1(text + source event ids) -> fact id (idempotency)
        return f"{self.base}:fp"

    @property
    def jobs(self) -> str:  # HASH: job id -> "done" | "dead" (a job applies once)
        return f"{self.base}:jobs"

    @property
    def cursor(self) -> str:  # HASH: escaped session id -> JSON {ts, eid} of the last enqueued event
        return f"{self.base}:cursor"

    @property
    def lock(self) -> str:  # STRING: token of the worker consolidating this user (PX expiry)
        return f"{self.base}:lock"

    @property
    def revisions_prefix(self) -> str:  # + escaped fact id = revisions(fact id) (built inside Lua)
        return f"{self.base}:rev:"

    def revisions(self, fact_id: str) -> str:  # LIST: JSON revisions of one fact, oldest first
        return f"{self.revisions_prefix}{escape(fact_id)}"
