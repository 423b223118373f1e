"""The statistics the package reports, as typed dicts: one definition per shape."""

from __future__ import annotations

from typing import TypedDict


class PoolStats(TypedDict):
    """Connections of a client's pool(s), summed over cluster nodes (``max``: None when unbounded)."""

    created: int
    in_use: int
    max: int | None


class ClientStats(TypedDict):
    """What a client reports: redis-py's failed attempts (retries) and its pool."""

    connection_retries: int
    pool: PoolStats
