"""The session record: field names of a session's meta hash, defined once.

One session is four keys (see :class:`adk_redis.keys.SessionKeys`), all in the
``{app:user}`` hash slot:

* ``<session>`` HASH: the record's fields below and the session state;
* ``<session>:log`` LIST: event payloads in append order (index = sequence number);
* ``<session>:ids`` HASH: event id -> sequence number (re-delivery detection);
* ``<session>:tm`` LIST: event timestamps (``repr`` of the float) in append order.

Format 1 (before 0.13) kept the events in ``<session>:events`` (HASH ``<seq> ->
payload`` plus ``#<id> -> seq``) and ``<session>:ts`` (ZSET); the session scripts
upgrade such a record in place the first time they touch it (``upgrade()`` in
:mod:`adk_redis.sessions._scripts`), and ``adk-redis migrate`` upgrades them all.
Format 2 costs about 20% less memory per event (measured: docs/reference/keys.md, "Storage per event").

The meta HASH holds:

=========  ==================================================================
field      meaning
=========  ==================================================================
``_c``     creation time (epoch seconds, ``repr(float)``)
``_u``     last update time
``_r``     revision: the stale-writer marker, +1 per stored event
``_n``     number of stored events (the next event's sequence number)
``_l``     id of the last stored event
``_v``     record format version
``_t``     creation token: a retried create recognises its own session
``_m``     revision since which ``w.`` fields are complete (merge is allowed
           only for markers at or after it; sessions stored before write
           tracking existed start tracking at their first append)
``s.<k>``  session-scoped state value ``k`` (JSON, or a codec envelope)
``w.<k>``  revision of the last event that wrote state key ``k`` through this
           session (``k`` with its ``user:`` / ``app:`` prefix where it has one)
=========  ==================================================================

The Lua scripts in :mod:`adk_redis.sessions._scripts` receive these names from
:data:`LUA_PRELUDE`, so a field is spelled here and nowhere else.
"""

from __future__ import annotations

CREATED = "_c"
UPDATED = "_u"
REVISION = "_r"
COUNT = "_n"
LAST_ID = "_l"
VERSION = "_v"
TOKEN = "_t"
TRACKED_SINCE = "_m"
STATE_PREFIX = "s."
WRITE_PREFIX = "w."

#: The record format written today.
FORMAT_VERSION = "2"

#: Lua locals naming the fields; prepended to every script that reads or writes a session record.
LUA_PRELUDE = (
    f"local F_C, F_U, F_R, F_N, F_L, F_V, F_T, F_M = "
    f"'{CREATED}', '{UPDATED}', '{REVISION}', '{COUNT}', '{LAST_ID}', '{VERSION}', '{TOKEN}', "
    f"'{TRACKED_SINCE}'\n"
    f"local P_STATE, P_WRITE, FORMAT = '{STATE_PREFIX}', '{WRITE_PREFIX}', '{FORMAT_VERSION}'\n"
)


def is_state_field(field: str) -> bool:
    """True for a ``s.<k>`` session-state field."""
    return field.startswith(STATE_PREFIX)
