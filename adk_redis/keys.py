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

from dataclasses import dataclass

MAX_ID_LENGTH = 4096
_UNSAFE = frozenset('%:{}*?[]\\"\'')


def escape(component: str) -> str:
    """Escape one user-controlled key component (injective, readable)."""
    if not isinstance(component, str):
        raise TypeError(f"key components must be str, got {type(component).__name__}")
    if len(component) > MAX_ID_LENGTH:
        raise ValueError(
            f"id is {len(component)} characters long; at most {MAX_ID_LENGTH} are allowed"
        )
    if component == "":
        return "%"  # a lone '%' never results from escaping a non-empty string
    out = []
    for ch in component:
        if ch in _UNSAFE or ch.isspace() or not ch.isprintable():
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return "".join(out)


def unescape(component: str) -> str:
    """Invert :func:`escape`."""
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


@dataclass(frozen=True)
class SessionKeys:
    """The keys of one session (all in the ``{app:user}`` hash slot)."""

    meta: str  # HASH: _c create time, _u update time, _r revision, _n events, _l last id, _v format, s.<k> state
    events: str  # HASH: <seq> -> event payload, #<event id> -> seq
    times: str  # ZSET: <seq> scored by event timestamp


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
        base = f"{self._user_tag(app_name, user_id)}:s:{escape(session_id)}"
        return SessionKeys(meta=base, events=f"{base}:events", times=f"{base}:ts")

    def user_state(self, app_name: str, user_id: str) -> str:
        """HASH of ``user:`` state (field = key without prefix, value = JSON)."""
        return f"{self._user_tag(app_name, user_id)}:user_state"

    def user_index(self, app_name: str, user_id: str) -> str:
        """ZSET of the user's session ids scored by last update time."""
        return f"{self._user_tag(app_name, user_id)}:index"

    def app_state(self, app_name: str) -> str:
        """HASH of ``app:`` state."""
        return f"{self._app_tag(app_name)}:app_state"

    def app_index(self, app_name: str) -> str:
        """ZSET of ``<user>:<session>`` members (escaped) scored by update time."""
        return f"{self._app_tag(app_name)}:index"

    @staticmethod
    def session_member(session_id: str) -> str:
        """Member of the user index for ``session_id``."""
        return escape(session_id)

    @staticmethod
    def parse_session_member(member: str) -> str:
        return unescape(member)

    @staticmethod
    def app_index_member(user_id: str, session_id: str) -> str:
        return f"{escape(user_id)}:{escape(session_id)}"

    @staticmethod
    def parse_app_index_member(member: str) -> tuple[str, str]:
        user, _, session = member.partition(":")
        return unescape(user), unescape(session)

    def pattern(self) -> str:
        """Glob matching every key of this prefix (admin tools only, never a request path)."""
        return f"{self.prefix}:*"
