"""Semantic ranking of memory documents: Redis 8 vector sets, or client-side cosine.

When the server has vector sets (``VADD``/``VSIM``, Redis 8+), every index
keeps its embeddings in one vector set (:attr:`MemoryIndexKeys.vector_set`,
same hash tag as the index) and a query is one ``VSIM ... WITHSCORES`` per
index (HNSW, sub-linear).  Otherwise vectors live in the index's ``vec`` HASH
and are ranked here by exact cosine (O(documents), the fallback).  Support is
detected once per client (``VCARD`` on a missing-or-existing vector set key)
and cached.  Scores are cosine similarities in both paths.
"""

from __future__ import annotations

import importlib
import weakref
from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError

from .._core.codec import text
from .._core.connection import unavailable_kind
from ..keys import MemoryIndexKeys
from .embeddings import cosine, pack, unpack

_np: Any
try:  # optional (it comes with the local model's extra): fast client-side cosine
    _np = importlib.import_module("numpy")
except ImportError:  # pragma: no cover - numpy absent
    _np = None

__all__ = [
    "QUANTIZATIONS",
    "fetch_vectors",
    "parse_vsim",
    "rank",
    "rank_fetched",
    "set_support",
    "vector_sets_supported",
]

QUANTIZATIONS = ("Q8", "NOQUANT", "BIN")
_MIN_EF = 100

_support: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


async def vector_sets_supported(client: Any, probe_key: str) -> bool:
    """True if the server behind ``client`` has vector sets (cached per client).

    ``probe_key`` is a vector set key of ours (``VCARD`` reads it, never writes).
    """
    known = _support.get(client)
    if known is not None:
        return known
    try:
        await client.execute_command("VCARD", probe_key)
        found = True
    except RedisError as exc:
        if unavailable_kind(exc) is not None:  # Redis did not answer: unknown, not cached
            raise
        found = False  # unknown command (Redis < 8, Valkey, fakeredis; a cluster client's own check)
    _support[client] = found
    return found


def set_support(client: Any, supported: bool | None) -> None:
    """Override detection for ``client`` (False: keep the HASH + client-side cosine layout,
    e.g. for benchmarks); None forgets it (detect again, e.g. after a server upgrade)."""
    if supported is None:
        _support.pop(client, None)
    else:
        _support[client] = supported


def parse_vsim(raw: Any) -> list[tuple[str, float]]:
    """``VSIM ... WITHSCORES`` reply (RESP2 flat list or RESP3 map) -> (element, cosine)."""
    pairs = raw.items() if isinstance(raw, dict) else zip(raw[::2], raw[1::2])
    # VSIM's score is (1 + cosine) / 2
    return [(text(e), 2.0 * float(text(s) if isinstance(s, bytes) else s) - 1.0) for e, s in pairs]


def _cosines(query: Sequence[float], vectors: dict[Any, bytes]) -> list[tuple[Any, float]]:
    """Cosine of ``query`` with every stored float32 vector: numpy when it is installed (it comes
    with the local model's extra), pure Python otherwise or when dimensions differ."""
    if not vectors:
        return []
    raws = list(vectors.values())
    if _np is not None and all(len(r) == 4 * len(query) for r in raws):
        mat = _np.frombuffer(b"".join(raws), dtype="<f4").reshape(len(raws), len(query))
        q = _np.asarray(query, dtype="<f4")
        norms = _np.linalg.norm(mat, axis=1) * float(_np.linalg.norm(q))
        dots = mat @ q
        sims = _np.divide(dots, norms, out=_np.zeros_like(dots), where=norms > 0)
        return list(zip(vectors.keys(), (float(x) for x in sims)))
    return [(doc, cosine(query, unpack(raw))) for doc, raw in vectors.items()]


async def fetch_vectors(client: Any, indexes: Sequence[MemoryIndexKeys]) -> list[dict[Any, bytes]]:
    """Every stored vector of ``indexes`` (the HASH layout, servers without vector sets): one
    pipelined ``HGETALL`` per index, which a caller can start before the query vector is ready."""
    pipe = client.pipeline(transaction=False)
    for ik in indexes:
        pipe.hgetall(ik.vectors)
    return list(await pipe.execute())


def rank_fetched(
    query: Sequence[float], fetched: Sequence[dict[Any, bytes]], count: int
) -> list[tuple[float, int, str]]:
    """:func:`rank` over vectors read by :func:`fetch_vectors` (exact cosine, client side)."""
    scored: list[tuple[float, int, str]] = []
    for n, reply in enumerate(fetched, start=1):
        scored += [(c, n, text(doc)) for doc, c in _cosines(query, reply)]
    scored.sort(key=lambda s: (-s[0], s[2], s[1]))
    return [s for s in scored[:count] if s[0] > 0]


async def rank(
    client: Any,
    indexes: Sequence[MemoryIndexKeys],
    query: Sequence[float],
    count: int,
    *,
    vector_sets: bool,
) -> list[tuple[float, int, str]]:
    """The ``count`` best (cosine, index number (1-based), doc id) over ``indexes``, best first.

    Only positive similarities are returned.  Expiry is not checked here.
    """
    if count <= 0 or not indexes:
        return []
    if not vector_sets:
        return rank_fetched(query, await fetch_vectors(client, indexes), count)
    pipe = client.pipeline(transaction=False)
    blob = pack(query)
    ef = max(_MIN_EF, count)
    for ik in indexes:
        pipe.execute_command("VSIM", ik.vector_set, "FP32", blob, "COUNT", count, "EF", ef, "WITHSCORES")
    replies = await pipe.execute()
    scored: list[tuple[float, int, str]] = []
    for n, reply in enumerate(replies, start=1):
        scored += [(score, n, doc) for doc, score in parse_vsim(reply or [])]
    scored.sort(key=lambda s: (-s[0], s[2], s[1]))
    return [s for s in scored[:count] if s[0] > 0]
