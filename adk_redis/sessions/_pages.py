"""Paginated session listings: :meth:`RedisSessionService.list_sessions_page` and its cursors.

Two orders, each read from a sorted set per user and one per app (members as in the
listing indexes: escaped session id, or ``<user>:<session>`` app-wide):

* ``"created"``: the creation indexes (``KeySchema.user_created_index`` /
  ``app_created_index``), scored by the session's creation time, written by
  create/restore and removed by delete (nothing on the append path).  Oldest first.
  A session's entry never moves, so a keyset traversal returns every session that
  existed when it began and was not deleted exactly once.  With a TTL the creation indexes
  expire like the listing indexes but are refreshed at creates only: a missing one is left
  missing by creates (unless the session is the first of its listing) and rebuilt whole by
  the next page (``RedisSessionService._rebuild_created_index``).
* ``"updated"``: the listing indexes (scored by last update), most recent first.  A
  session updated during a traversal moves to the front: it may be missed or seen twice.

A cursor is the (score, member) of the last index entry of a page: the next page
starts right after it in the index's order (``PAGE_INDEX``: O(log n + limit) whatever
the index size, even when that entry was deleted meanwhile).  It is opaque: base64url
of compact JSON with a version and a checksum, bound to the app, the user (or the whole
app) and the order.  A cursor is a position, not a credential: it grants nothing.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

from google.adk.sessions.session import Session

from ..errors import InvalidCursorError

PageOrder = Literal["created", "updated"]
PAGE_ORDERS: tuple[str, ...] = get_args(PageOrder)
MAX_PAGE_LIMIT = 1000
_VERSION = 1
_CHECK_BYTES = 6
_CHECK_KEY = b"adk_redis.session_pages.cursor"


@dataclass
class SessionPage:
    """One page of a listing: ``sessions`` (as ``list_sessions`` returns them) and the cursor of
    the next page (``None``: this was the last page)."""

    sessions: list[Session] = field(default_factory=list)
    next_cursor: str | None = None


def check_args(limit: int, order: str) -> None:
    """ValueError for a limit outside 1..1000 or an unknown order."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_LIMIT:
        raise ValueError(f"limit must be an int from 1 to {MAX_PAGE_LIMIT}, got {limit!r}")
    if order not in PAGE_ORDERS:
        raise ValueError(f"order must be one of {PAGE_ORDERS}, got {order!r}")


def _check(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=_CHECK_BYTES, key=_CHECK_KEY).digest()


def encode_cursor(app_name: str, user_id: str | None, order: str, score: str, member: str) -> str:
    """The opaque cursor of the index entry (``score``, ``member``) of one listing."""
    body = json.dumps([_VERSION, app_name, user_id, order, score, member], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(body + _check(body)).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, app_name: str, user_id: str | None, order: str) -> tuple[str, str]:
    """(score, member) of a cursor of this listing; InvalidCursorError for anything else."""
    if not isinstance(cursor, str) or not cursor or len(cursor) > 20_000:
        raise InvalidCursorError(f"not a page cursor: {str(cursor)[:40]!r}")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise InvalidCursorError(f"not a page cursor (not base64url): {cursor[:40]!r}") from None
    body, check = raw[:-_CHECK_BYTES], raw[-_CHECK_BYTES:]
    if len(raw) <= _CHECK_BYTES or _check(body) != check:
        raise InvalidCursorError("not a page cursor, or an altered one (checksum mismatch)")
    try:
        version, c_app, c_user, c_order, score, member = json.loads(body)
    except (ValueError, TypeError):
        raise InvalidCursorError("not a page cursor (unreadable content)") from None
    if version != _VERSION:
        raise InvalidCursorError(f"page cursor of an unknown version {version!r}")
    if (c_app, c_user, c_order) != (app_name, user_id, order):
        scope = "the whole app" if c_user is None else f"user {c_user!r}"
        raise InvalidCursorError(
            f"this cursor belongs to another listing (app {c_app!r}, {scope}, order {c_order!r}), "
            f"not to app {app_name!r}, "
            f"{'the whole app' if user_id is None else f'user {user_id!r}'}, order {order!r}"
        )
    if not isinstance(score, str) or not isinstance(member, str) or not _finite(score):
        raise InvalidCursorError("page cursor with an invalid position")
    return score, member


def _finite(score: str) -> bool:
    if not score or len(score) > 40 or not all(c in "0123456789.eE+-" for c in score):
        return False
    try:
        return math.isfinite(float(score))
    except ValueError:
        return False


def page_in_memory(
    entries: Iterable[tuple[float, str, Session]],
    *,
    app_name: str,
    user_id: str | None,
    limit: int,
    cursor: str | None,
    order: str,
) -> SessionPage:
    """The same page over sessions held in memory: ``entries`` are (score, index member, session).

    Same order, ties and cursors as ``RedisSessionService.list_sessions_page`` (the fallback service
    during an outage).
    """
    check_args(limit, order)
    desc = order == "updated"
    ordered: Sequence[tuple[float, str, Session]] = sorted(entries, key=lambda e: (e[0], e[1]), reverse=desc)
    start = 0
    if cursor is not None:
        score, member = decode_cursor(cursor, app_name, user_id, order)
        at = (float(score), member)
        keys = [(e[0], e[1]) for e in ordered]
        # descending: the first entry below the cursor; ascending: the first above it
        start = len(keys) - bisect.bisect_left(keys[::-1], at) if desc else bisect.bisect_right(keys, at)
    chunk = ordered[start : start + limit + 1]
    more = len(chunk) > limit
    chunk = chunk[:limit]
    next_cursor = None
    if more:
        last_score, last_member, _ = chunk[-1]
        next_cursor = encode_cursor(app_name, user_id, order, repr(float(last_score)), last_member)
    return SessionPage(sessions=[s for _, _, s in chunk], next_cursor=next_cursor)


__all__ = [
    "MAX_PAGE_LIMIT",
    "PAGE_ORDERS",
    "InvalidCursorError",
    "PageOrder",
    "SessionPage",
    "check_args",
    "decode_cursor",
    "encode_cursor",
    "page_in_memory",
]
